package config

import (
	"io"
	"testing"

	"sessiondesk/session"
)

func TestCostFlags(t *testing.T) {
	c, err := Parse([]string{"--rate-countries", "de=0.02/0.04, FR=0.03/0.05", "--sandbox-prices", "BY=0.021,*=0.03"},
		env(map[string]string{"SESSIONDESK_SENDER_COUNTRY": "de", "SESSIONDESK_RATE_INTERNATIONAL": "0.01",
			"SESSIONDESK_BUDGET_MONTHLY": "250"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	k := c.Costs
	if k.CountryRates["DE"] != (session.CountryRates{Text: 0.02, Media: 0.04}) || k.CountryRates["FR"].Media != 0.05 ||
		k.SenderCountry != "DE" || k.InternationalRate != 0.01 || k.MonthlyBudget != 250 ||
		k.SandboxPrices["BY"] != 0.021 || k.SandboxPrices[""] != 0.03 {
		t.Errorf("costs = %+v", k)
	}
	for _, args := range [][]string{
		{"--rate-countries", "DE=0.02"},
		{"--rate-countries", "DEU=0.02/0.04"},
		{"--rate-countries", "DE=-1/0.04"},
		{"--sandbox-prices", "DE"},
		{"--sandbox-prices", "*=-0.1"},
		{"--sandbox-prices", "Germany=0.1"},
		{"--sender-country", "Germany"},
		{"--rate-international", "-1"},
		{"--budget-monthly", "-5"},
	} {
		if _, err := Parse(args, env(nil), io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

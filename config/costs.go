package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"sessiondesk/session"
)

// Costs are the cost settings of issue 12 that flags give defaults for.
type Costs struct {
	CountryRates      map[string]session.CountryRates // by ISO country
	SenderCountry     string
	InternationalRate float64
	MonthlyBudget     float64
	// SandboxPrices is what the sandbox's fake Routee reports a message
	// costs, by ISO country, "" for any other; nil reports no price.
	SandboxPrices map[string]float64
}

// maxCost bounds every rate, price and budget a flag may set.
const maxCost = 1e9

// parse reads the two list flags and checks the rest.
func (c *Costs) parse(countryRates, sandboxPrices string) error {
	c.SenderCountry = strings.ToUpper(strings.TrimSpace(c.SenderCountry))
	if c.SenderCountry != "" && !isCountry(c.SenderCountry) {
		return fmt.Errorf("--sender-country %q: want a two-letter ISO code such as DE", c.SenderCountry)
	}
	for name, v := range map[string]float64{"--rate-international": c.InternationalRate, "--budget-monthly": c.MonthlyBudget} {
		if !validCost(v) {
			return fmt.Errorf("%s %v: want a number from 0 up", name, v)
		}
	}
	var err error
	if c.CountryRates, err = parseCountryRates(countryRates); err != nil {
		return fmt.Errorf("--rate-countries: %w", err)
	}
	if c.SandboxPrices, err = parseSandboxPrices(sandboxPrices); err != nil {
		return fmt.Errorf("--sandbox-prices: %w", err)
	}
	return nil
}

// parseCountryRates reads "DE=0.02/0.04,FR=0.03/0.05": text/media per country.
func parseCountryRates(s string) (map[string]session.CountryRates, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]session.CountryRates{}
	for _, item := range strings.Split(s, ",") {
		code, rates, ok := strings.Cut(strings.TrimSpace(item), "=")
		code = strings.ToUpper(strings.TrimSpace(code))
		text, media, ok2 := strings.Cut(rates, "/")
		if !ok || !ok2 || !isCountry(code) {
			return nil, fmt.Errorf("%q: write COUNTRY=TEXT/MEDIA, e.g. DE=0.02/0.04", item)
		}
		t, err1 := strconv.ParseFloat(strings.TrimSpace(text), 64)
		m, err2 := strconv.ParseFloat(strings.TrimSpace(media), 64)
		if err1 != nil || err2 != nil || !validCost(t) || !validCost(m) {
			return nil, fmt.Errorf("%q: the rates must be numbers from 0 up", item)
		}
		out[code] = session.CountryRates{Text: t, Media: m}
	}
	return out, nil
}

// parseSandboxPrices reads "DE=0.02,*=0.03".
func parseSandboxPrices(s string) (map[string]float64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]float64{}
	for _, item := range strings.Split(s, ",") {
		code, price, ok := strings.Cut(strings.TrimSpace(item), "=")
		code = strings.ToUpper(strings.TrimSpace(code))
		if code == "*" {
			code = ""
		} else if !isCountry(code) {
			ok = false
		}
		p, err := strconv.ParseFloat(strings.TrimSpace(price), 64)
		if !ok || err != nil || !validCost(p) {
			return nil, fmt.Errorf("%q: write COUNTRY=PRICE or *=PRICE with a price from 0 up, e.g. DE=0.02", item)
		}
		out[code] = p
	}
	return out, nil
}

func validCost(v float64) bool { return !math.IsNaN(v) && v >= 0 && v <= maxCost }

func isCountry(c string) bool {
	return len(c) == 2 && strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
}

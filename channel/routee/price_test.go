package routee

import "testing"

// A callback's price is read from the documented fields; anything that is not
// a price is no price, and never an error.
func TestCallbackPrice(t *testing.T) {
	for _, c := range []struct {
		body     string
		amount   float64
		currency string
		ok       bool
	}{
		{`{"trackingId":"t","price":0.0125}`, 0.0125, "", true},
		{`{"trackingId":"t","price":"0.02","currency":"eur"}`, 0.02, "EUR", true},
		{`{"trackingId":"t","totalPrice":0.5,"currency":"US Dollars"}`, 0.5, "", true},
		{`{"trackingId":"t","price":0}`, 0, "", true},
		{`{"trackingId":"t"}`, 0, "", false},
		{`{"trackingId":"t","price":-1}`, 0, "", false},
		{`{"trackingId":"t","price":1e9}`, 0, "", false},
		{`{"trackingId":"t","price":"NaN"}`, 0, "", false},
		{`{"trackingId":"t","price":{"amount":1}}`, 0, "", false},
		{`not json`, 0, "", false},
	} {
		amount, currency, ok := CallbackPrice([]byte(c.body))
		if amount != c.amount || currency != c.currency || ok != c.ok {
			t.Errorf("%s: %v %q %v, want %v %q %v", c.body, amount, currency, ok, c.amount, c.currency, c.ok)
		}
	}
}

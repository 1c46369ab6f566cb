// Package phone turns the numbers people type into E.164, the form Viber
// providers address clients by.
package phone

import (
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Number is a valid phone number.
type Number struct {
	E164   string // e.g. +375298603938
	Region string // ISO 3166 region code, e.g. BY
}

// Parse accepts a number in international form ("+375 29 860-39-38",
// "375298603938") and returns it in E.164. Viber identifies users by their
// full international number, so a number without a country code is refused
// rather than guessed.
func Parse(raw string) (Number, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return Number{}, fmt.Errorf("the phone number is empty")
	}
	if !strings.HasPrefix(s, "+") {
		s = "+" + s
	}
	n, err := phonenumbers.Parse(s, "")
	if err != nil {
		return Number{}, fmt.Errorf("%q is not a phone number in international form (+country code, then the number)", raw)
	}
	if !phonenumbers.IsValidNumber(n) {
		return Number{}, fmt.Errorf("%q is not a valid phone number", raw)
	}
	return Number{
		E164:   phonenumbers.Format(n, phonenumbers.E164),
		Region: phonenumbers.GetRegionCodeForNumber(n),
	}, nil
}

// Display formats an E.164 number for people, e.g. "+375 29 860-39-38".
func Display(e164 string) string {
	n, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return e164
	}
	return phonenumbers.Format(n, phonenumbers.INTERNATIONAL)
}

package routee

import (
	"math"
	"strconv"
	"strings"
)

// maxCallbackPrice bounds a price read from a callback; larger is a broken one.
const maxCallbackPrice = 1e6

// CallbackPrice reads the price a status callback carries, for the metrics:
// "price" (or "totalPrice", failover's), a JSON number or a number in a
// string, from 0 to 1e6, with the "currency" it names upper-cased ("" when
// none). ok is false when there is no price, or none that can be read: the
// callback's status still counts, so this never fails it.
func CallbackPrice(body []byte) (amount float64, currency string, ok bool) {
	f, err := decodeObject(body)
	if err != nil {
		return 0, "", false
	}
	text := strings.TrimSpace(firstNonEmpty(f.str("price"), f.str("totalPrice")))
	if text == "" {
		return 0, "", false
	}
	amount, err = strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(amount) || math.IsInf(amount, 0) || amount < 0 || amount > maxCallbackPrice {
		return 0, "", false
	}
	currency = strings.ToUpper(strings.TrimSpace(f.str("currency")))
	if len(currency) != 3 || strings.Trim(currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		currency = "" // not an ISO 4217 code: counted as the account's currency
	}
	return amount, currency, true
}

package routee

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"sessiondesk/session"
	"sessiondesk/store"
)

// DedupeWindow is the width of the receipt-time buckets that tell a client's
// repeated message from a redelivery when Routee gives no usable sentDate (see
// Inbound.DedupeKey).
const DedupeWindow = 30 * time.Second

// Inbound is a client's message as Routee posts it to the inboundUrl.
type Inbound struct {
	From, To string // as sent (the caller normalises From to E.164)
	Text     string // "message"
	MediaURL string // "media": a URL to download at once and keep; may be ""
	FileName string // "filename" or "fileName" (both are seen)
	// SentAt is "sentDate", parsed; zero when missing or unparsable.
	SentAt time.Time
	// DedupeKey identifies the delivery, so a retried post is stored once, and
	// DedupeAlso lists other keys the same delivery may have been stored under.
	//
	// Routee documents no unique id for an inbound message. When the payload
	// has a "messageId" or a "trackingId" anyway, the key is "routee:" + that
	// id. Otherwise it is "routee:" + hex(sha256(...)) of from, to, message,
	// media, filename, referenceTrackingId, campaignTrackingId, label and a
	// time, joined with NUL bytes. The time is sentDate as written when it
	// parses: a redelivery carries the same one, and two messages differ in it.
	// Without a usable sentDate it is the receipt time's bucket of
	// DedupeWindow (30 s), and DedupeAlso holds the key of the bucket before:
	// a redelivery that arrives within 30 s of the first delivery is always
	// found, even across a bucket edge; two identical messages at least 60 s
	// apart are always both kept; closer ones may be taken for one.
	DedupeKey  string
	DedupeAlso []string
	// ReferenceTrackingID is the trackingId of the business message this one
	// answers ("referenceTrackingId"), "" when it names none.
	ReferenceTrackingID string
}

// Kind is what the message carries: a file when it names one, an image when
// it has media only, text otherwise.
func (in Inbound) Kind() session.Kind {
	switch {
	case in.MediaURL != "" && in.FileName != "":
		return session.File
	case in.MediaURL != "":
		return session.Image
	}
	return session.Text
}

// ParseInbound reads the JSON Routee posts to the inboundUrl, received at
// receivedAt (which keys a delivery without a usable sentDate):
//
//	{"from": "+375298603938", "to": "...", "message": "Hello",
//	 "sentDate": "2021-12-30T14:20:00.000Z", "direction": "Inbound",
//	 "media": "https://...", "filename": "invoice.pdf", ...}
//
// It fails for a body that is not a JSON object, a missing "from", and a
// message with neither text nor media.
func ParseInbound(body []byte, receivedAt time.Time) (Inbound, error) {
	f, err := decodeObject(body)
	if err != nil {
		return Inbound{}, fmt.Errorf("routee inbound message: %w", err)
	}
	from := strings.TrimSpace(f.str("from"))
	if from == "" {
		return Inbound{}, errors.New(`routee inbound message: "from" is missing`)
	}
	in := Inbound{
		From:     from,
		To:       strings.TrimSpace(f.str("to")),
		Text:     f.str("message"),
		MediaURL: strings.TrimSpace(f.str("media")),
		FileName: strings.TrimSpace(firstNonEmpty(f.str("filename"), f.str("fileName"))),
		// Answers to a paid message name it.
		ReferenceTrackingID: strings.TrimSpace(f.str("referenceTrackingId")),
	}
	if strings.TrimSpace(in.Text) == "" && in.MediaURL == "" {
		return Inbound{}, fmt.Errorf("routee inbound message from %s: neither text nor media", from)
	}
	sentDate := f.str("sentDate")
	in.SentAt = parseTime(sentDate)
	if id := strings.TrimSpace(firstNonEmpty(f.str("messageId"), f.str("trackingId"))); id != "" {
		in.DedupeKey = "routee:" + id
		return in, nil
	}
	key := func(when string) string {
		h := sha256.New()
		for i, part := range []string{f.str("from"), f.str("to"), f.str("message"), f.str("media"),
			firstNonEmpty(f.str("filename"), f.str("fileName")), f.str("referenceTrackingId"),
			f.str("campaignTrackingId"), f.str("label"), when} {
			if i > 0 {
				h.Write([]byte{0})
			}
			h.Write([]byte(part))
		}
		return "routee:" + hex.EncodeToString(h.Sum(nil))
	}
	if !in.SentAt.IsZero() {
		in.DedupeKey = key("sent " + sentDate)
		return in, nil
	}
	bucket := receivedAt.UnixMilli() / DedupeWindow.Milliseconds()
	in.DedupeKey = key("received " + strconv.FormatInt(bucket, 10))
	in.DedupeAlso = []string{key("received " + strconv.FormatInt(bucket-1, 10))}
	return in, nil
}

// StatusReport is a delivery report Routee posts to a message's callbackUrl.
type StatusReport struct {
	TrackingID string
	Label      string // our message id, when Routee echoes it
	// Status is a store status: store.StatusQueued, StatusSent,
	// StatusDelivered, StatusSeen, StatusFailed, StatusUndelivered or
	// StatusExpired.
	Status string
	Reason string    // human text, e.g. "Not Viber User"
	At     time.Time // status.updatedDate; zero when missing or unparsable
	// Price is what Routee charged for the message ("price", or "totalPrice"
	// for failover), with "country" and a "currency" when the report names
	// one; nil when the report carries no price. PriceProblem says why a price
	// that was there could not be read (it is then nil): the status still
	// counts.
	Price        *store.ReportedPrice
	PriceProblem string
}

// maxReportedPrice bounds a price taken from a report; larger is a broken one.
const maxReportedPrice = 1e6

// routeeStatuses maps Routee's status names, lower-cased, to ours.
var routeeStatuses = map[string]string{
	"queued":      store.StatusQueued, // being resent
	"sent":        store.StatusSent,
	"delivered":   store.StatusDelivered,
	"seen":        store.StatusSeen,
	"undelivered": store.StatusUndelivered,
	"expired":     store.StatusExpired,
	"failed":      store.StatusFailed,
	"unsent":      store.StatusFailed, // insufficient balance
}

// ParseStatus reads the JSON Routee posts to a message's callbackUrl:
//
//	{"trackingId": "...", "to": "+...", "label": "42",
//	 "status": {"name": "Delivered",
//	            "reason": {"detailedStatus": "...", "description": "..."},
//	            "updatedDate": "2021-12-30T14:18:30.303Z"}, ...}
//
// Status names are matched case-insensitively. Expired gets the reason "TTL
// Expired" when Routee gives none; Unsent (insufficient balance) is failed
// with the reason "Unsent: insufficient balance", plus any detail. It fails for
// a body that is not a JSON object, a report with neither trackingId nor
// label, and a missing or unknown status name.
func ParseStatus(body []byte) (StatusReport, error) {
	f, err := decodeObject(body)
	if err != nil {
		return StatusReport{}, fmt.Errorf("routee status report: %w", err)
	}
	rep := StatusReport{TrackingID: strings.TrimSpace(f.str("trackingId")), Label: strings.TrimSpace(f.str("label"))}
	if rep.TrackingID == "" && rep.Label == "" {
		return StatusReport{}, errors.New("routee status report: neither trackingId nor label")
	}
	var name, updated string
	var reason any
	switch st := f["status"].(type) {
	case map[string]any:
		sf := fields(st)
		name = firstNonEmpty(sf.str("name"), sf.str("status"))
		reason = st["reason"]
		updated = firstNonEmpty(sf.str("updatedDate"), sf.str("date"))
	case string:
		name = st
		reason = f["reason"]
	}
	status, ok := routeeStatuses[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		if name == "" {
			return StatusReport{}, fmt.Errorf("routee status report %s: the status is missing", rep.ref())
		}
		return StatusReport{}, fmt.Errorf("routee status report %s: unknown status %q", rep.ref(), name)
	}
	rep.Status, rep.At = status, parseTime(updated)
	rep.Price, rep.PriceProblem = parsePrice(f, rep.At)
	switch r := reason.(type) {
	case map[string]any:
		rf := fields(r)
		rep.Reason = joinReason(strings.TrimSpace(rf.str("detailedStatus")), strings.TrimSpace(rf.str("description")))
	case string:
		rep.Reason = strings.TrimSpace(r)
	}
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "expired":
		if rep.Reason == "" {
			rep.Reason = "TTL Expired"
		}
	case "unsent":
		const unsent = "Unsent: insufficient balance"
		if rep.Reason == "" || strings.EqualFold(rep.Reason, "insufficient balance") {
			rep.Reason = unsent
		} else {
			rep.Reason = unsent + ": " + rep.Reason
		}
	}
	return rep, nil
}

// parsePrice reads a report's price: a JSON number (or a number in a
// string) from 0 to maxReportedPrice; a currency of three letters when named.
func parsePrice(f fields, at time.Time) (*store.ReportedPrice, string) {
	key := "price"
	if _, ok := f[key]; !ok {
		key = "totalPrice"
	}
	raw, ok := f[key]
	if !ok || raw == nil {
		return nil, ""
	}
	var text string
	switch v := raw.(type) {
	case json.Number:
		text = v.String()
	case string:
		text = strings.TrimSpace(v)
	default:
		return nil, fmt.Sprintf("%s is not a number", key)
	}
	amount, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(amount) || math.IsInf(amount, 0) || amount < 0 || amount > maxReportedPrice {
		return nil, fmt.Sprintf("%s %q is not a price", key, text)
	}
	cur := strings.ToUpper(strings.TrimSpace(firstNonEmpty(f.str("currency"), f.str("priceCurrency"))))
	if cur != "" && (len(cur) != 3 || strings.Trim(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "") {
		return nil, fmt.Sprintf("currency %q is not an ISO 4217 code", cur)
	}
	country := strings.ToUpper(strings.TrimSpace(f.str("country")))
	if len(country) != 2 || strings.Trim(country, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		country = ""
	}
	return &store.ReportedPrice{Amount: amount, Currency: cur, Country: country, At: at}, ""
}

func (r StatusReport) ref() string {
	if r.TrackingID != "" {
		return r.TrackingID
	}
	return "label " + r.Label
}

// joinReason combines Routee's detailedStatus and description.
func joinReason(detailed, description string) string {
	switch {
	case detailed == "":
		return description
	case description == "" || strings.EqualFold(detailed, description):
		return detailed
	}
	return detailed + ": " + description
}

// timeLayouts are the date forms accepted for sentDate and updatedDate, tried
// in order; a form without a zone is taken as UTC.
var timeLayouts = []string{
	time.RFC3339Nano, // 2021-12-30T14:20:00.000Z, 2021-12-30T14:20:00+02:00
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// parseTime parses a Routee date, in UTC; zero when empty or unparsable.
func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// fields is a decoded JSON object.
type fields map[string]any

// decodeObject decodes one JSON object, keeping numbers as written.
func decodeObject(body []byte) (fields, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not JSON: data after the object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return obj, nil
}

// str returns a string or number field as text, "" otherwise.
func (f fields) str(key string) string {
	switch v := f[key].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

package routee_test

import (
	"strings"
	"testing"
	"time"

	"sessiondesk/channel/routee"
	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/store"
)

func TestParseInbound(t *testing.T) {
	in, err := routee.ParseInbound([]byte(`{"from":"+375298603938","to":"sender-1","message":"Hello",
		"sentDate":"2021-12-30T14:20:00.000Z","campaignName":"c","direction":"Inbound","label":"x"}`), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2021, 12, 30, 14, 20, 0, 0, time.UTC)
	if in.From != "+375298603938" || in.To != "sender-1" || in.Text != "Hello" || in.MediaURL != "" ||
		in.FileName != "" || !in.SentAt.Equal(want) || !strings.HasPrefix(in.DedupeKey, "routee:") {
		t.Errorf("%+v", in)
	}
	if len(in.DedupeKey) != len("routee:")+64 {
		t.Errorf("dedupe key %q is not a sha256", in.DedupeKey)
	}

	for _, body := range []string{
		`{"from":"+375298603938","message":"","media":"https://m.example/1","filename":"invoice.pdf"}`,
		`{"from":"+375298603938","media":"https://m.example/1","fileName":"invoice.pdf"}`,
	} {
		in, err := routee.ParseInbound([]byte(body), time.Time{})
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if in.FileName != "invoice.pdf" || in.MediaURL != "https://m.example/1" || in.Text != "" || !in.SentAt.IsZero() {
			t.Errorf("%s: %+v", body, in)
		}
	}
}

func TestParseInboundSentDate(t *testing.T) {
	for date, want := range map[string]time.Time{
		`"2021-12-30T14:20:00.000Z"`:     time.Date(2021, 12, 30, 14, 20, 0, 0, time.UTC),
		`"2021-12-30T14:20:00.123Z"`:     time.Date(2021, 12, 30, 14, 20, 0, 123e6, time.UTC),
		`"2021-12-30T16:20:00+02:00"`:    time.Date(2021, 12, 30, 14, 20, 0, 0, time.UTC),
		`"2021-12-30T16:20:00.000+0200"`: time.Date(2021, 12, 30, 14, 20, 0, 0, time.UTC),
		`"2021-12-30T14:20:00"`:          time.Date(2021, 12, 30, 14, 20, 0, 0, time.UTC),
		`"2021-12-30 14:20:00"`:          time.Date(2021, 12, 30, 14, 20, 0, 0, time.UTC),
		`"yesterday"`:                    {},
		`""`:                             {},
		`1640874000`:                     {},
		`null`:                           {},
		`"2021-13-45T99:00:00Z"`:         {},
		`"30/12/2021 14:20"`:             {},
	} {
		in, err := routee.ParseInbound([]byte(`{"from":"+375298603938","message":"hi","sentDate":`+date+`}`), time.Time{})
		if err != nil {
			t.Fatalf("%s: %v", date, err)
		}
		if !in.SentAt.Equal(want) || (!want.IsZero() && in.SentAt.Location() != time.UTC) {
			t.Errorf("sentDate %s: %v, want %v", date, in.SentAt, want)
		}
	}
	in, err := routee.ParseInbound([]byte(`{"from":"+375298603938","message":"hi"}`), time.Time{})
	if err != nil || !in.SentAt.IsZero() {
		t.Errorf("no sentDate: %v, %v", in.SentAt, err)
	}
}

func TestParseInboundErrors(t *testing.T) {
	for _, body := range []string{
		``,
		`not json`,
		`[{"from":"+375298603938","message":"hi"}]`,
		`"hi"`,
		`null`,
		`{"from":"+375298603938","message":"hi"} {"x":1}`,
		`{"message":"hi"}`,
		`{"from":"","message":"hi"}`,
		`{"from":"+375298603938"}`,
		`{"from":"+375298603938","message":"   "}`,
		`{"from":"+375298603938","message":"","media":""}`,
	} {
		if in, err := routee.ParseInbound([]byte(body), time.Time{}); err == nil {
			t.Errorf("%s: no error, %+v", body, in)
		}
	}
}

func TestInboundDedupeKey(t *testing.T) {
	key := func(body string) string {
		t.Helper()
		in, err := routee.ParseInbound([]byte(body), time.Time{})
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return in.DedupeKey
	}
	base := key(`{"from":"+375298603938","to":"s","message":"Hello","sentDate":"2021-12-30T14:20:00.000Z"}`)
	// A retried delivery, even re-serialised differently, has the same key.
	same := []string{
		`{"from":"+375298603938","to":"s","message":"Hello","sentDate":"2021-12-30T14:20:00.000Z"}`,
		`{ "sentDate": "2021-12-30T14:20:00.000Z", "message": "Hello", "to": "s", "from": "+375298603938",
		   "direction": "Inbound", "campaignName": "other" }`,
		`{"from":"+375298603938","to":"s","message":"Hell\u006f","sentDate":"2021-12-30T14:20:00.000Z"}`,
	}
	for _, b := range same {
		if k := key(b); k != base {
			t.Errorf("%s: key %s, want %s", b, k, base)
		}
	}
	// Any differing field gives another key, including the raw sentDate.
	differ := []string{
		`{"from":"+375298603939","to":"s","message":"Hello","sentDate":"2021-12-30T14:20:00.000Z"}`,
		`{"from":"+375298603938","to":"t","message":"Hello","sentDate":"2021-12-30T14:20:00.000Z"}`,
		`{"from":"+375298603938","to":"s","message":"Hello!","sentDate":"2021-12-30T14:20:00.000Z"}`,
		`{"from":"+375298603938","to":"s","message":"Hello","sentDate":"2021-12-30T14:20:00.001Z"}`,
		`{"from":"+375298603938","to":"s","message":"Hello","sentDate":"2021-12-30T14:20:00Z"}`,
		`{"from":"+375298603938","to":"s","message":"Hello","sentDate":"2021-12-30T14:20:00.000Z","media":"https://m/1"}`,
		`{"from":"+375298603938","to":"s","message":"Hello","sentDate":"2021-12-30T14:20:00.000Z","media":"https://m/1","filename":"a.pdf"}`,
		// The separator keeps fields from running into each other.
		`{"from":"+375298603938","to":"sH","message":"ello","sentDate":"2021-12-30T14:20:00.000Z"}`,
	}
	seen := map[string]string{base: "base"}
	for _, b := range differ {
		k := key(b)
		if prev, dup := seen[k]; dup {
			t.Errorf("%s: same key as %s", b, prev)
		}
		seen[k] = b
	}
	// Both spellings of the file name give the same key.
	if a, b := key(`{"from":"+1","media":"https://m/1","filename":"a.pdf"}`),
		key(`{"from":"+1","media":"https://m/1","fileName":"a.pdf"}`); a != b {
		t.Errorf("filename %s, fileName %s", a, b)
	}
	// An id, when Routee sends one, is the key.
	if k := key(`{"from":"+1","message":"hi","messageId":"abc-1"}`); k != "routee:abc-1" {
		t.Errorf("messageId: %s", k)
	}
	if k := key(`{"from":"+1","message":"hi","trackingId":"trk-9"}`); k != "routee:trk-9" {
		t.Errorf("trackingId: %s", k)
	}
	if k := key(`{"from":"+1","message":"hi","messageId":12345}`); k != "routee:12345" {
		t.Errorf("numeric messageId: %s", k)
	}
	// The fake's payload is stable for a given message.
	fake := fakeroutee.New(fakeroutee.Options{})
	msg := fakeroutee.Inbound{From: "+375298603938", To: "s", Text: "Hi", SentAt: time.Date(2025, 1, 2, 3, 4, 5, 6e6, time.UTC)}
	if a, b := key(string(fake.InboundPayload(msg))), key(string(fake.InboundPayload(msg))); a != b {
		t.Errorf("fake payloads: %s != %s", a, b)
	}
}

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		name, reason string // Routee's status name and detailedStatus
		status       string
		wantReason   string
	}{
		{"Queued", "", store.StatusQueued, ""},
		{"Sent", "", store.StatusSent, ""},
		{"Delivered", "", store.StatusDelivered, ""},
		{"DELIVERED", "", store.StatusDelivered, ""},
		{"seen", "", store.StatusSeen, ""},
		{"Undelivered", "Not Viber User", store.StatusUndelivered, "Not Viber User"},
		{"Undelivered", "Opted Out", store.StatusUndelivered, "Opted Out"},
		{"Expired", "", store.StatusExpired, "TTL Expired"},
		{"Expired", "Timed Out", store.StatusExpired, "Timed Out"},
		{"Failed", "System Failure", store.StatusFailed, "System Failure"},
		{"Failed", "Message Rejected", store.StatusFailed, "Message Rejected"},
		{"Failed", "Unsupported Equipment", store.StatusFailed, "Unsupported Equipment"},
		{"Unsent", "", store.StatusFailed, "Unsent: insufficient balance"},
		{"Unsent", "Insufficient balance", store.StatusFailed, "Unsent: insufficient balance"},
		{"Unsent", "Account suspended", store.StatusFailed, "Unsent: insufficient balance: Account suspended"},
	} {
		body := `{"trackingId":"t-1","campaignTrackingId":"c-1","to":"+375298603938","from":"s","country":"BY",
			"status":{"name":"` + tc.name + `","reason":{"detailedStatus":"` + tc.reason + `","description":""},
			"updatedDate":"2021-12-30T14:18:30.303Z"},"body":{"text":"hi"},"ttl":86400,"label":"42","price":0.02,
			"direction":"Outbound","originatingService":"Viber","createdAt":"2021-12-30T14:18:00.000Z"}`
		rep, err := routee.ParseStatus([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := routee.StatusReport{TrackingID: "t-1", Label: "42", Status: tc.status, Reason: tc.wantReason,
			At: time.Date(2021, 12, 30, 14, 18, 30, 303e6, time.UTC)}
		if p := rep.Price; p == nil || p.Amount != 0.02 || p.Country != "BY" || p.Currency != "" || !p.At.Equal(want.At) {
			t.Errorf("%s: price %+v, want 0.02 in BY at the update's time", tc.name, p)
		}
		rep.Price = nil
		if rep != want || !store.ValidStatus(rep.Status) {
			t.Errorf("%s/%s: %+v, want %+v", tc.name, tc.reason, rep, want)
		}
	}
}

func TestParseStatusVariants(t *testing.T) {
	for body, want := range map[string]routee.StatusReport{
		// detailedStatus and description together.
		`{"trackingId":"t","status":{"name":"Undelivered","reason":{"detailedStatus":"Not Viber User",
		  "description":"The recipient does not use Viber"}}}`: {TrackingID: "t", Status: store.StatusUndelivered,
			Reason: "Not Viber User: The recipient does not use Viber"},
		`{"trackingId":"t","status":{"name":"Failed","reason":{"description":"Only a description"}}}`: {
			TrackingID: "t", Status: store.StatusFailed, Reason: "Only a description"},
		`{"trackingId":"t","status":{"name":"Failed","reason":{"detailedStatus":"Same","description":"same"}}}`: {
			TrackingID: "t", Status: store.StatusFailed, Reason: "Same"},
		// Label only, numeric label, no date, a garbage date.
		`{"label":"42","status":{"name":"Seen"}}`:                    {Label: "42", Status: store.StatusSeen},
		`{"label":42,"status":{"name":"Seen","updatedDate":"soon"}}`: {Label: "42", Status: store.StatusSeen},
		`{"trackingId":"t","status":{"status":"Queued","date":"2021-12-30T14:18:30Z"}}`: {TrackingID: "t",
			Status: store.StatusQueued, At: time.Date(2021, 12, 30, 14, 18, 30, 0, time.UTC)},
		// A flat status string.
		`{"trackingId":"t","status":"Expired"}`: {TrackingID: "t", Status: store.StatusExpired, Reason: "TTL Expired"},
	} {
		rep, err := routee.ParseStatus([]byte(body))
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		if rep != want {
			t.Errorf("%s: %+v, want %+v", body, rep, want)
		}
	}
}

func TestParseStatusErrors(t *testing.T) {
	for _, body := range []string{
		``,
		`<xml/>`,
		`[]`,
		`{"status":{"name":"Delivered"}}`,
		`{"trackingId":"","label":"","status":{"name":"Delivered"}}`,
		`{"trackingId":"t","status":{"name":"Teleported"}}`,
		`{"trackingId":"t","status":{"name":""}}`,
		`{"trackingId":"t"}`,
		`{"trackingId":"t","status":42}`,
	} {
		if rep, err := routee.ParseStatus([]byte(body)); err == nil {
			t.Errorf("%s: no error, %+v", body, rep)
		}
	}
}

func TestParseStatusPrice(t *testing.T) {
	const head = `{"trackingId":"t","status":{"name":"Delivered"}`
	for _, tc := range []struct {
		extra    string
		amount   float64
		currency string
		country  string
		problem  bool // a price was there but unreadable: nil, with a problem
	}{
		{extra: `,"price":0.0312`, amount: 0.0312},
		{extra: `,"price":"0.05","currency":"usd","country":"de"`, amount: 0.05, currency: "USD", country: "DE"},
		{extra: `,"totalPrice":0.07,"priceCurrency":"EUR"`, amount: 0.07, currency: "EUR"},
		{extra: `,"price":0`, amount: 0},
		{extra: `,"price":0.01,"country":"Belarus"`, amount: 0.01}, // an unreadable country is dropped, not the price
		{extra: `,"price":-0.01`, problem: true},
		{extra: `,"price":"cheap"`, problem: true},
		{extra: `,"price":1e300`, problem: true},
		{extra: `,"price":true`, problem: true},
		{extra: `,"price":0.01,"currency":"euro"`, problem: true},
	} {
		rep, err := routee.ParseStatus([]byte(head + tc.extra + `}`))
		if err != nil {
			t.Fatalf("%s: %v (a bad price must not refuse the status)", tc.extra, err)
		}
		if rep.Status != store.StatusDelivered {
			t.Errorf("%s: status %q", tc.extra, rep.Status)
		}
		if tc.problem {
			if rep.Price != nil || rep.PriceProblem == "" {
				t.Errorf("%s: price %+v, problem %q; want none, with a problem", tc.extra, rep.Price, rep.PriceProblem)
			}
			continue
		}
		if p := rep.Price; p == nil || p.Amount != tc.amount || p.Currency != tc.currency || p.Country != tc.country ||
			rep.PriceProblem != "" {
			t.Errorf("%s: price %+v (%q), want %v %q %q", tc.extra, p, rep.PriceProblem, tc.amount, tc.currency, tc.country)
		}
	}
	// No price at all: nil, and nothing to complain about.
	rep, err := routee.ParseStatus([]byte(head + `}`))
	if err != nil || rep.Price != nil || rep.PriceProblem != "" {
		t.Fatalf("no price: %+v, %v", rep, err)
	}
	rep, err = routee.ParseStatus([]byte(head + `,"price":null}`))
	if err != nil || rep.Price != nil || rep.PriceProblem != "" {
		t.Fatalf("null price: %+v, %v", rep, err)
	}
}

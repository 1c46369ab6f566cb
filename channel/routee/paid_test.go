package routee_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"sessiondesk/channel"
	"sessiondesk/channel/routee"
	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/clock"
	"sessiondesk/session"
	"sessiondesk/store"
)

// wire records the raw body of every API request the fake receives.
type wire struct {
	mu   sync.Mutex
	reqs []wireReq
}

type wireReq struct {
	method, path string
	body         map[string]any
}

func (w *wire) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(raw))
		if r.URL.Path != "/oauth/token" {
			var body map[string]any
			_ = json.Unmarshal(raw, &body)
			w.mu.Lock()
			w.reqs = append(w.reqs, wireReq{r.Method, r.URL.Path, body})
			w.mu.Unlock()
		}
		next.ServeHTTP(rw, r)
	})
}

func (w *wire) last(t *testing.T) wireReq {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.reqs) == 0 {
		t.Fatal("no request reached the fake")
	}
	return w.reqs[len(w.reqs)-1]
}

type paidEnv struct {
	fake   *fakeroutee.Server
	wire   *wire
	client *routee.Client
	cfg    routee.Config
}

func setupPaid(t *testing.T) *paidEnv {
	t.Helper()
	clk := clock.NewManual(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))
	e := &paidEnv{fake: fakeroutee.New(fakeroutee.Options{AppID: appID, AppSecret: appSecret, Now: clk.Now}), wire: &wire{}}
	srv := httptest.NewServer(e.wire.wrap(e.fake.Handler()))
	t.Cleanup(srv.Close)
	e.cfg = routee.Config{AppID: appID, AppSecret: appSecret, SenderID: sender, APIURL: srv.URL, AuthURL: srv.URL,
		CallbackURL: "http://127.0.0.1:9/hooks/routee/status/cb-secret",
		InboundURL:  "http://127.0.0.1:9/hooks/routee/inbound/in-secret",
		TTL:         3600 * time.Second, HTTPClient: &http.Client{Timeout: 5 * time.Second}, Now: clk.Now}
	c, err := routee.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.client = c
	t.Cleanup(func() {
		if v := e.fake.Violations(); len(v) > 0 {
			t.Errorf("the client sent malformed requests: %q", v)
		}
	})
	return e
}

func paidMsg(id int64, text string, p store.Paid) store.Outgoing {
	return store.Outgoing{Message: store.Message{ID: id, Kind: session.Text, Body: text, Paid: &p}, Phone: phone}
}

// jsonOf round-trips v so that it compares with a decoded request body.
func jsonOf(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPaidRequestShapes(t *testing.T) {
	e := setupPaid(t)
	cb := map[string]any{"url": e.cfg.CallbackURL, "strategy": "OnChange"}
	cases := []struct {
		name, path string
		msg        store.Outgoing
		want       map[string]any
	}{{
		name: "viber text", path: "/viber",
		msg: paidMsg(7, "Your order is ready", store.Paid{Route: store.RouteViber}),
		want: map[string]any{"senderInfoTrackingId": sender, "to": phone, "ttl": 3600,
			"body": map[string]any{"text": "Your order is ready"}, "callbackUrl": e.cfg.CallbackURL,
			"inboundUrl": e.cfg.InboundURL, "label": "7"},
	}, {
		name: "viber promotional", path: "/viber",
		msg: paidMsg(8, "Spring sale", store.Paid{Route: store.RouteViber, Promotional: true,
			ImageURL: "https://cdn.example.com/sale.png", ButtonCaption: "Shop now", ButtonURL: "https://shop.example.com/sale?a=1&b=2"}),
		want: map[string]any{"senderInfoTrackingId": sender, "to": phone, "ttl": 3600,
			"body": map[string]any{"text": "Spring sale", "imageURL": "https://cdn.example.com/sale.png",
				"viberAction": map[string]any{"caption": "Shop now", "targetUrl": "https://shop.example.com/sale?a=1&b=2"}},
			"callbackUrl": e.cfg.CallbackURL, "inboundUrl": e.cfg.InboundURL, "label": "8"},
	}, {
		name: "failover", path: "/failover",
		msg: paidMsg(9, "Refund sent", store.Paid{Route: store.RouteFailover, SMSFrom: "Shop"}),
		want: map[string]any{"to": phone, "label": "9", "callback": cb, "messages": []any{
			map[string]any{"type": "Viber", "order": 1, "from": sender, "body": map[string]any{"text": "Refund sent"},
				"ttl": 60, "inboundUrl": e.cfg.InboundURL, "failoverOnStatuses": []any{"UNDELIVERED", "EXPIRED", "FAILED"}},
			map[string]any{"type": "Sms", "order": 2, "from": "Shop", "body": "Refund sent"},
		}},
	}, {
		name: "sms", path: "/sms",
		msg:  paidMsg(10, "Code 1234", store.Paid{Route: store.RouteSMS, SMSFrom: "Shop"}),
		want: map[string]any{"body": "Code 1234", "to": phone, "from": "Shop", "label": "10", "callback": cb},
	}}
	for _, c := range cases {
		id, err := e.client.Send(context.Background(), c.msg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := e.wire.last(t)
		if got.method != http.MethodPost || got.path != c.path {
			t.Errorf("%s: %s %s, want POST %s", c.name, got.method, got.path, c.path)
		}
		if want := jsonOf(t, c.want); !reflect.DeepEqual(got.body, want) {
			t.Errorf("%s: body\n%v\nwant\n%v", c.name, got.body, want)
		}
		if _, has := got.body["isSessionMessage"]; has {
			t.Errorf("%s: a paid message carries isSessionMessage", c.name)
		}
		msgs := e.fake.Messages()
		if m := msgs[len(msgs)-1]; m.TrackingID != id || m.Session {
			t.Errorf("%s: the fake recorded %+v for tracking id %s", c.name, m, id)
		}
	}
	// A session message still says it is one.
	if _, err := e.client.Send(context.Background(), text(11, "in session")); err != nil {
		t.Fatal(err)
	}
	if got := e.wire.last(t); got.body["isSessionMessage"] != true {
		t.Errorf("session message: %v", got.body)
	}
}

func TestPaidLocalRefusals(t *testing.T) {
	e := setupPaid(t)
	for name, m := range map[string]store.Outgoing{
		"http button":  paidMsg(1, "hi", store.Paid{Route: store.RouteViber, ButtonCaption: "Go", ButtonURL: "http://x.example"}),
		"sms, no from": paidMsg(2, "hi", store.Paid{Route: store.RouteSMS}),
		"unknown":      paidMsg(3, "hi", store.Paid{Route: "fax"}),
		"empty":        paidMsg(4, " ", store.Paid{Route: store.RouteViber}),
	} {
		_, err := e.client.Send(context.Background(), m)
		if _, ok := channel.IsRejected(err); !ok {
			t.Errorf("%s: %v, want a rejection", name, err)
		}
	}
	if n := len(e.fake.Messages()); n != 0 {
		t.Errorf("%d messages reached the fake", n)
	}
}

func TestFakeRefusesMalformedPaid(t *testing.T) {
	e := setupPaid(t)
	tok := token(t, strings.TrimSuffix(e.cfg.APIURL, "/"))
	post := func(path, body string) int {
		req, _ := http.NewRequest("POST", e.cfg.APIURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	base := `"senderInfoTrackingId":"s","to":"+375298603938","ttl":60,"callbackUrl":"http://127.0.0.1:1/c","inboundUrl":"http://127.0.0.1:1/i","label":"1"`
	for name, c := range map[string][2]string{
		"image, no button": {"/viber", `{` + base + `,"body":{"text":"a","imageURL":"https://i.example/a.png"}}`},
		"http button":      {"/viber", `{` + base + `,"body":{"text":"a","viberAction":{"caption":"Go","targetUrl":"http://x"}}}`},
		"long caption":     {"/viber", `{` + base + `,"body":{"text":"a","viberAction":{"caption":"` + strings.Repeat("x", 31) + `","targetUrl":"https://x"}}}`},
		"sms, no from":     {"/sms", `{"body":"a","to":"+375298603938","label":"1","callback":{"url":"http://127.0.0.1:1/c","strategy":"OnChange"}}`},
		"failover ttl sec": {"/failover", `{"to":"+375298603938","label":"1","callback":{"url":"http://127.0.0.1:1/c","strategy":"OnChange"},"messages":[{"type":"Viber","order":1,"from":"s","body":{"text":"a"},"ttl":86400}]}`},
		"failover order":   {"/failover", `{"to":"+375298603938","label":"1","callback":{"url":"http://127.0.0.1:1/c","strategy":"OnChange"},"messages":[{"type":"Sms","order":2,"from":"s","body":"a"}]}`},
	} {
		if st := post(c[0], c[1]); st != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, st)
		}
	}
	if n := len(e.fake.Violations()); n != 6 {
		t.Errorf("%d violations, want 6: %q", n, e.fake.Violations())
	}
	if n := len(e.fake.Messages()); n != 0 {
		t.Errorf("%d recorded", n)
	}
	// Those violations were the test's own doing.
	*e = paidEnv{fake: fakeroutee.New(fakeroutee.Options{})}
}

// token fetches an access token from the fake at base.
func token(t *testing.T, base string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.SetBasicAuth(appID, appSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %v", err)
	}
	return tok.AccessToken
}

// reports collects what the fake posts to the callback URL.
func reports(t *testing.T) (string, func() [][]byte) {
	t.Helper()
	var mu sync.Mutex
	var got [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, b)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/cb", func() [][]byte { mu.Lock(); defer mu.Unlock(); return append([][]byte(nil), got...) }
}

func TestFailoverAfterNotViberUser(t *testing.T) {
	e := setupPaid(t)
	url, got := reports(t)
	e.cfg.CallbackURL = url
	c, _ := routee.New(e.cfg)
	e.fake.NotViberUser(phone, true)
	id, err := c.Send(context.Background(), paidMsg(5, "Your refund went through", store.Paid{Route: store.RouteFailover, SMSFrom: "Shop"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.fake.Settle(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	bodies := got()
	if len(bodies) != 1 {
		t.Fatalf("%d reports, want 1", len(bodies))
	}
	rep, err := routee.ParseStatus(bodies[0])
	if err != nil || rep.TrackingID != id || rep.Status != store.StatusDelivered || rep.Label != "5" {
		t.Fatalf("status %+v, %v", rep, err)
	}
	d, err := routee.ParsePaid(bodies[0])
	if err != nil {
		t.Fatal(err)
	}
	if d.FinalChannel != "sms" || d.Price == nil || *d.Price != fakeroutee.DefaultSMSPrice || len(d.Steps) != 2 {
		t.Fatalf("paid report %+v", d)
	}
	if d.Steps[0].Channel != "viber" || d.Steps[0].Status != store.StatusUndelivered || d.Steps[0].Reason != "Not Viber User" ||
		d.Steps[1].Channel != "sms" || d.Steps[1].Status != store.StatusDelivered {
		t.Errorf("steps %+v", d.Steps)
	}
	if !reflect.DeepEqual(store.ReasonFlags(strings.Join(d.Reasons, "; ")), []string{store.FlagNotViberUser}) {
		t.Errorf("reasons %q flag %v", d.Reasons, store.ReasonFlags(strings.Join(d.Reasons, "; ")))
	}
	// A Viber step that was delivered does not go on to SMS.
	if _, err := e.fake.FailoverPayload(id, "Delivered", "", "Delivered"); err == nil {
		t.Error("the fake failed over from a delivered Viber step")
	}
}

func TestPaidViberAndSMSReports(t *testing.T) {
	e := setupPaid(t)
	url, got := reports(t)
	e.cfg.CallbackURL = url
	c, _ := routee.New(e.cfg)
	vid, err := c.Send(context.Background(), paidMsg(1, "hi", store.Paid{Route: store.RouteViber}))
	if err != nil {
		t.Fatal(err)
	}
	sid, err := c.Send(context.Background(), paidMsg(2, "hi", store.Paid{Route: store.RouteSMS, SMSFrom: "Shop"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{vid, sid} {
		if err := e.fake.Settle(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	bodies := got()
	want := []struct {
		channel string
		price   float64
		label   string
	}{{"viber", fakeroutee.DefaultViberPrice, "1"}, {"sms", fakeroutee.DefaultSMSPrice, "2"}}
	for i, b := range bodies {
		rep, err := routee.ParseStatus(b)
		d, _ := routee.ParsePaid(b)
		if err != nil || rep.Status != store.StatusDelivered || rep.Label != want[i].label || d.Price == nil ||
			*d.Price != want[i].price || d.FinalChannel != want[i].channel {
			t.Errorf("report %d: %+v %+v %v (%s)", i, rep, d, err, b)
		}
	}
	// The tracking lookup knows the Viber message, with its price, as not a session message.
	tr, found, err := c.Track(context.Background(), vid)
	if err != nil || !found || tr.Report.Status != store.StatusDelivered || tr.SessionMessage ||
		tr.Paid.Price == nil || *tr.Paid.Price != fakeroutee.DefaultViberPrice {
		t.Errorf("tracking %+v found %v err %v", tr, found, err)
	}
	// A lost report: Routee knows it was seen, the tracking lookup tells.
	e.fake.SetStatus(vid, "Seen", "")
	if tr, _, _ := c.Track(context.Background(), vid); tr.Report.Status != store.StatusSeen {
		t.Errorf("after a lost report: %+v", tr.Report)
	}
	if _, found, err := c.Track(context.Background(), "no-such-id"); found || err != nil {
		t.Errorf("unknown id: found %v err %v", found, err)
	}
	ss, err := c.Sessions(context.Background(), phone)
	if err != nil || len(ss) != 1 || len(ss[0].TrackingIDs) != 1 || ss[0].TrackingIDs[0] != vid {
		t.Errorf("sessions %+v, %v", ss, err)
	}
}

func TestInboundReference(t *testing.T) {
	f := fakeroutee.New(fakeroutee.Options{})
	in, err := routee.ParseInbound(f.InboundPayload(fakeroutee.Inbound{From: phone, Text: "Thanks!",
		ReferenceTrackingID: "abc-123", SentAt: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)}), time.Now())
	if err != nil || in.ReferenceTrackingID != "abc-123" {
		t.Fatalf("%+v %v", in, err)
	}
}

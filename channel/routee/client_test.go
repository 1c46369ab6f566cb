package routee_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
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

const (
	appID     = "app-id-1"
	appSecret = "s3cret-do-not-leak"
	sender    = "sender-tracking-1"
	phone     = "+375298603938"
)

type env struct {
	fake   *fakeroutee.Server
	srv    *httptest.Server
	clock  *clock.Manual
	client *routee.Client
	cfg    routee.Config
}

// setup starts a fake Routee and a client talking to it; mod may change the
// client's configuration.
func setup(t *testing.T, mod func(*routee.Config)) *env {
	t.Helper()
	e := &env{clock: clock.NewManual(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))}
	e.fake = fakeroutee.New(fakeroutee.Options{AppID: appID, AppSecret: appSecret, Now: e.clock.Now})
	e.srv = httptest.NewServer(e.fake.Handler())
	t.Cleanup(e.srv.Close)
	e.cfg = routee.Config{
		AppID:       appID,
		AppSecret:   appSecret,
		SenderID:    sender,
		APIURL:      e.srv.URL,
		AuthURL:     e.srv.URL + "/", // a trailing slash is tolerated
		CallbackURL: "http://127.0.0.1:9/hooks/routee/status/cb-secret",
		InboundURL:  "http://127.0.0.1:9/hooks/routee/inbound/in-secret",
		HTTPClient:  &http.Client{Timeout: 2 * time.Second},
		Now:         e.clock.Now,
	}
	if mod != nil {
		mod(&e.cfg)
	}
	c, err := routee.New(e.cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.client = c
	t.Cleanup(func() {
		if v := e.fake.Violations(); len(v) > 0 {
			t.Errorf("the client sent malformed requests: %q", v)
		}
	})
	return e
}

func text(id int64, body string) store.Outgoing {
	return store.Outgoing{Message: store.Message{ID: id, Kind: session.Text, Body: body}, Phone: phone}
}

func (e *env) send(t *testing.T, msg store.Outgoing) string {
	t.Helper()
	id, err := e.client.Send(context.Background(), msg)
	if err != nil {
		t.Fatalf("Send %d: %v", msg.ID, err)
	}
	if id == "" {
		t.Fatalf("Send %d: empty tracking id", msg.ID)
	}
	return id
}

func TestSendRequestShape(t *testing.T) {
	e := setup(t, nil)
	msgs := []store.Outgoing{
		text(41, "Hello <b>&</b> привет"),
		{Message: store.Message{ID: 42, Kind: session.Image, MediaURL: "https://files.example.com/a/Xy9.png"}, Phone: phone},
		{Message: store.Message{ID: 43, Kind: session.File, MediaURL: "http://127.0.0.1:8080/a/Zz1", FileName: "Invoice.PDF"}, Phone: phone},
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, e.send(t, m))
	}
	got := e.fake.Messages()
	if len(got) != 3 {
		t.Fatalf("fake accepted %d messages, want 3", len(got))
	}
	for i, m := range got {
		if m.TrackingID != ids[i] {
			t.Errorf("message %d: Send returned %q, the fake issued %q", i, ids[i], m.TrackingID)
		}
		if m.To != phone || m.From != sender || m.TTL != 86400 || m.Label != strconv.FormatInt(msgs[i].ID, 10) ||
			m.CallbackURL != e.cfg.CallbackURL || m.InboundURL != e.cfg.InboundURL {
			t.Errorf("message %d: %+v", i, m)
		}
	}
	if got[0].Text != "Hello <b>&</b> привет" || got[0].ImageURL != "" || got[0].FileURL != "" {
		t.Errorf("text message: %+v", got[0])
	}
	if got[1].ImageURL != "https://files.example.com/a/Xy9.png" || got[1].Text != "" || got[1].FileURL != "" {
		t.Errorf("image message: %+v", got[1])
	}
	if got[2].FileName != "Invoice.PDF" || got[2].FileType != "pdf" || got[2].FileURL != "http://127.0.0.1:8080/a/Zz1" ||
		got[2].Text != "" || got[2].ImageURL != "" {
		t.Errorf("file message: %+v", got[2])
	}
	for _, m := range msgs {
		if n := e.fake.Count(strconv.FormatInt(m.ID, 10)); n != 1 {
			t.Errorf("label %d accepted %d times", m.ID, n)
		}
	}
}

func TestSendTTLSetting(t *testing.T) {
	e := setup(t, func(c *routee.Config) { c.TTL = 90 * time.Second })
	e.send(t, text(1, "hi"))
	if ttl := e.fake.Messages()[0].TTL; ttl != 90 {
		t.Errorf("ttl = %d, want 90", ttl)
	}
}

func TestTokenReused(t *testing.T) {
	e := setup(t, nil)
	for i := range 5 {
		e.send(t, text(int64(i+1), "hi"))
		e.clock.Add(5 * time.Minute)
	}
	if n := e.fake.TokensIssued(); n != 1 {
		t.Errorf("tokens fetched: %d, want 1", n)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	e := setup(t, nil) // the fake's tokens live 1 h; the client stops 60 s early
	e.send(t, text(1, "a"))
	e.clock.Add(58 * time.Minute)
	e.send(t, text(2, "b"))
	if n := e.fake.TokensIssued(); n != 1 {
		t.Fatalf("tokens after 58 min: %d, want 1", n)
	}
	e.clock.Add(90 * time.Second) // 59 min 30 s: inside the safety margin
	e.send(t, text(3, "c"))
	if n := e.fake.TokensIssued(); n != 2 {
		t.Fatalf("tokens after 59.5 min: %d, want 2", n)
	}
	e.clock.Add(2 * time.Hour) // long expired
	e.send(t, text(4, "d"))
	if n := e.fake.TokensIssued(); n != 3 {
		t.Fatalf("tokens after 2 h more: %d, want 3", n)
	}
}

func TestShortLivedTokenMargin(t *testing.T) {
	c := clock.NewManual(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))
	fake := fakeroutee.New(fakeroutee.Options{AppID: appID, AppSecret: appSecret, Now: c.Now, TokenTTL: 100 * time.Second})
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()
	client, err := routee.New(routee.Config{AppID: appID, AppSecret: appSecret, SenderID: sender, APIURL: srv.URL,
		AuthURL: srv.URL, CallbackURL: "https://x.example/cb", InboundURL: "https://x.example/in", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := client.Send(ctx, text(1, "a")); err != nil {
		t.Fatal(err)
	}
	c.Add(89 * time.Second) // 10% margin: used until 90 s
	if _, err := client.Send(ctx, text(2, "b")); err != nil {
		t.Fatal(err)
	}
	c.Add(2 * time.Second)
	if _, err := client.Send(ctx, text(3, "c")); err != nil {
		t.Fatal(err)
	}
	if n := fake.TokensIssued(); n != 2 {
		t.Errorf("tokens: %d, want 2", n)
	}
}

func TestRevokedTokenRefreshedOnce(t *testing.T) {
	e := setup(t, nil)
	e.send(t, text(1, "a"))
	e.fake.RevokeTokens()
	e.send(t, text(2, "b"))
	if n := e.fake.TokensIssued(); n != 2 {
		t.Errorf("tokens: %d, want 2", n)
	}
	if n := len(e.fake.Messages()); n != 2 {
		t.Errorf("messages: %d, want 2", n)
	}
	if e.fake.Count("2") != 1 {
		t.Errorf("message 2 accepted %d times", e.fake.Count("2"))
	}
}

func TestCredentialsRefusedAfterRetry(t *testing.T) {
	e := setup(t, nil)
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		before := e.fake.TokensIssued()
		e.fake.FailNext(2, status)
		_, err := e.client.Send(context.Background(), text(1, "a"))
		if err == nil {
			t.Fatalf("%d twice: no error", status)
		}
		if _, ok := channel.IsRejected(err); ok {
			t.Errorf("%d twice: %v is a rejection, want retryable", status, err)
		}
		if !strings.Contains(err.Error(), "refused the credentials") {
			t.Errorf("%d twice: %v", status, err)
		}
		// Only the second token was fetched by this send (the first may be cached).
		if n := e.fake.TokensIssued() - before; n < 1 || n > 2 {
			t.Errorf("%d twice: %d token fetches", status, n)
		}
	}
	if n := len(e.fake.Messages()); n != 0 {
		t.Errorf("messages: %d, want 0", n)
	}
	// A later send works.
	e.send(t, text(2, "b"))
}

func TestWrongSecret(t *testing.T) {
	e := setup(t, func(c *routee.Config) { c.AppSecret = "wrong-secret-42" })
	_, err := e.client.Send(context.Background(), text(1, "a"))
	if err == nil {
		t.Fatal("no error")
	}
	if _, ok := channel.IsRejected(err); ok {
		t.Errorf("%v is a rejection, want retryable", err)
	}
	if !strings.Contains(err.Error(), "refused the credentials") || strings.Contains(err.Error(), "wrong-secret-42") {
		t.Errorf("error: %v", err)
	}
}

func TestRetryableStatuses(t *testing.T) {
	e := setup(t, nil)
	for _, status := range []int{500, 502, 503, 408, 425, 429} {
		e.fake.FailNext(1, status)
		_, err := e.client.Send(context.Background(), text(1, "a"))
		if err == nil {
			t.Fatalf("%d: no error", status)
		}
		if _, ok := channel.IsRejected(err); ok {
			t.Errorf("%d: %v is a rejection, want retryable", status, err)
		}
		if !strings.Contains(err.Error(), strconv.Itoa(status)) || !strings.Contains(err.Error(), "Simulated failure") {
			t.Errorf("%d: error lacks the status or the body: %v", status, err)
		}
	}
	if n := len(e.fake.Messages()); n != 0 {
		t.Errorf("messages: %d, want 0", n)
	}
	e.send(t, text(2, "b"))
}

func TestDown(t *testing.T) {
	e := setup(t, nil)
	e.send(t, text(1, "a"))
	for _, mode := range []fakeroutee.DownMode{fakeroutee.Unavailable, fakeroutee.Hangup} {
		e.fake.SetDownMode(mode)
		e.fake.SetDown(true)
		_, err := e.client.Send(context.Background(), text(2, "b"))
		if err == nil {
			t.Fatalf("mode %d: no error", mode)
		}
		if _, ok := channel.IsRejected(err); ok {
			t.Errorf("mode %d: %v is a rejection, want retryable", mode, err)
		}
		e.fake.SetDown(false)
	}
	e.send(t, text(2, "b"))
	if e.fake.Count("2") != 1 {
		t.Errorf("message 2 accepted %d times", e.fake.Count("2"))
	}
}

func TestRejected(t *testing.T) {
	e := setup(t, nil)
	e.fake.RejectTo(phone, "400005", "Not Viber User")
	_, err := e.client.Send(context.Background(), text(1, "a"))
	rej, ok := channel.IsRejected(err)
	if !ok {
		t.Fatalf("error %v, want a rejection", err)
	}
	if rej.Reason != "Not Viber User (400005)" {
		t.Errorf("reason %q", rej.Reason)
	}
	e.fake.RejectTo(phone, "", "")
	e.fake.FailNext(1, http.StatusNotFound)
	if _, err := e.client.Send(context.Background(), text(1, "a")); err == nil {
		t.Error("404: no error")
	} else if _, ok := channel.IsRejected(err); !ok {
		t.Errorf("404: %v, want a rejection", err)
	}
	if n := len(e.fake.Messages()); n != 0 {
		t.Errorf("messages: %d, want 0", n)
	}
}

// canned is a Routee whose /viber answers status and body.
func canned(t *testing.T, status int, body string) *routee.Client {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"access_token":"tok","expires_in":3600,"token_type":"Bearer"}`)
	})
	mux.HandleFunc("POST /viber", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := routee.New(routee.Config{AppID: appID, AppSecret: appSecret, SenderID: sender, APIURL: srv.URL,
		AuthURL: srv.URL, CallbackURL: "https://x.example/cb", InboundURL: "https://x.example/in"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAnswers(t *testing.T) {
	for _, tc := range []struct {
		status    int
		body      string
		tracking  string
		reason    string // a rejection with this reason
		retryable string // a plain error containing this
	}{
		{200, `{"trackingId":"t-1","status":{"status":"Queued"}}`, "t-1", "", ""},
		{201, `{"trackingId":"t-2"}`, "t-2", "", ""},
		{200, `{"to":"+375298603938"}`, "", "", "without a trackingId"},
		{200, `<html>ok</html>`, "", "", "no JSON"},
		{400, `{"code":"007","developerMessage":"Invalid viber message type combination","entity":"viber","properties":{}}`,
			"", "Invalid viber message type combination (007)", ""},
		{400, `{"code":"019","message":"Provided viber file is not valid"}`, "", "Provided viber file is not valid (019)", ""},
		{422, `{"description":"Bad number"}`, "", "Bad number", ""},
		{400, `not json`, "", "Routee answered 400 Bad Request: not json", ""},
		{409, ``, "", "Routee answered 409 Conflict", ""},
		{503, `<html>` + strings.Repeat("x", 5000) + `</html>`, "", "", "503 Service Unavailable: <html>xxx"},
		{302, ``, "", "", "302"},
	} {
		c := canned(t, tc.status, tc.body)
		id, err := c.Send(context.Background(), text(1, "a"))
		switch {
		case tc.tracking != "":
			if err != nil || id != tc.tracking {
				t.Errorf("%d %s: %q, %v", tc.status, tc.body, id, err)
			}
		case tc.reason != "":
			if rej, ok := channel.IsRejected(err); !ok || rej.Reason != tc.reason {
				t.Errorf("%d %s: %v, want rejection %q", tc.status, tc.body, err, tc.reason)
			}
		default:
			if err == nil || !strings.Contains(err.Error(), tc.retryable) {
				t.Errorf("%d %s: %v, want an error with %q", tc.status, tc.body, err, tc.retryable)
			} else if _, ok := channel.IsRejected(err); ok {
				t.Errorf("%d: %v is a rejection", tc.status, err)
			} else if len(err.Error()) > 500 {
				t.Errorf("%d: error of %d bytes", tc.status, len(err.Error()))
			}
		}
	}
}

func TestTimeout(t *testing.T) {
	e := setup(t, func(c *routee.Config) { c.HTTPClient = &http.Client{Timeout: 150 * time.Millisecond} })
	e.send(t, text(1, "warm up the token"))
	e.fake.SetDelay(3 * time.Second)
	start := time.Now()
	_, err := e.client.Send(context.Background(), text(2, "slow"))
	if err == nil {
		t.Fatal("no error")
	}
	if _, ok := channel.IsRejected(err); ok {
		t.Errorf("%v is a rejection, want retryable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	// A context deadline works as well.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := e.client.Send(ctx, text(3, "slow")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("context deadline: %v", err)
	}
	e.fake.SetDelay(0)
	e.send(t, text(4, "fast"))
	if n := e.fake.Count("2") + e.fake.Count("3"); n != 0 {
		t.Errorf("timed-out messages were recorded %d times", n)
	}
}

func TestLocalRefusals(t *testing.T) {
	e := setup(t, nil)
	long := "https://files.example.com/" + strings.Repeat("a", 1000)
	for name, msg := range map[string]store.Outgoing{
		"button kind":     {Message: store.Message{ID: 1, Kind: "button", Body: "Buy"}, Phone: phone},
		"empty kind":      {Message: store.Message{ID: 1, Body: "x"}, Phone: phone},
		"empty text":      text(1, ""),
		"blank text":      text(1, "  \n "),
		"1001 characters": text(1, strings.Repeat("ж", 1001)),
		"no phone":        {Message: store.Message{ID: 1, Kind: session.Text, Body: "x"}},
		"not E.164":       {Message: store.Message{ID: 1, Kind: session.Text, Body: "x"}, Phone: "80298603938"},
		"image no URL":    {Message: store.Message{ID: 1, Kind: session.Image}, Phone: phone},
		"image http":      {Message: store.Message{ID: 1, Kind: session.Image, MediaURL: "http://files.example.com/a.png"}, Phone: phone},
		"image relative":  {Message: store.Message{ID: 1, Kind: session.Image, MediaURL: "/a/b.png"}, Phone: phone},
		"image too long":  {Message: store.Message{ID: 1, Kind: session.Image, MediaURL: long}, Phone: phone},
		"file no URL":     {Message: store.Message{ID: 1, Kind: session.File, FileName: "a.pdf"}, Phone: phone},
		"file no name":    {Message: store.Message{ID: 1, Kind: session.File, MediaURL: "https://x.example/f"}, Phone: phone},
		"file no ext":     {Message: store.Message{ID: 1, Kind: session.File, MediaURL: "https://x.example/f", FileName: "README"}, Phone: phone},
		"file ftp":        {Message: store.Message{ID: 1, Kind: session.File, MediaURL: "ftp://x.example/f", FileName: "a.pdf"}, Phone: phone},
	} {
		_, err := e.client.Send(context.Background(), msg)
		if rej, ok := channel.IsRejected(err); !ok || rej.Reason == "" {
			t.Errorf("%s: %v, want a rejection", name, err)
		}
	}
	if n := e.fake.TokensIssued(); n != 0 {
		t.Errorf("tokens fetched: %d, want 0 (no request at all)", n)
	}
	if n := len(e.fake.Messages()); n != 0 {
		t.Errorf("messages: %d", n)
	}
	// Loopback http and 1000 characters are fine.
	ok := "https://files.example.com/" + strings.Repeat("a", 1000-len("https://files.example.com/"))
	for _, u := range []string{ok, "http://localhost:8080/a.png", "http://[::1]/a.png", "http://127.0.0.1/a.png"} {
		e.send(t, store.Outgoing{Message: store.Message{ID: 9, Kind: session.Image, MediaURL: u}, Phone: phone})
	}
	e.send(t, text(10, strings.Repeat("ж", 1000)))
}

func TestConcurrentSendsShareOneToken(t *testing.T) {
	e := setup(t, nil)
	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if _, err := e.client.Send(context.Background(), text(int64(i+1), fmt.Sprint("message ", i))); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if k := e.fake.TokensIssued(); k != 1 {
		t.Errorf("tokens fetched: %d, want 1", k)
	}
	for i := range n {
		if c := e.fake.Count(strconv.Itoa(i + 1)); c != 1 {
			t.Errorf("label %d accepted %d times", i+1, c)
		}
	}
	// After a revocation, concurrent sends still fetch one token between them.
	e.fake.RevokeTokens()
	var wg2 sync.WaitGroup
	for i := range n {
		wg2.Go(func() {
			if _, err := e.client.Send(context.Background(), text(int64(100+i), "again")); err != nil {
				t.Error(err)
			}
		})
	}
	wg2.Wait()
	if k := e.fake.TokensIssued(); k != 2 {
		t.Errorf("tokens fetched after revocation: %d, want 2", k)
	}
}

func TestMountedUnderPrefix(t *testing.T) {
	fake := fakeroutee.New(fakeroutee.Options{AppID: appID, AppSecret: appSecret})
	mux := http.NewServeMux()
	mux.Handle("/sandbox/routee/", http.StripPrefix("/sandbox/routee", fake.Handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := routee.New(routee.Config{AppID: appID, AppSecret: appSecret, SenderID: sender,
		APIURL: srv.URL + "/sandbox/routee/", AuthURL: srv.URL + "/sandbox/routee",
		CallbackURL: srv.URL + "/hooks/cb", InboundURL: srv.URL + "/hooks/in"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), text(7, "hi")); err != nil {
		t.Fatal(err)
	}
	if fake.Count("7") != 1 || len(fake.Violations()) != 0 {
		t.Errorf("count %d, violations %q", fake.Count("7"), fake.Violations())
	}
}

func TestStatusCallbackEndToEnd(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies [][]byte
	)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	defer hooks.Close()
	e := setup(t, func(c *routee.Config) { c.CallbackURL = hooks.URL + "/status/x" })
	id := e.send(t, text(77, "hi"))
	for _, st := range []string{"Sent", "Delivered"} {
		if err := e.fake.ReportStatus(context.Background(), id, st, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.fake.ReportStatus(context.Background(), "nope", "Sent", ""); err == nil {
		t.Error("unknown tracking id: no error")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 {
		t.Fatalf("%d callbacks", len(bodies))
	}
	rep, err := routee.ParseStatus(bodies[1])
	if err != nil {
		t.Fatal(err)
	}
	if rep.TrackingID != id || rep.Label != "77" || rep.Status != store.StatusDelivered || !rep.At.Equal(e.clock.Now()) {
		t.Errorf("report %+v", rep)
	}
}

func TestConfigValidate(t *testing.T) {
	err := routee.Config{AppSecret: "  ", TTL: 5 * time.Second, APIURL: "connect.routee.net",
		CallbackURL: "https://user:pw@x.example/cb", InboundURL: "/relative"}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"AppID", "AppSecret", "SenderID", "APIURL", "CallbackURL", "InboundURL", "TTL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "AuthURL") {
		t.Errorf("an empty AuthURL means the default: %v", err)
	}
	if strings.Contains(err.Error(), "pw@") {
		t.Errorf("error repeats a credential: %v", err)
	}
	good := routee.Config{AppID: "a", AppSecret: "b", SenderID: "c", CallbackURL: "https://x.example/cb",
		InboundURL: "https://x.example/in"}
	if err := good.Validate(); err != nil {
		t.Errorf("good config: %v", err)
	}
	for _, ttl := range []time.Duration{30 * time.Second, 86400 * time.Second} {
		good.TTL = ttl
		if err := good.Validate(); err != nil {
			t.Errorf("ttl %v: %v", ttl, err)
		}
	}
	for _, ttl := range []time.Duration{29 * time.Second, 86401 * time.Second, -time.Second} {
		good.TTL = ttl
		if err := good.Validate(); err == nil {
			t.Errorf("ttl %v: no error", ttl)
		}
	}
	if _, err := routee.New(routee.Config{AppSecret: appSecret}); err == nil || strings.Contains(err.Error(), appSecret) {
		t.Errorf("New with a bad config: %v", err)
	}
}

package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/clock"
	"sessiondesk/config"
	"sessiondesk/handlers"
	"sessiondesk/static"
	"sessiondesk/store"
)

// startAppWith is startApp with options of the test's own.
func startAppWith(t *testing.T, opts Options, mutate ...func(*config.Config)) *testApp {
	t.Helper()
	cfg, err := config.Parse([]string{"--addr", "127.0.0.1:0", "--data", t.TempDir(), "--no-demo"},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mutate {
		m(&cfg)
	}
	clk := clock.NewManual(t0)
	opts.Now = clk.Now
	return runApp(t, cfg, clk, opts)
}

// send makes a request with the Host header given.
func (ta *testApp) sendHost(t *testing.T, method, path, host, contentType, body string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, ta.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, res.Header
}

// Issue 9, point 11: a page of another site whose DNS name was rebound to
// 127.0.0.1 reaches the dev-mode inbox over loopback with its own Host; it
// gets neither pages, nor the API, nor the websocket. The provider's paths,
// which carry their own secrets, stay reachable.
func TestDevModeAnswersOnlyItsOwnHost(t *testing.T) {
	ta := startApp(t)
	_, port, _ := net.SplitHostPort(ta.Addr().String())
	forged := "rebound.attacker.example:" + port
	for _, path := range []string{"/", "/api/v1/conversations", "/sandbox", "/admin/audit.csv", "/healthz", "/nowhere"} {
		if status, _ := ta.sendHost(t, "GET", path, forged, "", ""); status != http.StatusMisdirectedRequest {
			t.Errorf("GET %s with Host %s: %d, want 421", path, forged, status)
		}
		for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port, "[::1]:" + port} {
			if status, _ := ta.sendHost(t, "GET", path, host, "", ""); status == http.StatusMisdirectedRequest {
				t.Errorf("GET %s with Host %s: 421, want it answered", path, host)
			}
		}
	}
	// The right port only: another local service's name is not this one's.
	if status, _ := ta.sendHost(t, "GET", "/", "localhost:1", "", ""); status != http.StatusMisdirectedRequest {
		t.Errorf("Host localhost:1: %d, want 421", status)
	}
	body := `{"from":"+375298603938","text":"hi"}`
	if status, _ := ta.sendHost(t, "POST", "/sandbox/messages", forged, "application/json", body); status != http.StatusMisdirectedRequest {
		t.Errorf("POST /sandbox/messages with a forged Host: %d, want 421", status)
	}
	if status, _ := ta.sendHost(t, "POST", "/api/v1/conversations/1/messages", forged, "application/json", `{"text":"x"}`); status != http.StatusMisdirectedRequest {
		t.Errorf("POST to the API with a forged Host: %d, want 421", status)
	}

	// The websocket upgrade, even with this inbox's own Origin.
	u, _ := url.Parse(ta.base)
	h := http.Header{}
	h.Set("Origin", ta.base)
	h.Set("Host", forged)
	conn, res, err := websocket.DefaultDialer.Dial("ws://"+u.Host+"/ws?after=0", h)
	if err == nil {
		conn.Close()
		t.Error("the websocket upgraded for a forged Host")
	} else if res == nil || res.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("websocket with a forged Host: %v, want 421", err)
	}

	// The webhooks are reached by the provider, on its own name.
	fake := fakeroutee.New(fakeroutee.Options{AppID: "x", AppSecret: "y"})
	payload := fake.InboundPayload(fakeroutee.Inbound{From: "+375298603938", To: "sender", Text: "hello"})
	status, _ := ta.sendHost(t, "POST", "/webhooks/routee/"+ta.webhookSecret+"/inbound", "tunnel.example:443", "application/json", string(payload))
	if status != http.StatusOK && status != http.StatusNoContent {
		t.Errorf("inbound webhook through a tunnel's name: %d, want it accepted", status)
	}
}

// Issue 9, point 14: pages and API answers are not cached, /static/ lists no
// folder.
func TestNoStoreAndNoDirectoryListing(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "hello")
	id := strconv.FormatInt(conv, 10)
	for _, path := range []string{"/", "/c/" + id, "/c/" + id + "/state", "/api/v1/conversations", "/api/v1/conversations/" + id,
		"/api/v1/conversations/" + id + "/messages", "/api/v1/conversations/999999", "/sandbox", "/admin/audit.csv"} {
		status, h := ta.sendHost(t, "GET", path, "", "", "")
		if status >= 500 {
			t.Errorf("GET %s: %d", path, status)
		}
		if got := h.Get("Cache-Control"); got != "no-store" {
			t.Errorf("GET %s (%d): Cache-Control %q, want no-store", path, status, got)
		}
	}
	for _, path := range []string{"/static/", "/static/js/", "/static/vendor", "/static/css/"} {
		status, body := ta.do(t, "GET", path, "", "")
		if status != http.StatusNotFound || bytes.Contains(body, []byte("app.js")) || bytes.Contains(body, []byte("htmx")) {
			t.Errorf("GET %s: %d %.200s, want 404 and no listing", path, status, body)
		}
	}
	if status, _ := ta.do(t, "GET", "/static/js/app.js", "", ""); status != 200 {
		t.Errorf("GET /static/js/app.js: %d", status)
	}
}

// Issue 9, point 14: a client's photo or document, shown to a signed-in agent,
// is no more cached than the page around it: no browser keeps it on disk
// after the agent signs out. The provider's public media URL is not a page.
func TestAttachmentsShownToAgentsAreNotStored(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Send me the invoice please")
	status, _, body := ta.upload(t, "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages",
		part{"file", "screenshot.png", bytes.NewReader(pngBytes(t, 64, 48))},
		part{"file", "invoice.pdf", strings.NewReader(minimalPDF)})
	if status != http.StatusCreated {
		t.Fatalf("send: %d %s", status, body)
	}
	var atts []store.Attachment
	err := ta.Store.Read(context.Background(), func(r *store.Reader) error {
		msgs, err := r.Messages(context.Background(), conv, 10)
		for _, m := range msgs {
			if m.Attachment != nil {
				atts = append(atts, *m.Attachment)
			}
		}
		return err
	})
	if err != nil || len(atts) != 2 || atts[0].ThumbHash == "" {
		t.Fatalf("attachments %+v, %v: want the image (with its thumbnail) and the file", atts, err)
	}
	for _, path := range []string{"/attachments/" + strconv.FormatInt(atts[0].ID, 10),
		"/attachments/" + strconv.FormatInt(atts[0].ID, 10) + "/thumb", "/attachments/" + strconv.FormatInt(atts[1].ID, 10)} {
		status, h := ta.sendHost(t, "GET", path, "", "", "")
		if status != http.StatusOK || h.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: %d, Cache-Control %q, want 200 and no-store", path, status, h.Get("Cache-Control"))
		}
	}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Issue 9, point 14: the webhook secret is in no log line at any level, also
// with the request log on, and whether a webhook is right, wrong or fails.
func TestWebhookSecretNeverLogged(t *testing.T) {
	const secret = "s3cr3t-webhook-path-0123456789"
	for _, format := range []string{"text", "json"} {
		var out syncBuffer
		var h slog.Handler = slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})
		if format == "json" {
			h = slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})
		}
		ta := startAppWith(t, Options{Log: slog.New(h)}, func(c *config.Config) { c.WebhookSecret = secret })
		ta.clientWrites(t, "+375298603938", "hello") // the sandbox posts to the inbound webhook
		hooks := "/webhooks/routee/" + secret
		fake := fakeroutee.New(fakeroutee.Options{AppID: "x", AppSecret: "y"})
		for _, r := range []struct{ path, body string }{
			{hooks + "/inbound", string(fake.InboundPayload(fakeroutee.Inbound{From: "+375298603939", To: "s", Text: "hi"}))},
			{hooks + "/inbound", "{not json"},
			{hooks + "/status", `{"trackingId":"nope","status":{"name":"Delivered"}}`},
			{hooks + "/status", strings.Repeat("x", 1<<20)},
			{hooks + "x/inbound", "{}"},          // a wrong secret that contains the right one
			{hooks + "/nothing?s=" + secret, ""}, // no such route
		} {
			ta.do(t, "POST", r.path, "application/json", r.body)
		}
		ta.do(t, "GET", hooks+"/inbound", "", "")
		if err := ta.shutdown(t); err != nil {
			t.Fatal(err)
		}
		logs := out.String()
		if !strings.Contains(logs, "webhooks") {
			t.Fatalf("%s: the request log did not record the webhook requests:\n%s", format, logs)
		}
		if strings.Contains(logs, secret) || strings.Contains(logs, secret[:16]) {
			t.Errorf("%s: the webhook secret is in the logs:\n%s", format, logs)
		}
	}
}

// Issue 9, point 15: integrations connect without a cursor and follow from now.
func TestWebsocketWithoutCursorStartsNow(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "before")
	ta.clientWrites(t, "+375298603938", "also before")
	before := lastEventID(t, ta)
	conn, res, err := ta.dial(t, "/ws?conversation="+strconv.FormatInt(conv, 10))
	if err != nil {
		t.Fatalf("dial without after: %v (%v)", err, res)
	}
	defer conn.Close()
	ta.clientWrites(t, "+375298603938", "after")
	got, cursor := readFrame(t, conn)
	if len(got) != 1 || cursor <= before {
		t.Fatalf("first frame appended %v up to event %d, want only the new message after event %d", got, cursor, before)
	}
}

// Issue 9, point 15: a page further behind than the replay cap is told to
// reload, once, and the socket then closes with 1013 (the reloaded page
// connects afresh).
func TestWebsocketTooFarBehindReloads(t *testing.T) {
	ta := startAppWith(t, Options{Live: handlers.LiveOptions{ReplayCap: 3}})
	for i := range 4 {
		ta.clientWrites(t, "+375298603938", "message "+strconv.Itoa(i))
	}
	if last := lastEventID(t, ta); last <= 3 {
		t.Fatalf("only %d events", last)
	}
	conn, _, err := ta.dial(t, "/ws?after=0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := readLive(conn)
	if err != nil || string(data) != handlers.ReloadFrame {
		t.Fatalf("first frame %.300q, %v; want the reload frame", data, err)
	}
	_, data, err = readLive(conn)
	if !websocket.IsCloseError(err, 1013) {
		t.Fatalf("after the reload frame: %.300q, %v; want close 1013", data, err)
	}
	// Within the cap, the replay is frames as before.
	conn2, _, err := ta.dial(t, "/ws?after="+strconv.FormatInt(lastEventID(t, ta)-2, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	// The replay reaches the hub's cursor; what the hub has not sent yet
	// follows in the next frames.
	last, c := lastEventID(t, ta), int64(0)
	for range 5 {
		if _, c = readFrame(t, conn2); c >= last {
			break
		}
	}
	if c != last {
		t.Errorf("replay within the cap reached event %d, want %d", c, last)
	}
}

// Issue 9, point 15: one agent has at most N sockets; one more is 429, and
// closing one frees its place.
func TestWebsocketCapPerAgent(t *testing.T) {
	ta := startApp(t, func(c *config.Config) { c.WSMaxPerAgent = 2 })
	var open []*websocket.Conn
	for range 2 {
		conn, _, err := ta.dial(t, "/ws")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, conn)
	}
	conn, res, err := ta.dial(t, "/ws")
	if err == nil {
		conn.Close()
		t.Fatal("a third socket was accepted")
	}
	if res == nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third socket: %v, want 429", err)
	}
	b, _ := io.ReadAll(res.Body)
	if !bytes.Contains(b, []byte("Too Many Requests")) { // the dialer keeps the first KB only
		t.Errorf("the refusal does not say why: %s", b)
	}
	open[0].Close()
	waitFor(t, "the closed socket's place to free up", func() bool {
		conn, _, err := ta.dial(t, "/ws")
		if err == nil {
			open = append(open, conn)
		}
		return err == nil
	})
	for _, c := range open[1:] {
		c.Close()
	}
}

// readClose reads until the socket closes and returns its close frame.
func readClose(t *testing.T, conn *websocket.Conn) *websocket.CloseError {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := readLive(conn)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("the socket ended without a close frame: %v", err)
		}
		return ce
	}
}

// Issue 9, point 15: an open socket re-checks its agent: one whose role
// changed at the login source is closed (1013) and comes back signed in anew.
func TestWebsocketClosesWhenTheAgentChanges(t *testing.T) {
	ta := startAppWith(t, Options{Live: handlers.LiveOptions{Recheck: 20 * time.Millisecond}})
	conn, _, err := ta.dial(t, "/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Re-checks pass while nothing changed: the socket still carries frames.
	for i := range 3 {
		ta.clientWrites(t, "+375298603938", "still live "+strconv.Itoa(i))
		readFrame(t, conn)
	}
	// The login source now says otherwise (the next request would record it).
	if _, err := ta.Store.EnsureAgent(context.Background(), "local", "Local agent", "agent"); err != nil {
		t.Fatal(err)
	}
	if ce := readClose(t, conn); ce.Code != 1013 {
		t.Errorf("closed with %d %q, want 1013", ce.Code, ce.Text)
	}
}

// Issue 9, point 15: in header mode an open socket goes back through the proxy
// every re-check: a user the proxy no longer vouches for cannot reconnect.
func TestHeaderModeSocketIsRecheckedThroughTheProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SESSIONDESK_AUTH": "header", "SESSIONDESK_AUTH_PRESET": "oauth2-proxy",
		"SESSIONDESK_ROLES": "support=agent", "SESSIONDESK_TRUSTED_PROXIES": "127.0.0.1/32",
		"SESSIONDESK_PUBLIC_URL": "http://" + ln.Addr().String()}
	cfg, err := config.Parse([]string{"--addr", ln.Addr().String(), "--data", t.TempDir(), "--no-demo"},
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ta := runApp(t, cfg, nil, Options{Listener: ln, Live: handlers.LiveOptions{Recheck: 50 * time.Millisecond}})
	u, _ := url.Parse(ta.base)
	dial := func(groups string) (*websocket.Conn, *http.Response, error) {
		h := http.Header{}
		h.Set("Origin", ta.base)
		h.Set("X-Forwarded-User", "olga")
		h.Set("X-Forwarded-Email", "olga@example.com")
		h.Set("X-Forwarded-Groups", groups)
		return websocket.DefaultDialer.Dial("ws://"+u.Host+"/ws", h)
	}
	conn, _, err := dial("support")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ce := readClose(t, conn); ce.Code != 1013 {
		t.Errorf("closed with %d %q, want 1013", ce.Code, ce.Text)
	}
	// Olga left the support group: the proxy says so on the reconnect.
	if c, res, err := dial("sales"); err == nil {
		c.Close()
		t.Error("a user with no role reconnected")
	} else if res == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("reconnect without a role: %v, want 403", err)
	}
}

// The page's script knows the reload frame by its exact text.
func TestPageScriptKnowsTheReloadFrame(t *testing.T) {
	js, err := fs.ReadFile(static.Files, "js/app.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(js, []byte("'"+handlers.ReloadFrame+"'")) {
		t.Errorf("static/js/app.js does not carry the reload frame %q", handlers.ReloadFrame)
	}
}

// Issue 9, point 16: a data folder the inbox cannot write is named with the
// system's reason at start, not as SQLite's "unable to open database file".
func TestStartNamesAnUnusableDataFolder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-folder")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "data")
	cfg, err := config.Parse([]string{"--addr", "127.0.0.1:0", "--data", dir, "--no-demo"},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), cfg, Options{})
	if err == nil {
		t.Fatal("the inbox started on a folder inside a file")
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, "not a directory") ||
		strings.Contains(msg, "unable to open database file") || strings.Contains(msg, "stop it first") {
		t.Errorf("start error %q: want the folder and the system's reason", msg)
	}
}

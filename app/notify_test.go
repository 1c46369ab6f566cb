package app

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/gorilla/websocket"

	"sessiondesk/clock"
	"sessiondesk/config"
	"sessiondesk/session"
	"sessiondesk/store"
)

// The preferences API: defaults off, a PATCH changes what it names, and
// anything else is refused with the API's error shape and changes nothing.
func TestPreferencesAPI(t *testing.T) {
	ta := startApp(t)
	get := func() string {
		t.Helper()
		status, body := ta.do(t, "GET", "/api/v1/me/preferences", "", "")
		if status != http.StatusOK {
			t.Fatalf("GET preferences: %d %s", status, body)
		}
		return strings.TrimSpace(string(body))
	}
	if got := get(); got != `{"sound":false,"desktop":false}` {
		t.Errorf("defaults %s, want both off", got)
	}
	status, body := ta.do(t, "PATCH", "/api/v1/me/preferences", "application/json", `{"sound":true}`)
	if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"sound":true,"desktop":false}` {
		t.Errorf("PATCH sound: %d %s", status, body)
	}
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"volume":11}`, http.StatusUnprocessableEntity, "invalid"},
		{`{"sound":false,"volume":11}`, http.StatusUnprocessableEntity, "invalid"},
		{`{"sound":"yes"}`, http.StatusUnprocessableEntity, "invalid"},
		{`{"desktop":null}`, http.StatusUnprocessableEntity, "invalid"},
		{`{"desktop":1}`, http.StatusUnprocessableEntity, "invalid"},
		{`null`, http.StatusUnprocessableEntity, "invalid"},
		{`[true]`, http.StatusBadRequest, "bad_request"},
		{`{"sound":false`, http.StatusBadRequest, "bad_request"},
		{``, http.StatusBadRequest, "bad_request"},
		{`{"sound":false}{"sound":false}`, http.StatusBadRequest, "bad_request"},
		{`{"x":"` + strings.Repeat("a", 70<<10) + `"}`, http.StatusRequestEntityTooLarge, "too_large"},
	} {
		status, body := ta.do(t, "PATCH", "/api/v1/me/preferences", "application/json", tc.body)
		if e := decodeError(t, body); status != tc.status || e.Code != tc.code {
			t.Errorf("PATCH %.40q: %d %+v, want %d %s", tc.body, status, e, tc.status, tc.code)
		}
	}
	if got := get(); got != `{"sound":true,"desktop":false}` {
		t.Errorf("after the refused updates: %s, want them all without effect", got)
	}
	// A cross-site PATCH from a browser is refused like every state change.
	status, _ = ta.do(t, "PATCH", "/api/v1/me/preferences", "application/json", `{"desktop":true}`, "Sec-Fetch-Site", "cross-site")
	if status != http.StatusForbidden {
		t.Errorf("cross-site PATCH: %d, want 403", status)
	}
	if got := get(); got != `{"sound":true,"desktop":false}` {
		t.Errorf("after the cross-site PATCH: %s", got)
	}
}

// The header's settings form saves both switches and comes back to the page
// it was posted from (never to another site); the page then carries them
// for its script.
func TestPreferencesForm(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	path := "/c/" + strconv.FormatInt(conv, 10)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(form url.Values, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", ta.base+"/me/preferences", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	page := func() *goquery.Document {
		t.Helper()
		status, body := ta.do(t, "GET", path, "", "")
		if status != 200 {
			t.Fatalf("GET %s: %d", path, status)
		}
		doc, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	doc := page()
	bar := doc.Find(".topbar")
	if bar.AttrOr("data-notify-sound", "") != "false" || bar.AttrOr("data-notify-desktop", "") != "false" ||
		doc.Find(`[data-testid="notify-sound"]`).Length() != 1 || doc.Find(`input[name="back"]`).AttrOr("value", "") != path {
		t.Fatalf("the page's settings: %s", outer(bar))
	}
	if doc.Find("#presence-"+strconv.FormatInt(conv, 10)).Length() != 1 {
		t.Error("the thread header has no presence line")
	}

	res := post(url.Values{"sound": {"on"}, "back": {path}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != path {
		t.Errorf("save: %d to %q, want 303 to %s", res.StatusCode, res.Header.Get("Location"), path)
	}
	doc = page()
	if bar := doc.Find(".topbar"); bar.AttrOr("data-notify-sound", "") != "true" || bar.AttrOr("data-notify-desktop", "") != "false" {
		t.Errorf("after saving sound on: %s", outer(bar))
	}
	if _, ok := doc.Find(`[data-testid="notify-sound"]`).Attr("checked"); !ok {
		t.Error("the sound box is not checked after saving it on")
	}
	for _, back := range []string{"//evil.example/", "https://evil.example/", "/c/1/../../admin", "/\\evil.example", ""} {
		if res := post(url.Values{"desktop": {"on"}, "back": {back}}); res.Header.Get("Location") != "/" {
			t.Errorf("back=%q: sent to %q, want /", back, res.Header.Get("Location"))
		}
	}
	// A form posted from another site is refused and changes nothing.
	if res := post(url.Values{"back": {"/"}}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site form: %d, want 403", res.StatusCode)
	}
	status, body := ta.do(t, "GET", "/api/v1/me/preferences", "", "")
	if status != 200 || strings.TrimSpace(string(body)) != `{"sound":false,"desktop":true}` {
		t.Errorf("after the forms: %d %s, want sound off (unticked) and desktop on", status, body)
	}
}

// The reminder of a session about to close unanswered reaches the agent's
// open page, once, as the notice the script plays and shows.
func TestReminderReachesTheAgentOnce(t *testing.T) {
	cfg, err := config.Parse([]string{"--addr", "127.0.0.1:0", "--data", t.TempDir(), "--no-demo", "--notify-before", "15m"},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewManual(t0)
	ta := runApp(t, cfg, clk, Options{Now: clk.Now, RemindEvery: 20 * time.Millisecond})
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	id := strconv.FormatInt(conv, 10)
	if status, body := ta.do(t, "POST", "/api/v1/conversations/"+id+"/messages", "application/json", `{"type":"text","text":"Hi"}`); status != 201 {
		t.Fatalf("reply: %d %s", status, body)
	}
	ta.clientWrites(t, "+375298603938", "So?")
	conn, _, err := ta.dial(t, "/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for ta.handlers.Hub().Pages() != 1 {
		time.Sleep(time.Millisecond)
	}
	clk.Set(t0.Add(24*time.Hour - 10*time.Minute))
	var notice *goquery.Selection
	for notice == nil {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := readLive(conn)
		if err != nil {
			t.Fatalf("no reminder: %v", err)
		}
		doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(data))
		if sel := doc.Find("#live-notify[data-notify-key]"); sel.Length() > 0 {
			notice = sel
		}
	}
	if notice.AttrOr("data-notify-conversation", "") != id || notice.AttrOr("data-notify-url", "") != "/c/"+id ||
		!strings.Contains(notice.AttrOr("data-notify-body", ""), "10 min") ||
		!strings.Contains(notice.AttrOr("data-notify-body", ""), "Olga Petrova") {
		t.Errorf("notice %s", outer(notice))
	}
	if n := ta.remindOnce(context.Background()); n != 0 {
		t.Errorf("asked again: %d reminders, want none", n)
	}
}

// Over the inbox's own websockets, each page is its signed-in agent: Boris
// sees Anna viewing and typing on the conversation they both have open,
// named from her sign-in.
func TestPresenceOverTheInboxSockets(t *testing.T) {
	ta := startSSOApp(t, map[string]string{"SESSIONDESK_AUTH": "header", "SESSIONDESK_AUTH_PRESET": "oauth2-proxy",
		"SESSIONDESK_ROLES": "support=agent", "SESSIONDESK_TRUSTED_PROXIES": "127.0.0.1/32"})
	rec, err := ta.Store.ReceiveClientMessage(context.Background(), store.ClientMessage{
		Phone: "+375298603938", Name: "Olga", Kind: session.Text, Text: "Hello"})
	if err != nil {
		t.Fatal(err)
	}
	conv := rec.Message.ConversationID
	as := func(login, name string) http.Header {
		h := http.Header{}
		h.Set("Origin", ta.base)
		h.Set("X-Forwarded-User", login)
		h.Set("X-Forwarded-Preferred-Username", name)
		h.Set("X-Forwarded-Email", login+"@example.com")
		h.Set("X-Forwarded-Groups", "support")
		return h
	}
	u, _ := url.Parse(ta.base)
	dial := func(h http.Header) *websocket.Conn {
		t.Helper()
		c, res, err := websocket.DefaultDialer.Dial("ws://"+u.Host+"/ws?conversation="+strconv.FormatInt(conv, 10), h)
		if err != nil {
			t.Fatalf("dial: %v %v", err, res)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	boris := dial(as("boris", "Boris"))
	for ta.handlers.Hub().Pages() != 1 {
		time.Sleep(time.Millisecond)
	}
	line := func() *goquery.Selection {
		t.Helper()
		for {
			_ = boris.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, data, err := readLive(boris)
			if err != nil {
				t.Fatalf("Boris's socket: %v", err)
			}
			doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(data))
			if sel := doc.Find(`[data-testid="presence"]`); sel.Length() > 0 {
				return sel
			}
		}
	}
	// Boris's page gets its line as it joins: nobody else there yet.
	if sel := line(); sel.Find(`[data-testid="presence-agent"]`).Length() != 0 {
		t.Fatalf("Boris alone sees %s, want nobody", outer(sel))
	}
	anna := dial(as("anna", "Anna"))
	sel := line()
	agent := sel.Find(`[data-testid="presence-agent"]`)
	if agent.Length() != 1 || agent.AttrOr("data-typing", "") != "false" || !strings.Contains(agent.Text(), "is viewing") {
		t.Fatalf("Boris sees %s, want one agent viewing", outer(sel))
	}
	name := agent.AttrOr("data-agent-name", "")
	if name == "" || strings.Contains(strings.ToLower(name), "boris") {
		t.Errorf("the agent Boris sees is named %q, want Anna's name", name)
	}
	if err := anna.WriteMessage(websocket.TextMessage, []byte(`{"typing":true}`)); err != nil {
		t.Fatal(err)
	}
	agent = line().Find(`[data-testid="presence-agent"]`)
	if agent.AttrOr("data-typing", "") != "true" || !strings.Contains(agent.Text(), name+" is typing") {
		t.Errorf("after Anna types Boris sees %q", agent.Text())
	}
}

func outer(s *goquery.Selection) string {
	h, _ := goquery.OuterHtml(s)
	return h
}

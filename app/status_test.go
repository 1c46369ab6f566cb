package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/gorilla/websocket"

	"sessiondesk/channel"
	"sessiondesk/clock"
	"sessiondesk/config"
	"sessiondesk/store"
)

// teamApp is the inbox behind a (pretend) SSO proxy, so that several agents
// can use it at once, on a manual clock, with a snooze waker that looks every
// few milliseconds (the clock, not the waker, decides what is due).
func startTeamApp(t *testing.T) *testApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SESSIONDESK_AUTH": "header", "SESSIONDESK_AUTH_PRESET": "oauth2-proxy",
		"SESSIONDESK_ROLES": "support-admins=admin,support=agent", "SESSIONDESK_TRUSTED_PROXIES": "127.0.0.1/32",
		"SESSIONDESK_PUBLIC_URL": "http://" + ln.Addr().String()}
	cfg, err := config.Parse([]string{"--addr", ln.Addr().String(), "--data", t.TempDir(), "--no-demo"},
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	clk := clock.NewManual(t0)
	return runApp(t, cfg, clk, Options{Listener: ln, Now: clk.Now, SnoozeEvery: 10 * time.Millisecond})
}

// as are the proxy's headers of an agent (login, shown as its capitalised self).
func as(login string) []string {
	group := "support"
	if login == "admin" {
		group = "support-admins"
	}
	return []string{"X-Forwarded-User", login, "X-Forwarded-Preferred-Username", strings.ToUpper(login[:1]) + login[1:] + " Test", "X-Forwarded-Groups", group}
}

// teamClientWrites has a client write through the sandbox, posted by agent login.
func (ta *testApp) teamClientWrites(t *testing.T, from, text string) int64 {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"from": from, "name": "Client " + from, "text": text})
	status, body := ta.do(t, "POST", "/sandbox/messages", "application/json", string(b), as("admin")...)
	if status != http.StatusCreated {
		t.Fatalf("sandbox message: %d %s", status, body)
	}
	var out struct {
		Message struct {
			ConversationID int64 `json:"conversation_id"`
		} `json:"message"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Message.ConversationID
}

// patch sends PATCH /api/v1/conversations/{id} as login.
func (ta *testApp) patch(t *testing.T, conv int64, login, body string) (int, []byte) {
	t.Helper()
	return ta.do(t, "PATCH", "/api/v1/conversations/"+strconv.FormatInt(conv, 10), "application/json", body, as(login)...)
}

type apiConvState struct {
	Status       string     `json:"status"`
	SnoozedUntil *time.Time `json:"snoozed_until"`
	Assignee     *struct {
		Login string `json:"login"`
		Name  string `json:"name"`
	} `json:"assignee"`
}

func (ta *testApp) convState(t *testing.T, conv int64, login string) apiConvState {
	t.Helper()
	status, body := ta.do(t, "GET", "/api/v1/conversations/"+strconv.FormatInt(conv, 10), "", "", as(login)...)
	if status != http.StatusOK {
		t.Fatalf("GET conversation %d: %d %s", conv, status, body)
	}
	var out apiConvState
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (s apiConvState) assignee() string {
	if s.Assignee == nil {
		return ""
	}
	return s.Assignee.Login
}

func (ta *testApp) auditOf(t *testing.T, action string) []store.AuditEntry {
	t.Helper()
	var out []store.AuditEntry
	err := ta.Store.Read(context.Background(), func(r *store.Reader) (err error) {
		out, err = r.Audit(context.Background(), store.AuditFilter{Action: action})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConversationPatchAPI(t *testing.T) {
	ta := startTeamApp(t)
	conv := ta.teamClientWrites(t, "+375298603938", "Hello")
	ta.convState(t, conv, "ivan") // Ivan signs in once: a known agent
	id := strconv.FormatInt(conv, 10)

	got := ta.convState(t, conv, "olga")
	if got.Status != "open" || got.SnoozedUntil != nil || got.Assignee != nil {
		t.Fatalf("a new conversation: %+v, want open, no snooze, no assignee", got)
	}
	until := t0.Add(4 * time.Hour)
	status, body := ta.patch(t, conv, "olga", `{"status":"snoozed","snoozed_until":"`+until.In(time.FixedZone("", 3600)).Format(time.RFC3339)+`","assignee":"olga"}`)
	if status != http.StatusOK {
		t.Fatalf("PATCH: %d %s", status, body)
	}
	var answer apiConvState
	_ = json.Unmarshal(body, &answer)
	got = ta.convState(t, conv, "olga")
	for _, s := range []apiConvState{answer, got} {
		if s.Status != "snoozed" || s.SnoozedUntil == nil || !s.SnoozedUntil.Equal(until) || s.assignee() != "olga" ||
			s.Assignee.Name != "Olga Test" {
			t.Errorf("after the PATCH: %+v (assignee %+v), want snoozed until %v, assigned to olga", s, s.Assignee, until)
		}
	}
	status, body = ta.patch(t, conv, "olga", `{"status":"pending","assignee":null}`)
	if got = ta.convState(t, conv, "olga"); status != http.StatusOK || got.Status != "pending" || got.SnoozedUntil != nil || got.Assignee != nil {
		t.Errorf("pending and unassigned: %d %s → %+v", status, body, got)
	}
	if status, body = ta.patch(t, conv, "olga", `{"assignee":"ivan"}`); status != http.StatusOK || ta.convState(t, conv, "olga").assignee() != "ivan" {
		t.Errorf("assign to another agent: %d %s", status, body)
	}

	before := len(ta.auditOf(t, store.AuditStatus)) + len(ta.auditOf(t, store.AuditAssign))
	for _, tc := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"unknown field", id, `{"status":"resolved","asignee":"olga"}`, 400, "bad_request"},
		{"not JSON", id, `status=resolved`, 400, "bad_request"},
		{"empty body", id, ``, 400, "bad_request"},
		{"two values", id, `{"status":"open"} {}`, 400, "bad_request"},
		{"status not a string", id, `{"status":1}`, 400, "bad_request"},
		{"assignee not a string", id, `{"assignee":7}`, 400, "bad_request"},
		{"time not RFC 3339", id, `{"status":"snoozed","snoozed_until":"tomorrow"}`, 400, "bad_request"},
		{"unknown conversation", "999", `{"status":"resolved"}`, 404, "not_found"},
		{"malformed id", "abc", `{"status":"resolved"}`, 404, "not_found"},
		{"nothing to change", id, `{}`, 422, "invalid"},
		{"unknown status", id, `{"status":"closed"}`, 422, "invalid"},
		{"blank status", id, `{"status":""}`, 422, "invalid"},
		{"snoozed without a time", id, `{"status":"snoozed"}`, 422, "invalid"},
		{"snoozed in the past", id, `{"status":"snoozed","snoozed_until":"2026-11-24T09:00:00Z"}`, 422, "invalid"},
		{"snoozed too long", id, `{"status":"snoozed","snoozed_until":"2026-12-25T10:00:00Z"}`, 422, "invalid"},
		{"a time with another status", id, `{"status":"open","snoozed_until":"2026-11-24T12:00:00Z"}`, 422, "invalid"},
		{"unknown login", id, `{"assignee":"nobody"}`, 422, "invalid"},
		{"blank login", id, `{"assignee":""}`, 422, "invalid"},
		{"a hostile login", id, `{"assignee":"olga' OR '1'='1"}`, 422, "invalid"},
		{"valid status, unknown login", id, `{"status":"resolved","assignee":"nobody"}`, 422, "invalid"},
	} {
		status, body := ta.do(t, "PATCH", "/api/v1/conversations/"+tc.path, "application/json", tc.body, as("olga")...)
		e := decodeError(t, body)
		if status != tc.status || e.Code != tc.code || e.Message == "" {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, body, tc.status, tc.code)
		}
	}
	if got := ta.convState(t, conv, "olga"); got.Status != "pending" || got.assignee() != "ivan" {
		t.Errorf("refused PATCHes changed it: %+v", got)
	}
	if after := len(ta.auditOf(t, store.AuditStatus)) + len(ta.auditOf(t, store.AuditAssign)); after != before {
		t.Errorf("refused PATCHes wrote %d audit entries", after-before)
	}
	// A time alone snoozes; 30 days is the most.
	if status, body := ta.patch(t, conv, "olga", `{"snoozed_until":"2026-12-24T10:00:00Z"}`); status != http.StatusOK ||
		ta.convState(t, conv, "olga").Status != "snoozed" {
		t.Errorf("a snooze time alone, 30 days ahead: %d %s", status, body)
	}
	// Every change is in the audit log, by whoever made it.
	statuses, assigns := ta.auditOf(t, store.AuditStatus), ta.auditOf(t, store.AuditAssign)
	if len(statuses) != 3 || len(assigns) != 3 {
		t.Fatalf("%d status and %d assignment entries, want 3 and 3", len(statuses), len(assigns))
	}
	if e := assigns[0]; e.AgentName != "Olga Test" || e.ConversationID != conv || e.Summary() != "Assigned to Ivan Test (ivan)." {
		t.Errorf("the last assignment entry: by %q: %q", e.AgentName, e.Summary())
	}
}

// A client message reopens a resolved, pending or snoozed conversation, also
// when it comes through Routee's webhook.
func TestClientMessageReopensThroughTheRouteeWebhook(t *testing.T) {
	ra := startRouteeApp(t, channel.OutboxOptions{})
	const phone = "+375298603938"
	conv := ra.clientWritesViaRoutee(t, phone, "Hello")
	for i, tc := range []string{
		`{"status":"resolved"}`,
		`{"status":"pending"}`,
		`{"status":"snoozed","snoozed_until":"` + time.Now().Add(2*time.Hour).UTC().Format(time.RFC3339) + `"}`,
	} {
		status, body := ra.do(t, "PATCH", "/api/v1/conversations/"+strconv.FormatInt(conv, 10), "application/json", tc)
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", tc, status, body)
		}
		ra.clientWritesViaRoutee(t, phone, fmt.Sprintf("Any news? (%d)", i))
		_, body = ra.do(t, "GET", "/api/v1/conversations/"+strconv.FormatInt(conv, 10), "", "")
		var got apiConvState
		_ = json.Unmarshal(body, &got)
		if got.Status != "open" || got.SnoozedUntil != nil {
			t.Errorf("after %s and a client message: %s until %v, want open", tc, got.Status, got.SnoozedUntil)
		}
	}
	var reopened int
	for _, e := range ra.auditOf(t, store.AuditStatus) {
		if e.AgentID == 0 && strings.HasSuffix(e.Summary(), "→ open: the client wrote.") {
			reopened++
		}
	}
	if reopened != 3 {
		t.Errorf("%d reopenings by the client in the audit log, want 3", reopened)
	}
}

// dialAs opens the inbox's websocket as login, viewing conversation conv (0: none).
func (ta *testApp) dialAs(t *testing.T, login string, conv int64) *websocket.Conn {
	t.Helper()
	u, _ := url.Parse(ta.base)
	h := http.Header{}
	h.Set("Origin", ta.base)
	hs := as(login)
	for i := 0; i+1 < len(hs); i += 2 {
		h.Set(hs[i], hs[i+1])
	}
	conn, res, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/ws?conversation=%d", u.Host, conv), h)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("websocket as %s: %v (%d)", login, err, status)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// waitFrame reads frames until one satisfies ok, within 10 s.
func waitFrame(t *testing.T, conn *websocket.Conn, what string, ok func(*goquery.Document) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last []byte
	for {
		_ = conn.SetReadDeadline(deadline)
		_, data, err := readLive(conn)
		if err != nil {
			t.Fatalf("waiting for %s: %v (last frame: %s)", what, err, last)
		}
		last = data
		doc, err := goquery.NewDocumentFromReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if ok(doc) {
			return
		}
	}
}

// waitOnline waits until the hub counts these agents' pages.
func (ta *testApp) waitOnline(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d agents online", n), func() bool { return len(ta.handlers.Hub().OnlineAgents()) == n })
}

// A snoozed conversation reopens at its time (the store's clock), live: the
// page viewing it gets the header, every page gets the row.
func TestSnoozeWakesLiveAtItsTime(t *testing.T) {
	ta := startTeamApp(t)
	conv := ta.teamClientWrites(t, "+375298603938", "Hello")
	other := ta.teamClientWrites(t, "+375447771122", "Hi")
	if status, body := ta.patch(t, conv, "olga", `{"status":"snoozed","snoozed_until":"2026-11-24T11:00:00Z"}`); status != http.StatusOK {
		t.Fatalf("snooze: %d %s", status, body)
	}
	viewer := ta.dialAs(t, "olga", conv)
	elsewhere := ta.dialAs(t, "ivan", other)
	ta.waitOnline(t, 2)

	ta.clock.Set(t0.Add(time.Hour - time.Second))
	// Not yet: a commit of something else shows the waker left it alone.
	ta.teamClientWrites(t, "+375447771122", "Still there?")
	waitFrame(t, elsewhere, "Ivan's message", func(d *goquery.Document) bool {
		return d.Find(`#list-delta [data-conversation-id="`+strconv.FormatInt(other, 10)+`"]`).Length() > 0
	})
	if got := ta.convState(t, conv, "olga"); got.Status != "snoozed" {
		t.Fatalf("a second before its time: %s", got.Status)
	}

	ta.clock.Set(t0.Add(time.Hour))
	row := `#list-delta [data-conversation-id="` + strconv.FormatInt(conv, 10) + `"][data-status="open"]`
	waitFrame(t, viewer, "the header says open on the viewing page", func(d *goquery.Document) bool {
		return d.Find(`#thread-status[data-status="open"][hx-swap-oob][data-conversation-id="`+strconv.FormatInt(conv, 10)+`"]`).Length() == 1 &&
			d.Find(row).Length() == 1
	})
	waitFrame(t, elsewhere, "the row says open on another page", func(d *goquery.Document) bool {
		// Ivan's page views the other conversation: its header is not touched.
		return d.Find(row).Length() == 1 && d.Find(`#thread-status[data-conversation-id="`+strconv.FormatInt(conv, 10)+`"]`).Length() == 0
	})
	if got := ta.convState(t, conv, "olga"); got.Status != "open" || got.SnoozedUntil != nil {
		t.Errorf("after its time: %+v", got)
	}
	if e := ta.auditOf(t, store.AuditStatus)[0]; e.AgentID != 0 || e.ConversationID != conv || !strings.Contains(e.Summary(), "snooze ended") {
		t.Errorf("the wake's audit entry: %q by agent %d", e.Summary(), e.AgentID)
	}
}

// The header's plain forms work without JS (303 back to the thread), are
// refused cross-site, and the page shows the status, the assignee and the
// row's initials.
func TestHeaderFormsWithoutJS(t *testing.T) {
	ta := startTeamApp(t)
	conv := ta.teamClientWrites(t, "+375298603938", "Hello")
	ta.convState(t, conv, "ivan")
	path := "/c/" + strconv.FormatInt(conv, 10)
	form := "application/x-www-form-urlencoded"
	post := func(suffix, body string, extra ...string) (int, []byte) {
		return ta.do(t, "POST", path+suffix, form, body, append(as("olga"), extra...)...)
	}
	if status, _ := post("/status", "status=resolved", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"); status != http.StatusForbidden {
		t.Errorf("cross-site status post: %d, want 403", status)
	}
	if status, _ := post("/assignee", "assignee=olga", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"); status != http.StatusForbidden {
		t.Errorf("cross-site assignee post: %d, want 403", status)
	}
	if got := ta.convState(t, conv, "olga"); got.Status != "open" || got.Assignee != nil {
		t.Fatalf("cross-site posts changed it: %+v", got)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct{ suffix, body, status, assignee string }{
		{"/assignee", "assignee=olga", "open", "olga"},
		{"/status", "status=pending", "pending", "olga"},
		{"/status", "status=snoozed&snooze=4h", "snoozed", "olga"},
		{"/assignee", "assignee=ivan", "snoozed", "ivan"},
		{"/status", "status=resolved", "resolved", "ivan"},
	} {
		req, _ := http.NewRequest("POST", ta.base+path+tc.suffix, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", form)
		hs := as("olga")
		for i := 0; i+1 < len(hs); i += 2 {
			req.Header.Set(hs[i], hs[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != path {
			t.Errorf("%s %s: %d to %q, want 303 to the thread", tc.suffix, tc.body, res.StatusCode, res.Header.Get("Location"))
		}
		if got := ta.convState(t, conv, "olga"); got.Status != tc.status || got.assignee() != tc.assignee {
			t.Errorf("after %s: %s assigned to %q, want %s and %q", tc.body, got.Status, got.assignee(), tc.status, tc.assignee)
		}
	}
	// Bad input: a page that says why, nothing changed.
	for _, body := range []string{"status=archived", "status=snoozed", "status=snoozed&until=yesterday",
		"status=snoozed&until=2026-11-24T09:00:00Z"} {
		if status, b := post("/status", body); status != http.StatusUnprocessableEntity || !bytes.Contains(b, []byte("error-message")) {
			t.Errorf("%s: %d, want 422 with a message", body, status)
		}
	}
	if status, _ := post("/assignee", "assignee=nobody"); status != http.StatusUnprocessableEntity {
		t.Errorf("an unknown login: %d, want 422", status)
	}
	if status, _ := ta.do(t, "POST", "/c/999/status", form, "status=open", as("olga")...); status != http.StatusNotFound {
		t.Errorf("an unknown conversation: %d, want 404", status)
	}
	// Resolved, it has left the list of open conversations: ?status=any shows it.
	status, body := ta.do(t, "GET", path+"?status=any", "", "", as("olga")...)
	if status != http.StatusOK {
		t.Fatalf("page: %d", status)
	}
	doc := htmlDoc(t, body)
	if s := doc.Find(`#thread-status`); s.AttrOr("data-status", "") != "resolved" || s.AttrOr("data-assignee", "") != "ivan" ||
		strings.TrimSpace(s.Find(`[data-testid="assignee-name"]`).Text()) != "Ivan Test" {
		t.Errorf("the header: status %q assignee %q", s.AttrOr("data-status", ""), s.AttrOr("data-assignee", ""))
	}
	row := doc.Find(`#conversation-rows [data-conversation-id="` + strconv.FormatInt(conv, 10) + `"]`)
	if got := strings.TrimSpace(row.Find(`[data-testid="row-assignee"]`).Text()); got != "IT" {
		t.Errorf("the row's initials %q, want IT", got)
	}
	if v := doc.Find(`[data-testid="assign-me"]`).AttrOr("value", ""); v != "olga" {
		t.Errorf("Olga's 'assign to me' posts %q", v)
	}
	if v := doc.Find(`#assignee-select option[selected]`).AttrOr("value", ""); v != "ivan" {
		t.Errorf("the select has %q selected, want ivan", v)
	}
}

// Two agents press "assign to me" at once: both answered 200, the last write
// wins, and the log names each in order; replies assign only the unassigned.
func TestAssignToMeAtOnceAndReplyAssigns(t *testing.T) {
	ta := startTeamApp(t)
	for _, l := range []string{"olga", "ivan"} {
		ta.do(t, "GET", "/", "", "", as(l)...)
	}
	conv := ta.teamClientWrites(t, "+375298603938", "Hello")
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, l := range []string{"olga", "ivan"} {
		wg.Go(func() { codes[i], _ = ta.patch(t, conv, l, `{"assignee":"`+l+`"}`) })
	}
	wg.Wait()
	if codes[0] != http.StatusOK || codes[1] != http.StatusOK {
		t.Fatalf("answers %v, want 200 and 200", codes)
	}
	entries := ta.auditOf(t, store.AuditAssign)
	if len(entries) != 2 {
		t.Fatalf("%d assignment entries, want 2", len(entries))
	}
	final := ta.convState(t, conv, "olga").assignee()
	if want := strings.ToLower(strings.Fields(entries[0].AgentName)[0]); final != want {
		t.Errorf("assigned to %q, but the last press was %s's", final, want)
	}
	if !strings.Contains(entries[0].Summary(), ", was ") || strings.Contains(entries[1].Summary(), ", was ") {
		t.Errorf("the log: %q then %q", entries[1].Summary(), entries[0].Summary())
	}

	// A reply to an unassigned conversation takes it; to an assigned one, not.
	other := ta.teamClientWrites(t, "+375447771122", "Hi")
	send := func(login string, conv int64) {
		status, body := ta.do(t, "POST", "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages", "application/json",
			`{"type":"text","text":"On it"}`, as(login)...)
		if status != http.StatusCreated {
			t.Fatalf("send as %s: %d %s", login, status, body)
		}
	}
	send("ivan", other)
	if got := ta.convState(t, other, "olga").assignee(); got != "ivan" {
		t.Errorf("Ivan replied to an unassigned conversation: assigned to %q", got)
	}
	send("olga", other)
	if got := ta.convState(t, other, "olga").assignee(); got != "ivan" {
		t.Errorf("Olga replied to Ivan's: assigned to %q", got)
	}
	if e := ta.auditOf(t, store.AuditAssign)[0]; e.AgentID != 0 || e.ConversationID != other || !strings.Contains(e.Summary(), "replied while unassigned") {
		t.Errorf("the reply's assignment entry: %q by agent %d", e.Summary(), e.AgentID)
	}
}

// Round robin among the agents with the inbox open: three online, one
// signed in but with no page open; off until an admin turns it on.
func TestRoundRobinAmongOnlineAgents(t *testing.T) {
	ta := startTeamApp(t)
	ta.do(t, "GET", "/", "", "", as("ivan")...) // known, but no live page
	pages := map[string]*websocket.Conn{}
	for _, l := range []string{"anna", "boris", "olga"} {
		pages[l] = ta.dialAs(t, l, 0)
	}
	ta.waitOnline(t, 3)
	phone := func(i int) string { return fmt.Sprintf("+3752960%05d", 10000+i) }

	first := ta.teamClientWrites(t, phone(0), "Hello")
	if got := ta.convState(t, first, "anna").assignee(); got != "" {
		t.Fatalf("assigned to %q with the round robin off (the default)", got)
	}
	if status, _ := ta.do(t, "POST", "/admin/auto-assign", "application/x-www-form-urlencoded", "enabled=1", as("olga")...); status != http.StatusForbidden {
		t.Errorf("an agent switched the round robin: %d, want 403", status)
	}
	if status, _ := ta.do(t, "POST", "/admin/auto-assign", "application/x-www-form-urlencoded", "enabled=1", as("admin")...); status != http.StatusOK && status != http.StatusSeeOther {
		t.Fatalf("the admin's switch: %d", status)
	}
	if _, page := ta.get(t, "/admin/settings", as("admin")...); htmlDoc(t, []byte(page)).Find(`input[data-testid="auto-assign"][checked]`).Length() != 1 {
		t.Error("the settings page does not show the round robin on")
	}
	var got []string
	for i := 1; i <= 6; i++ {
		conv := ta.teamClientWrites(t, phone(i), "Hello")
		got = append(got, ta.convState(t, conv, "anna").assignee())
	}
	// Agents rotate in the order they first signed in (their ids).
	if counts := countEach(got); counts["anna"] != 2 || counts["boris"] != 2 || counts["olga"] != 2 || counts["ivan"] != 0 ||
		got[0] == got[1] || got[1] == got[2] || got[0] == got[2] || !slices.Equal(got[:3], got[3:]) {
		t.Errorf("the rotation went %v, want anna, boris and olga in turn, never ivan (offline)", got)
	}
	pages["boris"].Close()
	ta.waitOnline(t, 2)
	got = got[:0]
	for i := 7; i <= 10; i++ {
		conv := ta.teamClientWrites(t, phone(i), "Hello")
		got = append(got, ta.convState(t, conv, "anna").assignee())
	}
	if counts := countEach(got); counts["anna"] != 2 || counts["olga"] != 2 {
		t.Errorf("with Boris gone the rotation went %v, want anna and olga in turn", got)
	}
	if n := len(ta.auditOf(t, store.AuditAssign)); n != 10 {
		t.Errorf("%d assignment entries, want 10", n)
	}
	if e := ta.auditOf(t, store.AuditSettings)[0]; !strings.Contains(e.Summary(), "round-robin auto-assignment: off → on") {
		t.Errorf("the switch's audit entry: %q", e.Summary())
	}
}

func countEach(s []string) map[string]int {
	m := map[string]int{}
	for _, v := range s {
		m[v]++
	}
	return m
}

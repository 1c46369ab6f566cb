package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/gorilla/websocket"

	"sessiondesk/channel"
	"sessiondesk/store"
)

// apiNoteBody is a note as the API answers it.
type apiNoteBody struct {
	ID         int64     `json:"id"`
	Author     string    `json:"author"`
	AuthorName string    `json:"author_name"`
	Text       string    `json:"text"`
	CreatedAt  time.Time `json:"created_at"`
	Mentions   []string  `json:"mentions"`
}

func notesPath(conv int64) string {
	return "/api/v1/conversations/" + strconv.FormatInt(conv, 10) + "/notes"
}

// addNote posts a note through the API and returns it; header names the agent.
func (ta *testApp) addNote(t *testing.T, conv int64, text string, header ...string) apiNoteBody {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"text": text})
	status, body := ta.do(t, "POST", notesPath(conv), "application/json", string(b), header...)
	if status != http.StatusCreated {
		t.Fatalf("add note: %d %s", status, body)
	}
	var out struct {
		Note apiNoteBody `json:"note"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Note
}

// A note is never sent to the provider, never counts for the session and
// never changes its state, whether the session is open or long closed.
func TestNoteNeverReachesRouteeNorChangesTheSession(t *testing.T) {
	ra := startRouteeApp(t, channel.OutboxOptions{})
	const client = "+375298603938"
	conv := ra.clientWritesViaRoutee(t, client, "Where is my order?")
	first := ra.agentSends(t, conv, "Checking it now")
	waitFor(t, "the reply to reach Routee", func() bool { return len(ra.fake.Messages()) == 1 })
	before := ra.conversationState(t, conv)

	const secret = "NOTE-ONLY refund approved by finance, do not tell the client yet"
	n := ra.addNote(t, conv, secret)
	status, _ := ra.do(t, "POST", "/c/"+strconv.FormatInt(conv, 10)+"/notes", "application/x-www-form-urlencoded",
		"text="+url.QueryEscape(secret+" (form)"), "HX-Request", "true")
	if status != http.StatusOK {
		t.Fatalf("note form: %d", status)
	}
	if after := ra.conversationState(t, conv); !reflect.DeepEqual(before, after) {
		t.Errorf("the notes changed the session:\nbefore %+v\nafter  %+v", before, after)
	}
	// A reply after the notes goes out; the outbox sends in order, so once it
	// is at Routee everything queued before it was too.
	second := ra.agentSends(t, conv, "Refund is on its way")
	waitFor(t, "the second reply to reach Routee", func() bool { return len(ra.fake.Messages()) == 2 })
	for _, m := range ra.fake.Messages() {
		if strings.Contains(m.Text, "NOTE-ONLY") {
			t.Errorf("Routee received the note: %+v", m)
		}
	}
	for _, v := range ra.fake.Violations() {
		if strings.Contains(v, "NOTE-ONLY") {
			t.Errorf("a request carried the note: %s", v)
		}
	}
	if got := ra.conversationState(t, conv).Session.Used; got != 2 {
		t.Errorf("the session used %d messages after two replies and two notes, want 2", got)
	}
	if first == 0 || second == 0 || n.ID == 0 {
		t.Fatalf("ids: %d %d %d", first, second, n.ID)
	}

	// The conversation's messages hold the replies and the client's only.
	status, body := ra.do(t, "GET", "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages", "", "")
	if status != 200 || bytes.Contains(body, []byte("NOTE-ONLY")) {
		t.Errorf("GET messages: %d, notes among the messages: %v", status, bytes.Contains(body, []byte("NOTE-ONLY")))
	}
	status, body = ra.do(t, "GET", notesPath(conv), "", "")
	var notes struct {
		Notes []apiNoteBody `json:"notes"`
	}
	_ = json.Unmarshal(body, &notes)
	if status != 200 || len(notes.Notes) != 2 || notes.Notes[0].Text != secret || notes.Notes[1].Text != secret+" (form)" ||
		notes.Notes[0].Author != "local" || notes.Notes[0].AuthorName != "Local agent" {
		t.Errorf("GET notes: %d %+v", status, notes)
	}
}

func TestNoteOnAClosedSessionChangesNothing(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	ta.clock.Add(25 * time.Hour)
	before := ta.conversationState(t, conv)
	if before.Session.CanSend || before.Session.Code != "window_closed" {
		t.Fatalf("setup: the session is %+v, want closed", before.Session)
	}
	ta.addNote(t, conv, "called the client by phone instead")
	if after := ta.conversationState(t, conv); !reflect.DeepEqual(before, after) {
		t.Errorf("a note on a closed session changed it:\nbefore %+v\nafter  %+v", before, after)
	}
	// Nor does it move the row in the list or change its preview.
	status, body := ta.do(t, "GET", "/api/v1/conversations", "", "")
	if status != 200 || bytes.Contains(body, []byte("called the client")) {
		t.Errorf("the list shows the note: %d %s", status, body)
	}
}

// readNoteFrame reads frames until one carries a cursor at or past want, and
// returns that frame.
func readFrameUpTo(t *testing.T, conn *websocket.Conn, want int64) *goquery.Document {
	t.Helper()
	for {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := readLive(conn)
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		doc, err := goquery.NewDocumentFromReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		v, _ := doc.Find("#live-cursor").Attr("data-last-event-id")
		if n, _ := strconv.ParseInt(v, 10, 64); n >= want {
			return doc
		}
	}
}

// A note shows at once on every page viewing its conversation, drawn once,
// escaped; pages elsewhere and the client's phone get nothing of it.
func TestNoteAppearsLiveOnlyInItsThread(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	ta.clientWrites(t, "+375447771122", "Other client")
	cursor := lastEventID(t, ta)
	after := "&after=" + strconv.FormatInt(cursor, 10)
	var viewers []*websocket.Conn
	for i := 0; i < 2; i++ {
		c, _, err := ta.dial(t, "/ws?conversation="+strconv.FormatInt(conv, 10)+after)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		viewers = append(viewers, c)
	}
	other, _, err := ta.dial(t, "/ws?conversation="+strconv.FormatInt(conv+1, 10)+after)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	phone, _, err := ta.dial(t, "/sandbox/ws?phone=%2B375298603938"+after)
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	// Registered with the hub (a dial returns before the server has), so the
	// note reaches them live, not in a catch-up of their own.
	waitFor(t, "the three pages to join the hub", func() bool { return ta.handlers.Hub().Pages() == 3 })
	notesBefore := ta.handlers.Hub().Stats().Notes

	hostile := `<script>alert(1)</script><img src=x onerror=alert(2)> @local`
	n := ta.addNote(t, conv, hostile)
	last := lastEventID(t, ta)
	for i, v := range viewers {
		frame := readFrameUpTo(t, v, last)
		note := frame.Find(`[hx-swap-oob="beforeend:#thread-messages"] [data-testid="note"]`)
		if note.Length() != 1 || note.AttrOr("id", "") != "note-"+strconv.FormatInt(n.ID, 10) {
			t.Fatalf("viewer %d: %d notes appended", i, note.Length())
		}
		if got := note.Find(`[data-testid="note-text"]`).Text(); got != hostile {
			t.Errorf("viewer %d: the note reads %q, want the text as typed", i, got)
		}
		if frame.Find("script").Length() != 0 || frame.Find("img").Length() != 0 {
			t.Errorf("viewer %d: the note's HTML became elements", i)
		}
		if got := note.Find(`[data-testid="note-author"]`).Text(); got != "Local agent" {
			t.Errorf("viewer %d: author %q", i, got)
		}
		if frame.Find(`#list-delta [data-conversation-id]`).Length() != 0 || frame.Find("#session-panel").Length() != 0 {
			t.Errorf("viewer %d: a note redrew the list row or the session panel", i)
		}
	}
	if frame := readFrameUpTo(t, other, last); frame.Find(`[data-testid="note"]`).Length() != 0 {
		t.Error("a page showing another conversation got the note")
	}
	_ = phone.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		_, data, err := readLive(phone)
		if err != nil {
			break // nothing more within the wait
		}
		if bytes.Contains(data, []byte("alert(1)")) || bytes.Contains(data, []byte("alert(")) {
			t.Fatalf("the client's phone got the note: %s", data)
		}
	}
	if got := ta.handlers.Hub().Stats().Notes - notesBefore; got != 1 {
		t.Errorf("the note was rendered %d times for two viewers, want once", got)
	}

	// A page loaded afterwards shows it in the thread, styled as a note.
	status, body := ta.do(t, "GET", "/c/"+strconv.FormatInt(conv, 10), "", "")
	doc := htmlDoc(t, body)
	if status != 200 || doc.Find(`#thread-messages .msg-note [data-testid="note-text"]`).Text() != hostile {
		t.Errorf("the page's thread: %d, note %q", status, doc.Find(`#thread-messages [data-testid="note"]`).Text())
	}
	if doc.Find(`#thread-messages script, #thread-messages img`).Length() != 0 {
		t.Error("the note's HTML became elements in the page")
	}
	// Thread order is by time: the client's message, then the note.
	var order []string
	doc.Find(`#thread-messages > [data-direction]`).Each(func(_ int, s *goquery.Selection) {
		order = append(order, s.AttrOr("data-direction", ""))
	})
	if strings.Join(order, ",") != "in,note" {
		t.Errorf("thread order %v, want in,note", order)
	}
}

// startNotesApp starts the inbox behind a trusted proxy on this machine, so
// that each request names its agent.
func startNotesApp(t *testing.T) *testApp {
	t.Helper()
	return startSSOApp(t, map[string]string{"SESSIONDESK_AUTH": "header", "SESSIONDESK_AUTH_PRESET": "oauth2-proxy",
		"SESSIONDESK_ROLES": "support=agent", "SESSIONDESK_TRUSTED_PROXIES": "127.0.0.1/32"})
}

func agentHeaders(login string) []string {
	return []string{"X-Forwarded-User", login, "X-Forwarded-Groups", "support"}
}

func (ta *testApp) dialNotesAs(t *testing.T, login, path string) *websocket.Conn {
	t.Helper()
	u, _ := url.Parse(ta.base)
	h := http.Header{}
	h.Set("Origin", ta.base)
	for i := 0; i+1 < len(agentHeaders(login)); i += 2 {
		h.Set(agentHeaders(login)[i], agentHeaders(login)[i+1])
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+u.Host+path, h)
	if err != nil {
		t.Fatalf("dial as %s: %v", login, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// postNoRedirect posts a form and returns the status and the Location, without following it.
func (ta *testApp) postNoRedirect(t *testing.T, path, form string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", ta.base+path, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Location")
}

func mentionBadge(t *testing.T, ta *testApp, login string) (count string, shown string) {
	t.Helper()
	status, body := ta.do(t, "GET", "/", "", "", agentHeaders(login)...)
	if status != 200 {
		t.Fatalf("inbox as %s: %d", login, status)
	}
	b := htmlDoc(t, body).Find(`#mention-badge`)
	return b.AttrOr("data-mention-count", "?"), strings.TrimSpace(b.Find(`[data-testid="mention-count"]`).Text())
}

// A mention notifies the mentioned agent, on their pages only, and is
// listed on their mentions page until marked seen.
func TestMentionNotifiesOnlyTheMentionedAgent(t *testing.T) {
	ta := startNotesApp(t)
	for _, login := range []string{"olga", "ivan", "anna"} {
		if status, _ := ta.do(t, "GET", "/", "", "", agentHeaders(login)...); status != 200 {
			t.Fatalf("first visit of %s: %d", login, status)
		}
	}
	b, _ := json.Marshal(map[string]string{"from": "+375298603938", "name": "Client", "text": "Hello"})
	status, body := ta.do(t, "POST", "/sandbox/messages", "application/json", string(b), agentHeaders("olga")...)
	if status != http.StatusCreated {
		t.Fatalf("client message: %d %s", status, body)
	}
	var conv int64 = 1
	after := "&after=" + strconv.FormatInt(lastEventID(t, ta), 10)
	pages := map[string]*websocket.Conn{
		"olga": ta.dialNotesAs(t, "olga", "/ws?conversation=1"+after),
		"ivan": ta.dialNotesAs(t, "ivan", "/ws?conversation=0"+after), // elsewhere: the mention still reaches him
		"anna": ta.dialNotesAs(t, "anna", "/ws?conversation=1"+after),
	}
	waitFor(t, "the three pages to join the hub", func() bool { return ta.handlers.Hub().Pages() == 3 })

	n := ta.addNote(t, conv, "@ivan can you check the refund? mail anna@example.com, ask @nobody. @olga too", agentHeaders("olga")...)
	if !reflect.DeepEqual(n.Mentions, []string{"ivan", "olga"}) || n.Author != "olga" {
		t.Errorf("note %+v: want mentions ivan and olga (an e-mail and an unknown login are text)", n)
	}
	last := lastEventID(t, ta)
	for login, conn := range pages {
		frame := readFrameUpTo(t, conn, last)
		badge := frame.Find(`#mention-badge[hx-swap-oob="true"]`)
		switch login {
		case "ivan":
			if badge.Length() != 1 || badge.AttrOr("data-mention-count", "") != "1" ||
				badge.AttrOr("data-mention-note", "") != strconv.FormatInt(n.ID, 10) ||
				badge.AttrOr("data-mention-author", "") != "olga" {
				t.Errorf("ivan's page: badge %d, count %q", badge.Length(), badge.AttrOr("data-mention-count", ""))
			}
			if frame.Find(`[data-testid="note"]`).Length() != 0 {
				t.Error("ivan's page shows no thread but got the note's bubble")
			}
		default:
			if badge.Length() != 0 {
				t.Errorf("%s's page got a mentions badge", login)
			}
			if frame.Find(`[data-testid="note"] [data-testid="note-mention"]`).Length() != 2 {
				t.Errorf("%s's page: the note's mentions are not marked", login)
			}
		}
	}
	// A page of Ivan's that was away catches up on the mention too.
	back := readFrameUpTo(t, ta.dialNotesAs(t, "ivan", "/ws?conversation=0"+after), last)
	if back.Find(`#mention-badge`).AttrOr("data-mention-count", "") != "1" {
		t.Error("ivan's page catching up after the note got no mentions badge")
	}
	if c, shown := mentionBadge(t, ta, "ivan"); c != "1" || shown != "1" {
		t.Errorf("ivan's badge after a reload: %q %q, want 1", c, shown)
	}
	if c, _ := mentionBadge(t, ta, "olga"); c != "0" {
		t.Errorf("olga's own mention counts: %q", c)
	}
	if c, _ := mentionBadge(t, ta, "anna"); c != "0" {
		t.Errorf("anna's badge: %q, she was not mentioned (only her e-mail's look-alike)", c)
	}

	// The list of mentions, then marked seen.
	status, body = ta.do(t, "GET", "/mentions", "", "", agentHeaders("ivan")...)
	doc := htmlDoc(t, body)
	rows := doc.Find(`[data-testid="mention-row"].is-unseen`)
	if status != 200 || rows.Length() != 1 || !strings.Contains(rows.Text(), "can you check the refund") {
		t.Fatalf("ivan's mentions: %d, %d unseen rows", status, rows.Length())
	}
	upto := doc.Find(`input[name="upto"]`).AttrOr("value", "")
	if c, _ := mentionBadge(t, ta, "ivan"); c != "1" {
		t.Errorf("looking at the list marked the mention seen (a GET changed state): %q", c)
	}
	// A second mention arrives after Ivan looked: marking seen leaves it.
	ta.addNote(t, conv, "@IVAN one more", agentHeaders("anna")...)
	if status, where := ta.postNoRedirect(t, "/mentions/seen", "upto="+upto, agentHeaders("ivan")...); status != http.StatusSeeOther || where != "/mentions" {
		t.Errorf("mark seen: %d to %q, want 303 to /mentions", status, where)
	}
	if c, _ := mentionBadge(t, ta, "ivan"); c != "1" {
		t.Errorf("after marking the first seen ivan has %q unseen, want the later one only", c)
	}
	status, _ = ta.do(t, "POST", "/mentions/seen", "application/x-www-form-urlencoded", "upto=abc", agentHeaders("ivan")...)
	if status != http.StatusBadRequest {
		t.Errorf("mark seen with a bad upto: %d, want 400", status)
	}
}

func TestNoteErrors(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	path := notesPath(conv)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown conversation", "POST", notesPath(9999), `{"text":"hi"}`, 404, "not_found"},
		{"unknown conversation (get)", "GET", notesPath(9999), "", 404, "not_found"},
		{"malformed id", "POST", "/api/v1/conversations/abc/notes", `{"text":"hi"}`, 404, "not_found"},
		{"malformed JSON", "POST", path, `{"text":`, 400, "bad_request"},
		{"empty body", "POST", path, ``, 400, "bad_request"},
		{"two values", "POST", path, `{"text":"a"}{"text":"b"}`, 400, "bad_request"},
		{"no text", "POST", path, `{}`, 422, "invalid_type"},
		{"blank", "POST", path, `{"text":" \n\t\u200b "}`, 422, "invalid_type"},
		{"too long", "POST", path, `{"text":"` + strings.Repeat("я", store.MaxNoteLen+1) + `"}`, 422, "text_too_long"},
		{"10 MB", "POST", path, `{"text":"` + strings.Repeat("x", 10<<20) + `"}`, 413, "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := ta.do(t, tc.method, tc.path, "application/json", tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d (%.200s)", status, tc.status, body)
			}
			if e := decodeError(t, body); e.Code != tc.code {
				t.Errorf("code %q, want %q (%s)", e.Code, tc.code, e.Message)
			}
		})
	}
	form := "/c/" + strconv.FormatInt(conv, 10) + "/notes"
	// The Note tab without JS: a refusal is an error page; with htmx, the tab
	// comes back with the draft and the reason.
	if status, _ := ta.do(t, "POST", form, "application/x-www-form-urlencoded", "text=+++"); status != 422 {
		t.Errorf("blank note form: %d, want 422", status)
	}
	long := strings.Repeat("a", store.MaxNoteLen+1)
	status, body := ta.do(t, "POST", form, "application/x-www-form-urlencoded", "text="+long, "HX-Request", "true")
	doc := htmlDoc(t, body)
	if status != 200 || doc.Find(`[data-testid="note-error"]`).AttrOr("data-code", "") != "text_too_long" ||
		doc.Find(`#note-text`).Text() != long {
		t.Errorf("htmx too long: %d, error %q, draft kept %v", status, doc.Find(`[data-testid="note-error"]`).AttrOr("data-code", ""),
			doc.Find(`#note-text`).Text() == long)
	}
	if status, _ := ta.do(t, "POST", form, "application/x-www-form-urlencoded", "text="+strings.Repeat("x", 10<<20)); status != 413 {
		t.Errorf("10 MB form: %d, want 413", status)
	}
	if status, _ := ta.do(t, "POST", "/c/9999/notes", "application/x-www-form-urlencoded", "text=hi"); status != 404 {
		t.Errorf("form on an unknown conversation: %d, want 404", status)
	}
	status, _ = ta.do(t, "POST", form, "application/x-www-form-urlencoded", "text=gotcha",
		"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	if status != http.StatusForbidden {
		t.Errorf("cross-site note: %d, want 403", status)
	}
	// Without JS an accepted note goes back to the conversation.
	if status, where := ta.postNoRedirect(t, form, "text=line+one%0D%0Aline+two"); status != http.StatusSeeOther ||
		where != "/c/"+strconv.FormatInt(conv, 10) {
		t.Errorf("plain form: %d to %q", status, where)
	}
	var notes []store.Note
	var err error
	_ = ta.Store.Read(context.Background(), func(r *store.Reader) error {
		notes, err = r.Notes(context.Background(), conv, time.Time{}, 100)
		return err
	})
	if len(notes) != 1 || notes[0].Body != "line one\nline two" {
		t.Errorf("kept notes %+v, want only the accepted one, its line break as one character", notes)
	}
}

package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/gorilla/websocket"

	"sessiondesk/clock"
	"sessiondesk/config"
	"sessiondesk/handlers"
	"sessiondesk/session"
	"sessiondesk/store"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// testApp is a whole Sessiondesk on a random loopback port with a temporary
// data folder and a manual clock.
type testApp struct {
	*App
	base  string
	clock *clock.Manual
	data  string
	stop  context.CancelFunc
	done  chan error

	once   sync.Once
	runErr error
}

func startApp(t *testing.T, mutate ...func(*config.Config)) *testApp {
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
	return runApp(t, cfg, clk, Options{Now: clk.Now})
}

// runApp starts an App and stops it when the test ends.
func runApp(t *testing.T, cfg config.Config, clk *clock.Manual, opts Options) *testApp {
	t.Helper()
	a, err := New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testApp{App: a, base: a.URL(), clock: clk, data: cfg.DataDir, stop: cancel, done: make(chan error, 1)}
	go func() { ta.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		if err := ta.shutdown(t); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return ta
}

// shutdown stops the app once and returns what Run returned.
func (ta *testApp) shutdown(t *testing.T) error {
	t.Helper()
	ta.once.Do(func() {
		ta.stop()
		select {
		case ta.runErr = <-ta.done:
		case <-time.After(20 * time.Second):
			ta.runErr = errors.New("the app did not stop within 20 s")
		}
	})
	return ta.runErr
}

// do sends a request and returns the status and body.
func (ta *testApp) do(t *testing.T, method, path, contentType, body string, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ta.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func (ta *testApp) clientWrites(t *testing.T, from, text string) int64 {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"from": from, "name": "Olga Petrova", "text": text})
	status, body := ta.do(t, "POST", "/sandbox/messages", "application/json", string(b))
	if status != http.StatusCreated {
		t.Fatalf("sandbox message: %d %s", status, body)
	}
	var out struct {
		Message struct {
			ID             int64 `json:"id"`
			ConversationID int64 `json:"conversation_id"`
		} `json:"message"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Message.ConversationID
}

func (ta *testApp) messageCount(t *testing.T) int {
	t.Helper()
	var n int
	err := ta.Store.Read(context.Background(), func(r *store.Reader) error {
		convs, err := r.Conversations(context.Background(), 100)
		for _, c := range convs {
			msgs, _ := r.Messages(context.Background(), c.ID, 1000)
			n += len(msgs)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// apiError is the API's error body.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func decodeError(t *testing.T, body []byte) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if e.Code == "" || e.Message == "" {
		t.Fatalf("error body %q lacks a code or a message", body)
	}
	return e
}

func TestAPIBadInputStoresNothing(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	path := "/api/v1/conversations/" + strconv.FormatInt(conv, 10) + "/messages"
	before := ta.messageCount(t)

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown conversation", "POST", "/api/v1/conversations/9999/messages", `{"type":"text","text":"hi"}`, 404, "not_found"},
		{"unknown conversation (get)", "GET", "/api/v1/conversations/9999", "", 404, "not_found"},
		{"malformed id", "GET", "/api/v1/conversations/abc", "", 404, "not_found"},
		{"malformed JSON", "POST", path, `{"type":"text","text":`, 400, "bad_request"},
		{"empty body", "POST", path, ``, 400, "bad_request"},
		{"text over 1000", "POST", path, `{"type":"text","text":"` + strings.Repeat("я", 1001) + `"}`, 422, "text_too_long"},
		{"a button", "POST", path, `{"type":"button","text":"Buy"}`, 422, "invalid_type"},
		{"empty text", "POST", path, `{"type":"text","text":""}`, 422, "invalid_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := ta.do(t, tc.method, tc.path, "application/json", tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d (%s)", status, tc.status, body)
			}
			if e := decodeError(t, body); e.Code != tc.code {
				t.Errorf("code %q, want %q (%s)", e.Code, tc.code, e.Message)
			}
		})
	}
	if after := ta.messageCount(t); after != before {
		t.Errorf("bad requests stored %d messages", after-before)
	}
	// The refusal says how long the text was.
	_, body := ta.do(t, "POST", path, "application/json", `{"type":"text","text":"`+strings.Repeat("x", 1001)+`"}`)
	if e := decodeError(t, body); !strings.Contains(e.Message, "1001") {
		t.Errorf("text_too_long message %q does not give the count", e.Message)
	}
}

func TestAPISendAndSessionState(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	id := strconv.FormatInt(conv, 10)
	ta.clock.Add(5 * time.Minute)

	status, body := ta.do(t, "POST", "/api/v1/conversations/"+id+"/messages", "application/json", `{"type":"text","text":"We are on it"}`)
	if status != http.StatusCreated {
		t.Fatalf("send: %d %s", status, body)
	}
	status, body = ta.do(t, "GET", "/api/v1/conversations/"+id, "", "")
	if status != 200 {
		t.Fatalf("get: %d %s", status, body)
	}
	var got struct {
		Session struct {
			Number         int       `json:"number"`
			StartedAt      time.Time `json:"started_at"`
			EndsAt         time.Time `json:"ends_at"`
			Used           int       `json:"used"`
			Remaining      int       `json:"remaining"`
			Unanswered     int       `json:"unanswered"`
			UnansweredLeft int       `json:"unanswered_left"`
			CanSend        bool      `json:"can_send"`
			Code           string    `json:"code"`
		} `json:"session"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	s := got.Session
	if s.Number != 1 || !s.StartedAt.Equal(t0) || !s.EndsAt.Equal(t0.Add(24*time.Hour)) || s.Used != 1 || s.Remaining != 59 ||
		s.Unanswered != 1 || s.UnansweredLeft != 4 || !s.CanSend || s.Code != "" {
		t.Errorf("session = %+v", s)
	}

	// Four more, then the sixth is refused with 409 awaiting_client.
	for i := 0; i < 4; i++ {
		if status, body := ta.do(t, "POST", "/api/v1/conversations/"+id+"/messages", "application/json", `{"type":"text","text":"more"}`); status != 201 {
			t.Fatalf("send %d: %d %s", i, status, body)
		}
	}
	status, body = ta.do(t, "POST", "/api/v1/conversations/"+id+"/messages", "application/json", `{"type":"text","text":"sixth"}`)
	if e := decodeError(t, body); status != http.StatusConflict || e.Code != string(session.AwaitingClient) {
		t.Errorf("sixth: %d %+v, want 409 awaiting_client", status, e)
	}
	// The window closes: 409 window_closed.
	ta.clock.Set(t0.Add(24 * time.Hour))
	ta.clientWrites(t, "+375298603938", "late") // opens session 2 now
	ta.clock.Add(time.Minute)
	status, body = ta.do(t, "GET", "/api/v1/conversations/"+id, "", "")
	if !bytes.Contains(body, []byte(`"number":2`)) || status != 200 {
		t.Errorf("after a client message past the end: %d %s, want session 2", status, body)
	}
}

// readFrame reads the next websocket frame of events and returns the ids of
// the thread messages appended in it and the frame's event cursor. A page
// with a conversation open also gets its presence line when it joins (who
// else is there, none included): that frame carries no event and is skipped.
func readFrame(t *testing.T, conn *websocket.Conn) (appended []string, cursor int64) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, err := readEventFrame(conn)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	doc.Find(`[hx-swap-oob="beforeend:#thread-messages"] [id^="msg-"]`).Each(func(_ int, s *goquery.Selection) {
		id, _ := s.Attr("id")
		appended = append(appended, id)
	})
	v, ok := doc.Find("#live-cursor").Attr("data-last-event-id")
	if !ok {
		t.Fatalf("frame without a cursor: %s", data)
	}
	cursor, _ = strconv.ParseInt(v, 10, 64)
	return appended, cursor
}

// readEventFrame reads the next frame that carries events, skipping the
// presence line a page with a conversation open gets as it joins.
func readEventFrame(conn *websocket.Conn) ([]byte, error) {
	for {
		_, data, err := readLive(conn)
		if err != nil {
			return nil, err
		}
		if bytes.Contains(data, []byte(`id="live-cursor"`)) || !bytes.Contains(data, []byte(`id="presence-`)) {
			return data, nil
		}
	}
}

func (ta *testApp) dial(t *testing.T, path string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u, _ := url.Parse(ta.base)
	h := http.Header{}
	h.Set("Origin", ta.base)
	return websocket.DefaultDialer.Dial("ws://"+u.Host+path, h)
}

func pageCursor(t *testing.T, ta *testApp, path string) int64 {
	t.Helper()
	status, body := ta.do(t, "GET", path, "", "")
	if status != 200 {
		t.Fatalf("GET %s: %d", path, status)
	}
	doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(body))
	v, ok := doc.Find("#live-cursor").Attr("data-last-event-id")
	if !ok {
		t.Fatalf("page %s has no live cursor", path)
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// The websocket test: connect, post, receive; disconnect; post two
// more; reconnect from the last id; receive exactly those two.
func TestWebsocketReplaysExactlyWhatWasMissed(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "first")
	convPath := "/c/" + strconv.FormatInt(conv, 10)
	cursor := pageCursor(t, ta, convPath)
	wsPath := func(after int64) string {
		return "/ws?conversation=" + strconv.FormatInt(conv, 10) + "&after=" + strconv.FormatInt(after, 10)
	}

	conn, _, err := ta.dial(t, wsPath(cursor))
	if err != nil {
		t.Fatal(err)
	}
	ta.clientWrites(t, "+375298603938", "second")
	got, c := readFrame(t, conn)
	if len(got) != 1 {
		t.Fatalf("live: appended %v, want one message", got)
	}
	cursor = c
	conn.Close()

	// Let the server notice the closed socket, then miss two messages.
	ta.clientWrites(t, "+375298603938", "third")
	ta.clientWrites(t, "+375298603938", "fourth")
	var want []string
	_ = ta.Store.Read(context.Background(), func(r *store.Reader) error {
		msgs, _ := r.Messages(context.Background(), conv, 2)
		for _, m := range msgs {
			want = append(want, "msg-"+strconv.FormatInt(m.ID, 10))
		}
		return nil
	})

	conn, _, err = ta.dial(t, wsPath(cursor))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var replayed []string
	last := lastEventID(t, ta)
	for cursor < last {
		got, c := readFrame(t, conn)
		replayed = append(replayed, got...)
		cursor = c
	}
	if strings.Join(replayed, ",") != strings.Join(want, ",") {
		t.Errorf("replayed %v, want exactly %v", replayed, want)
	}
	// Nothing more arrives: no duplicates trail behind.
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, data, err := readLive(conn); err == nil {
		doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(data))
		if n := doc.Find(`[hx-swap-oob="beforeend:#thread-messages"]`).Length(); n > 0 {
			t.Errorf("a later frame appended %d more messages: %s", n, data)
		}
	}
}

func lastEventID(t *testing.T, ta *testApp) int64 {
	t.Helper()
	var id int64
	if err := ta.Store.Read(context.Background(), func(r *store.Reader) error {
		var err error
		id, err = r.LastEventID(context.Background())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// A live page's websocket lives past the request bodies' deadline (here
// 300 ms): the upgrade hijacks the connection, and nothing set for bodies may
// end it. A message written after that deadline still reaches the page.
func TestLivePageOutlivesBodyDeadline(t *testing.T) {
	lim := handlers.BodyLimits{Grace: 300 * time.Millisecond, MinRate: 1000, Idle: 300 * time.Millisecond}
	ta := startAppWith(t, Options{Bodies: lim})
	conv := ta.clientWrites(t, "+375298603938", "first")
	cursor := pageCursor(t, ta, "/c/"+strconv.FormatInt(conv, 10))
	conn, _, err := ta.dial(t, "/ws?conversation="+strconv.FormatInt(conv, 10)+"&after="+strconv.FormatInt(cursor, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	<-time.After(3 * lim.Grace)
	ta.clientWrites(t, "+375298603938", "after the deadline")
	doc := readFrameUpTo(t, conn, lastEventID(t, ta))
	if n := doc.Find(`[hx-swap-oob="beforeend:#thread-messages"] [id^="msg-"]`).Length(); n != 1 {
		t.Fatalf("the frame after the deadline appends %d messages, want the one", n)
	}
}

func TestWebsocketRefusesForeignOrigin(t *testing.T) {
	ta := startApp(t)
	u, _ := url.Parse(ta.base)
	for _, origin := range []string{"https://evil.example", "http://127.0.0.1:1", ""} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		conn, res, err := websocket.DefaultDialer.Dial("ws://"+u.Host+"/ws?after=0", h)
		if err == nil {
			conn.Close()
			t.Errorf("origin %q: connected, want refused", origin)
			continue
		}
		if res == nil || res.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: %v, want 403", origin, err)
		}
	}
}

func TestCrossSiteFormPostRefused(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	before := ta.messageCount(t)
	status, _ := ta.do(t, "POST", "/c/"+strconv.FormatInt(conv, 10)+"/messages", "application/x-www-form-urlencoded",
		"text=gotcha", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	if status != http.StatusForbidden {
		t.Errorf("cross-site post: %d, want 403", status)
	}
	if ta.messageCount(t) != before {
		t.Error("a cross-site post stored a message")
	}
	// The same form from the inbox's own page goes through.
	status, _ = ta.do(t, "POST", "/c/"+strconv.FormatInt(conv, 10)+"/messages", "application/x-www-form-urlencoded",
		"text=hello", "Sec-Fetch-Site", "same-origin", "Origin", ta.base, "HX-Request", "true")
	if status != http.StatusOK || ta.messageCount(t) != before+1 {
		t.Errorf("same-origin post: %d, messages %d → %d", status, before, ta.messageCount(t))
	}
}

// Business messages go queued → sent (outbox) → delivered (the phone page is
// open) → seen (the phone showed it).
func TestSandboxDeliveryPath(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	msgs, err := ta.Store.AcceptBusinessMessages(context.Background(), store.BusinessSend{
		ConversationID: conv, Parts: []session.Part{{Kind: session.Text, Text: "Hi Olga"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := msgs[0].ID
	waitStatus(t, ta, id, store.StatusSent)
	if status, _ := ta.do(t, "GET", "/sandbox?phone=%2B375298603938", "", ""); status != 200 {
		t.Fatalf("sandbox page: %d", status)
	}
	waitStatus(t, ta, id, store.StatusDelivered)
	if status, _ := ta.do(t, "POST", "/sandbox/messages/"+strconv.FormatInt(id, 10)+"/seen", "", ""); status != http.StatusNoContent {
		t.Fatalf("seen: %d", status)
	}
	waitStatus(t, ta, id, store.StatusSeen)
}

func waitStatus(t *testing.T, ta *testApp, id int64, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		_ = ta.Store.Read(context.Background(), func(r *store.Reader) error {
			m, err := r.Message(context.Background(), id)
			got = m.Status
			return err
		})
		if got == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("message %d is %q, want %q", id, got, want)
}

func TestPagesRenderAndEscape(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", `<script>alert(1)</script><img src=x onerror=alert(2)>`)
	for _, path := range []string{"/", "/c/" + strconv.FormatInt(conv, 10), "/sandbox", "/sandbox?phone=%2B375298603938"} {
		status, body := ta.do(t, "GET", path, "", "")
		if status != 200 {
			t.Fatalf("GET %s: %d", path, status)
		}
		doc, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		doc.Find("script").Each(func(_ int, s *goquery.Selection) {
			if src, ok := s.Attr("src"); !ok || !strings.HasPrefix(src, "/static/") {
				t.Errorf("%s: a script that is not a static file: %s", path, s.Text())
			}
		})
		if doc.Find("img[src=x]").Length() > 0 {
			t.Errorf("%s: the client's <img> became an element", path)
		}
		if path != "/sandbox" && !strings.Contains(doc.Text(), "<script>alert(1)</script>") {
			t.Errorf("%s: the client's text is not shown as text", path)
		}
	}
	status, body := ta.do(t, "GET", "/c/"+strconv.FormatInt(conv, 10), "", "")
	doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if status != 200 || doc.Find(`[data-testid="session-panel"]`).Length() != 1 || doc.Find(`[data-testid="composer-send"]`).Length() == 0 {
		t.Errorf("conversation page lacks the session panel or the composer")
	}
	if status, _ := ta.do(t, "GET", "/c/9999", "", ""); status != 404 {
		t.Errorf("unknown conversation page: %d, want 404", status)
	}
}

func TestComposerRefusalKeepsDraft(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	path := "/c/" + strconv.FormatInt(conv, 10) + "/messages"
	long := strings.Repeat("a", 1001)
	status, body := ta.do(t, "POST", path, "application/x-www-form-urlencoded", "text="+long, "HX-Request", "true")
	doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if status != 200 || !strings.Contains(doc.Find(`[data-testid="composer-error"]`).Text(), "1001") {
		t.Errorf("refused send: %d, error %q", status, doc.Find(`[data-testid="composer-error"]`).Text())
	}
	if got := doc.Find("textarea").Text(); got != long {
		t.Errorf("the draft was not kept (%d characters)", len(got))
	}
}

func TestGracefulShutdownClosesSocketsAndDatabase(t *testing.T) {
	ta := startApp(t)
	ta.clientWrites(t, "+375298603938", "Hello")
	conn, _, err := ta.dial(t, "/ws?after=0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	readFrame(t, conn) // the replay of the first message
	stopped := make(chan error, 1)
	go func() { stopped <- ta.shutdown(t) }()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ce *websocket.CloseError
	for {
		if _, _, err = readLive(conn); err != nil {
			break
		}
	}
	if !errors.As(err, &ce) || ce.Code != closeRestartCode {
		t.Errorf("socket ended with %v, want close code %d so the page reconnects", err, closeRestartCode)
	}
	if err := <-stopped; err != nil {
		t.Errorf("run: %v", err)
	}
	// The database was closed cleanly: it opens again with the message in it.
	st, err := store.Open(context.Background(), filepath.Join(ta.data, "sessiondesk.db"), store.Options{Rules: session.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Read(context.Background(), func(r *store.Reader) error {
		msgs, err := r.Messages(context.Background(), 1, 10)
		if len(msgs) != 1 {
			t.Errorf("after restart: %d messages, want 1", len(msgs))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

const closeRestartCode = 1012

func TestDemoDataShowsEveryState(t *testing.T) {
	ta := startApp(t, func(c *config.Config) { c.NoDemo = false })
	status, body := ta.do(t, "GET", "/api/v1/conversations", "", "")
	if status != 200 {
		t.Fatal(status)
	}
	var out struct {
		Conversations []struct {
			Session struct {
				Open           bool      `json:"open"`
				EndsAt         time.Time `json:"ends_at"`
				UnansweredLeft int       `json:"unanswered_left"`
				Code           string    `json:"code"`
			} `json:"session"`
		} `json:"conversations"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	var fresh, closing, locked, closed bool
	for _, c := range out.Conversations {
		s := c.Session
		left := s.EndsAt.Sub(t0)
		switch {
		case !s.Open && s.Code == "window_closed":
			closed = true
		case s.Open && s.Code == "awaiting_client":
			locked = true
		case s.Open && left < time.Hour:
			closing = true
		case s.Open && left > 23*time.Hour:
			fresh = true
		}
	}
	if !fresh || !closing || !locked || !closed {
		t.Errorf("demo states: fresh=%v closing=%v locked=%v closed=%v; want all (%s)", fresh, closing, locked, closed, body)
	}
	// A second start does not add them again.
	var n int
	_ = ta.Store.Read(context.Background(), func(r *store.Reader) error {
		cs, _ := r.Contacts(context.Background(), 100)
		n = len(cs)
		return nil
	})
	if added, err := seedDemo(context.Background(), ta.Store); err != nil || added {
		t.Errorf("seeding a non-empty database: added=%v err=%v", added, err)
	}
	if n != len(demoClients(ta.Store.Rules())) {
		t.Errorf("%d contacts, want %d", n, len(demoClients(ta.Store.Rules())))
	}
}

// An admin's settings apply at once: the unanswered limit, and the canned
// replies offered in the composer.
func TestAdminSettingsApplyAtOnce(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	form := url.Values{
		"window_hours": {"24"}, "max_per_session": {"60"}, "max_unanswered": {"2"}, "after_cap": {"rollover"},
		"text_max": {"1000"}, "rate_text": {"0.045"}, "rate_media": {"0.06"}, "currency": {"EUR"},
		"canned_title": {"Greeting"}, "canned_text": {"Hello! How can I help?"},
	}
	// The client follows the redirect to the page that says it was saved.
	if status, body := ta.do(t, "POST", "/admin/settings", "application/x-www-form-urlencoded", form.Encode()); status != 200 ||
		!bytes.Contains(body, []byte(`data-testid="settings-saved"`)) {
		t.Fatalf("save settings: %d %.300s", status, body)
	}
	path := "/api/v1/conversations/" + strconv.FormatInt(conv, 10) + "/messages"
	for i := range 3 {
		status, body := ta.do(t, "POST", path, "application/json", `{"type":"text","text":"hi"}`)
		want := http.StatusCreated
		if i == 2 {
			want = http.StatusConflict
		}
		if status != want {
			t.Errorf("send %d with an unanswered limit of 2: %d %s", i+1, status, body)
		}
	}
	_, body := ta.do(t, "GET", "/c/"+strconv.FormatInt(conv, 10), "", "")
	doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(body))
	chip := doc.Find(`[data-testid="canned-reply"]`)
	if chip.Length() != 1 || chip.Text() != "Greeting" || chip.AttrOr("data-canned", "") != "Hello! How can I help?" {
		t.Errorf("canned replies in the composer: %d %q", chip.Length(), chip.Text())
	}
	if !strings.Contains(doc.Find(`[data-testid="session-cost"]`).Text(), "0.045") {
		t.Errorf("the panel's cost does not use the new text rate: %q", doc.Find(`[data-testid="session-cost"]`).Text())
	}
}

// Under a sub-path of the proxy every link, form and socket carries the prefix.
func TestBasePath(t *testing.T) {
	ta := startApp(t, func(c *config.Config) { c.BasePath = "/support" })
	if !strings.HasSuffix(ta.base, "/support") {
		t.Fatalf("base URL %s does not end in the base path", ta.base)
	}
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	status, body := ta.do(t, "GET", "/c/"+strconv.FormatInt(conv, 10), "", "")
	if status != 200 {
		t.Fatalf("page under the base path: %d", status)
	}
	for _, want := range []string{`href="/support/c/`, `action="/support/c/`, `ws-connect="/support/ws?`, `src="/support/static/`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("the page has no %s", want)
		}
	}
	root := strings.TrimSuffix(ta.base, "/support")
	res, err := http.Get(root + "/c/" + strconv.FormatInt(conv, 10))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("outside the base path: %d, want 404", res.StatusCode)
	}
	// The form's redirect stays under the base path.
	req, _ := http.NewRequest("POST", ta.base+"/c/"+strconv.FormatInt(conv, 10)+"/messages", strings.NewReader("text=hi"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/support/c/") {
		t.Errorf("redirect after a send: %d %q", res.StatusCode, loc)
	}
}

// readLive reads the page's next live message, passing over the sidebar's
// counts, which the hub sends at their own pace (at most once a second, and
// every half minute) between the frames of events.
func readLive(conn *websocket.Conn) (int, []byte, error) {
	for {
		mt, data, err := conn.ReadMessage()
		if err != nil || !bytes.HasPrefix(data, []byte(`<template id="view-counts"`)) {
			return mt, data, err
		}
	}
}

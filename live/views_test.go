package live

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/gorilla/websocket"

	"sessiondesk/session"
	"sessiondesk/store"
)

// nextCounts reads the page's messages until a view-counts frame that
// satisfies ok arrives, and returns its numbers (view -> n, and "unread").
func nextCounts(t *testing.T, conn *websocket.Conn, ok func(map[string]int) bool) map[string]int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last map[string]int
	for time.Now().Before(deadline) {
		_ = conn.SetReadDeadline(deadline)
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v (last counts %v)", err, last)
		}
		if !bytes.HasPrefix(data, []byte(`<template id="view-counts"`)) {
			continue
		}
		doc, err := goquery.NewDocumentFromReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		tpl := doc.Find("#view-counts")
		got["unread"], _ = strconv.Atoi(tpl.AttrOr("data-unread-total", "-1"))
		// goquery parses <template> content as a fragment: read it raw.
		inner, _ := tpl.Html()
		frag, _ := goquery.NewDocumentFromReader(strings.NewReader(inner))
		frag.Find("i[data-view]").Each(func(_ int, s *goquery.Selection) {
			got[s.AttrOr("data-view", "")], _ = strconv.Atoi(s.AttrOr("data-n", "-1"))
		})
		last = got
		if ok(got) {
			return got
		}
	}
	t.Fatalf("no counts as wanted; last %v", last)
	return nil
}

// The sidebar's counts reach each agent's pages: the views everyone shares,
// Mine for the agent, and the agent's own unread total; an assignment moves
// Mine for one agent only, and reading moves only the reader's unread.
func TestHubSendsEachAgentTheirCounts(t *testing.T) {
	e := startHub(t, nil)
	ctx := context.Background()
	olga, ivan := e.agent(t, "Olga"), e.agent(t, "Ivan")
	cursor := e.waitCursor(t)
	po := e.dialAs(t, olga.ID, 0, cursor)
	pi := e.dialAs(t, ivan.ID, 0, cursor)
	e.waitPages(t, 2)

	a, _ := e.write(t, 1, "hello")
	b, _ := e.write(t, 2, "hi")
	both := func(c map[string]int) bool {
		return c["waiting"] == 2 && c["unassigned"] == 2 && c["all"] == 2 && c["unread"] == 2
	}
	nextCounts(t, po, both)
	nextCounts(t, pi, both)

	if _, err := e.st.UpdateConversation(ctx, a, olga.ID, store.ConversationUpdate{Assign: true, Assignee: "olga"}); err != nil {
		t.Fatal(err)
	}
	got := nextCounts(t, po, func(c map[string]int) bool { return c["mine"] == 1 })
	if got["unassigned"] != 1 || got["all"] != 2 {
		t.Errorf("Olga's counts after she took A: %v, want mine 1, unassigned 1, all 2", got)
	}
	got = nextCounts(t, pi, func(c map[string]int) bool { return c["unassigned"] == 1 })
	if got["mine"] != 0 {
		t.Errorf("Ivan's counts after Olga took A: %v, want mine 0", got)
	}

	// Ivan reads B: his unread total counts C only; Olga's counts A (hers),
	// B and C, since what Ivan read is still unread for her.
	if err := e.st.MarkRead(ctx, ivan.ID, b); err != nil {
		t.Fatal(err)
	}
	e.write(t, 3, "third") // a batch, so the counts go out again
	nextCounts(t, po, func(c map[string]int) bool { return c["unread"] == 3 && c["unassigned"] == 2 })
	nextCounts(t, pi, func(c map[string]int) bool { return c["unread"] == 1 && c["unassigned"] == 2 })
}

// A row that a batch changes reaches each agent's page with that agent's read
// mark, so the row shows unread for the agent who has not read it only.
func TestHubSendsEachAgentTheirReadMarks(t *testing.T) {
	e := startHub(t, nil)
	ctx := context.Background()
	olga, _ := e.st.EnsureAgent(ctx, "olga", "Olga", "agent")
	ivan, _ := e.st.EnsureAgent(ctx, "ivan", "Ivan", "agent")
	a, first := e.write(t, 1, "hello")
	if err := e.st.MarkRead(ctx, olga.ID, a); err != nil {
		t.Fatal(err)
	}
	cursor := e.waitCursor(t)
	po := e.dialAs(t, olga.ID, 0, cursor)
	pi := e.dialAs(t, ivan.ID, 0, cursor)
	e.waitPages(t, 2)
	e.write(t, 1, "again")
	marks := func(conn *websocket.Conn) string {
		for {
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, data, err := conn.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(data, []byte(`id="list-delta"`)) {
				doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(data))
				return doc.Find("#read-marks").AttrOr("data-marks", "none")
			}
		}
	}
	if got, want := marks(po), strconv.FormatInt(a, 10)+":"+strconv.FormatInt(first, 10); got != want {
		t.Errorf("Olga's marks %q, want %q (she read the first message)", got, want)
	}
	if got, want := marks(pi), strconv.FormatInt(a, 10)+":0"; got != want {
		t.Errorf("Ivan's marks %q, want %q (he read nothing)", got, want)
	}
}

// Time alone moves conversations between the session views: when a waiting
// client's session ends (Closed unanswered) or nears its end (Expiring), every
// page gets the row again, so a page whose view it enters can show it.
func TestHubSendsTheRowsTimeMoved(t *testing.T) {
	e := startHub(t, func(o *HubOptions) { o.CountEvery = 20 * time.Millisecond })
	a, _ := e.write(t, 1, "hello")
	cursor := e.waitCursor(t)
	page := e.dial(t, 0, cursor)
	e.waitPages(t, 1)
	// 24 h - 30 min later the session is within the hour of its end.
	e.clk.Add(23*time.Hour + 30*time.Minute)
	frameWithRow(t, page, a)
	// And after its end, the client unanswered: lost.
	e.clk.Add(time.Hour)
	frameWithRow(t, page, a)
}

// Pages connecting from the same cursor share one replay frame and its batch
// (TestHubSharesOneReplayBetweenPagesFromTheSameCursor), each adding its own
// agent's read marks: many agents at once (a team reconnecting after a
// restart, or 1,000 sockets churning) must not write the batch's memo of
// marks at the same time. The load tool's churn scenario crashed the inbox
// there ("concurrent map writes"); under -race this test sees it at once.
func TestHubReplaysTheSameCursorToManyAgentsAtOnce(t *testing.T) {
	e := startHub(t, nil)
	ctx := context.Background()
	a, _ := e.write(t, 1, "hello")
	cursor := e.waitCursor(t)
	_, again := e.write(t, 1, "again")
	e.write(t, 2, "hi")
	e.waitCursor(t)
	const n = 24
	agents := make([]int64, n)
	for i := range agents {
		ag, err := e.st.EnsureAgent(ctx, fmt.Sprintf("agent%d", i), fmt.Sprintf("Agent %d", i), "agent")
		if err != nil {
			t.Fatal(err)
		}
		agents[i] = ag.ID
		if i%2 == 0 { // half have read marks of their own: up to "again"
			if err := e.st.MarkRead(ctx, ag.ID, a); err != nil {
				t.Fatal(err)
			}
		}
	}
	marks := make([]string, n)
	var wg sync.WaitGroup
	for i, agent := range agents {
		wg.Go(func() {
			u := strings.Replace(e.srv.URL, "http://", "ws://", 1) + fmt.Sprintf("/?conversation=0&after=%d&agent=%d", cursor, agent)
			conn, _, err := websocket.DefaultDialer.Dial(u, nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, data, err := conn.ReadMessage()
			if err != nil {
				t.Error(err)
				return
			}
			doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(data))
			marks[i] = doc.Find("#read-marks").AttrOr("data-marks", "none")
		})
	}
	wg.Wait()
	own := strconv.FormatInt(a, 10) + ":" + strconv.FormatInt(again, 10)
	for i, got := range marks {
		if i%2 == 0 && !strings.Contains(got, own) {
			t.Errorf("agent %d read the conversation: marks %q, want %q in them", i, got, own)
		}
		if i%2 == 1 && !strings.Contains(got, strconv.FormatInt(a, 10)+":0") {
			t.Errorf("agent %d read nothing: marks %q", i, got)
		}
	}
}

// Note and Mentions make plainViews a NoteRenderer: a note's bubble, and the
// mentions badge with its count and the note it is about.
func (plainViews) Note(_ context.Context, w io.Writer, n store.Note) error {
	_, err := fmt.Fprintf(w, `<div class="note" id="note-%d"></div>`, n.ID)
	return err
}

func (plainViews) Mentions(_ context.Context, w io.Writer, unseen int, latest store.Note) error {
	_, err := fmt.Fprintf(w, `<a id="mention-badge" data-mention-count="%d" data-mention-note="%d"></a>`, unseen, latest.ID)
	return err
}

// A batch that changes a row and carries a note mentioning Olga reaches two
// agents with the same read marks (neither has opened the conversation): the
// badge goes to Olga's page only. The frames with read marks are shared by
// agents with the same marks, and Olga's frame already carries her badge, so
// sharing by view and marks alone gave her badge to Ivan, or Ivan's frame
// without it to Olga, depending on which page the hub served first; with one
// page each, one of the two was always wrong.
func TestHubSendsTheMentionsBadgeOnlyToTheMentionedAgent(t *testing.T) {
	e := startHub(t, func(o *HubOptions) { o.Notes = plainViews{} })
	ctx := context.Background()
	olga, ivan := e.agent(t, "Olga"), e.agent(t, "Ivan")
	a, _ := e.write(t, 1, "hello")
	cursor := e.waitCursor(t)
	po := e.dialAs(t, olga.ID, 0, cursor)
	pi := e.dialAs(t, ivan.ID, 0, cursor)
	e.waitPages(t, 2)

	// One commit, so one batch: a client message (a changed row, so read
	// marks in front) and Ivan's note mentioning Olga.
	var note store.Note
	err := e.st.Batch(ctx, func(s *store.Store) error {
		if _, err := s.ReceiveClientMessage(ctx, store.ClientMessage{
			Phone: fmt.Sprintf("+3752986%05d", 1), Name: "Client", Kind: session.Text, Text: "again"}); err != nil {
			return err
		}
		var err error
		note, err = s.AddNote(ctx, a, ivan.ID, "@olga can you take this one?")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	frameOf := func(conn *websocket.Conn) *goquery.Document {
		t.Helper()
		for {
			data := readLive(t, conn)
			if bytes.Contains(data, []byte(`id="list-delta"`)) {
				doc, err := goquery.NewDocumentFromReader(bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				return doc
			}
		}
	}
	fo, fi := frameOf(po), frameOf(pi)
	want := strconv.FormatInt(a, 10) + ":0"
	for who, doc := range map[string]*goquery.Document{"Olga": fo, "Ivan": fi} {
		if got := doc.Find("#read-marks").AttrOr("data-marks", "none"); got != want {
			t.Errorf("%s's marks %q, want the shared %q", who, got, want)
		}
	}
	badge := fo.Find("#mention-badge")
	if badge.Length() != 1 || badge.AttrOr("data-mention-count", "") != "1" ||
		badge.AttrOr("data-mention-note", "") != strconv.FormatInt(note.ID, 10) {
		t.Errorf("Olga, mentioned, got badge %d times (count %q, note %q), want once, 1 unseen, note %d",
			badge.Length(), badge.AttrOr("data-mention-count", ""), badge.AttrOr("data-mention-note", ""), note.ID)
	}
	if n := fi.Find("#mention-badge").Length(); n != 0 {
		t.Errorf("Ivan, not mentioned, got Olga's badge")
	}
}

// frameWithRow reads the page's frames until one has conversation conv's list
// row, and returns it.
func frameWithRow(t *testing.T, conn *websocket.Conn, conv int64) *goquery.Document {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_ = conn.SetReadDeadline(deadline)
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for row %d: %v", conv, err)
		}
		doc, err := goquery.NewDocumentFromReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if doc.Find(`#list-delta li[data-conversation-id="`+id(conv)+`"]`).Length() == 1 {
			return doc
		}
	}
	t.Fatalf("no frame with row %d", conv)
	return nil
}

// The rows time alone moves into a view (Expiring here) reach each agent's
// page with that agent's read marks, as a batch's rows do: the row carries no
// read state, and without the marks the page fell back to what it had seen
// since it loaded (nothing of this conversation) and showed the row Olga had
// read as unread until a reload.
func TestHubSendsReadMarksWithTheRowsTimeMoved(t *testing.T) {
	e := startHub(t, func(o *HubOptions) { o.CountEvery = 20 * time.Millisecond })
	ctx := context.Background()
	olga, ivan := e.agent(t, "Olga"), e.agent(t, "Ivan")
	a, first := e.write(t, 1, "hello")
	if err := e.st.MarkRead(ctx, olga.ID, a); err != nil {
		t.Fatal(err)
	}
	cursor := e.waitCursor(t)
	po := e.dialAs(t, olga.ID, 0, cursor)
	pi := e.dialAs(t, ivan.ID, 0, cursor)
	e.waitPages(t, 2)

	// 24 h - 30 min later the session is within the hour of its end: time
	// alone moves it into Expiring.
	e.clk.Add(23*time.Hour + 30*time.Minute)
	for _, c := range []struct {
		who  string
		conn *websocket.Conn
		want string
	}{
		{"Olga", po, id(a) + ":" + id(first)}, // she read the first message
		{"Ivan", pi, id(a) + ":0"},            // he read nothing
	} {
		doc := frameWithRow(t, c.conn, a)
		if got := doc.Find("#read-marks").AttrOr("data-marks", "none"); got != c.want {
			t.Errorf("%s's marks with the row time moved: %q, want %q", c.who, got, c.want)
		}
	}
}

// gatedRows draws rows with their status, and holds the next render of one
// conversation's row until released: it stops a round of time's moves
// between its read and its frame.
type gatedRows struct {
	plainViews
	mu      sync.Mutex
	hold    int64         // the conversation whose next row render waits (0: none)
	entered chan struct{} // closed when the render waits
	release chan struct{} // closed to let it go on
}

func (g *gatedRows) Row(_ context.Context, w io.Writer, row store.ListRow, _ time.Time) error {
	g.mu.Lock()
	held := row.ID == g.hold
	if held {
		g.hold = 0
	}
	g.mu.Unlock()
	if held {
		close(g.entered)
		<-g.release
	}
	_, err := fmt.Fprintf(w, `<li data-conversation-id="%d" data-status="%s"></li>`, row.ID, row.Status)
	return err
}

// A round of time's moves reads its rows in one snapshot and queues them
// later; a batch with a newer state of one of them (a conversation resolved
// meanwhile) may go out in between. The older row must not follow it: queued
// after the batch's, it put the resolved conversation back in Open on every
// page, until the next change of it. The round still sends the rows no batch
// overtook.
func TestHubNeverSendsATimeMovedRowOverANewerOne(t *testing.T) {
	g := &gatedRows{entered: make(chan struct{}), release: make(chan struct{})}
	e := startHub(t, func(o *HubOptions) {
		o.Renderer = g
		o.CountEvery = 20 * time.Millisecond
	})
	ctx := context.Background()
	olga, err := e.st.EnsureAgent(ctx, "olga", "Olga", "agent")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := e.write(t, 1, "hello")
	b, _ := e.write(t, 2, "hi")
	cursor := e.waitCursor(t)
	page := e.dial(t, 0, cursor)
	e.waitPages(t, 1)
	released := false
	release := func() {
		if !released {
			released = true
			close(g.release)
		}
	}
	defer release()

	g.mu.Lock()
	g.hold = a
	g.mu.Unlock()
	// Both sessions enter Expiring; the round that reads them stops at A's row.
	e.clk.Add(23*time.Hour + 30*time.Minute)
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no round of time's moves rendered A")
	}
	// Meanwhile Olga resolves A, and the batch goes out.
	if _, err := e.st.UpdateConversation(ctx, a, olga.ID, store.ConversationUpdate{Status: store.ConvResolved}); err != nil {
		t.Fatal(err)
	}
	doc := frameWithRow(t, page, a)
	if st := doc.Find(`#list-delta li[data-conversation-id="`+id(a)+`"]`).AttrOr("data-status", ""); st != store.ConvResolved {
		t.Fatalf("the batch's row of A says %q, want resolved", st)
	}
	release()
	// The round's frame: B, which no batch touched, and not A's older row.
	doc = frameWithRow(t, page, b)
	if st := doc.Find(`#list-delta li[data-conversation-id="`+id(a)+`"]`).AttrOr("data-status", ""); st != "" {
		t.Errorf("after the batch with A resolved, the page got A's row as time moved it, %q", st)
	}
	if marks := doc.Find("#read-marks").AttrOr("data-marks", ""); strings.Contains(marks, id(a)+":") {
		t.Errorf("the round's read marks %q still name A", marks)
	}
}

// A page that reconnects while another page of the same agent stayed open
// gets the sidebar's current counts: what was sent is kept per agent, so the
// counts that changed while it was away had gone to the other page only, and
// the reconnected page kept its stale sidebar and tab title until the next
// change.
func TestHubSendsAReconnectingPageTheCurrentCounts(t *testing.T) {
	e := startHub(t, nil) // counts every 30 s without events: after this test
	ctx := context.Background()
	olga, err := e.st.EnsureAgent(ctx, "olga", "Olga", "agent")
	if err != nil {
		t.Fatal(err)
	}
	cursor := e.waitCursor(t)
	stays := e.dialAs(t, olga.ID, 0, cursor)
	away := e.dialAs(t, olga.ID, 0, cursor)
	e.waitPages(t, 2)

	e.write(t, 1, "hello")
	seen := e.waitCursor(t)
	one := func(c map[string]int) bool { return c["waiting"] == 1 && c["unread"] == 1 }
	nextCounts(t, stays, one)
	nextCounts(t, away, one)

	// The second tab's network drops; a client writes meanwhile, and the
	// counts go to the tab that stayed.
	away.Close()
	e.waitPages(t, 1)
	e.write(t, 2, "hi")
	two := func(c map[string]int) bool { return c["waiting"] == 2 && c["unread"] == 2 }
	nextCounts(t, stays, two)

	// It reconnects from the last event it saw; nothing changes after.
	back := e.dialAs(t, olga.ID, 0, seen)
	nextCounts(t, back, two)
}

// agent ensures an agent of this name, its login the name in lower case.
func (e *hubEnv) agent(t testing.TB, name string) store.Agent {
	t.Helper()
	a, err := e.st.EnsureAgent(context.Background(), strings.ToLower(name), name, "agent")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

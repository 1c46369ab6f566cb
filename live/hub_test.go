package live

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/gorilla/websocket"

	"sessiondesk/clock"
	"sessiondesk/session"
	"sessiondesk/store"
)

// plainViews is a Renderer of bare elements that say what they are, so that
// the tests read frames without the inbox's markup.
type plainViews struct{}

func (plainViews) Row(_ context.Context, w io.Writer, row store.ListRow, _ time.Time) error {
	_, err := fmt.Fprintf(w, `<li data-conversation-id="%d" data-activity="%d" data-last-in="%d">%s</li>`,
		row.ID, row.LastActivityAt.UnixMilli(), row.LastInID, strings.Repeat("x", 200))
	return err
}

func (plainViews) ListDelta(_ context.Context, w io.Writer, rows []byte) error {
	_, err := fmt.Fprintf(w, `<ul id="list-delta">%s</ul>`, rows)
	return err
}

func (plainViews) Message(_ context.Context, w io.Writer, m store.Message, appended bool) error {
	_, err := fmt.Fprintf(w, `<div class="msg" id="msg-%d" data-appended="%v">%s</div>`, m.ID, appended, m.Body)
	return err
}

func (plainViews) State(_ context.Context, w io.Writer, cv store.Conversation, _ []session.Session, _ time.Time) error {
	_, err := fmt.Fprintf(w, `<aside class="state" data-conversation-id="%d"></aside>`, cv.ID)
	return err
}

func (plainViews) Cursor(_ context.Context, w io.Writer, id int64) error {
	_, err := fmt.Fprintf(w, `<div id="live-cursor" data-last-event-id="%d"></div>`, id)
	return err
}

func (plainViews) Reload(_ context.Context, w io.Writer) error {
	_, err := io.WriteString(w, `<div id="live-reload"></div>`)
	return err
}

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

type hubEnv struct {
	st  *store.Store
	clk *clock.Manual
	hub *Hub
	srv *httptest.Server
	// stop ends the hub's Run (a server shutting down) and waits for it;
	// the test's cleanup calls it too.
	stop func()
}

// startHub runs a hub on a real store, behind a real websocket server on a
// loopback port.
func startHub(t testing.TB, mutate func(*HubOptions)) *hubEnv {
	t.Helper()
	clk := clock.NewManual(t0)
	b := NewBroker()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "live.db"),
		store.Options{Rules: session.Defaults(), Now: clk.Now, Committed: b.Publish})
	if err != nil {
		t.Fatal(err)
	}
	opts := HubOptions{Store: st, Broker: b, Renderer: plainViews{}}
	if mutate != nil {
		mutate(&opts)
	}
	h := NewHub(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := h.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	up := websocket.Upgrader{ReadBufferSize: 512, WriteBufferPool: &sync.Pool{}}
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		viewing, _ := strconv.ParseInt(r.URL.Query().Get("conversation"), 10, 64)
		after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		agent, _ := strconv.ParseInt(r.URL.Query().Get("agent"), 10, 64)
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		_ = h.Serve(r.Context(), conn, PageOptions{Viewing: viewing, After: after, Done: wg.Done,
			Agent: agent, AgentName: r.URL.Query().Get("name")})
	}))
	stop := sync.OnceFunc(func() {
		cancel()
		<-done
	})
	t.Cleanup(func() {
		stop()
		wg.Wait()
		srv.Close()
		st.Close()
	})
	return &hubEnv{st: st, clk: clk, hub: h, srv: srv, stop: stop}
}

// write stores a client message from the conversation of phone n.
func (e *hubEnv) write(t testing.TB, n int, text string) (convID, msgID int64) {
	t.Helper()
	e.clk.Add(time.Second)
	r, err := e.st.ReceiveClientMessage(context.Background(), store.ClientMessage{
		Phone: fmt.Sprintf("+3752986%05d", n), Name: "Client", Kind: session.Text, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	return r.Message.ConversationID, r.Message.ID
}

func (e *hubEnv) lastEvent(t testing.TB) int64 {
	t.Helper()
	var id int64
	if err := e.st.Read(context.Background(), func(r *store.Reader) error {
		var err error
		id, err = r.LastEventID(context.Background())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// waitCursor waits until the hub has sent everything up to the newest event.
func (e *hubEnv) waitCursor(t testing.TB) int64 {
	t.Helper()
	last := e.lastEvent(t)
	deadline := time.Now().Add(10 * time.Second)
	for e.hub.Cursor() < last {
		if time.Now().After(deadline) {
			t.Fatalf("the hub is at %d, the store at %d", e.hub.Cursor(), last)
		}
		time.Sleep(time.Millisecond)
	}
	return last
}

func (e *hubEnv) dial(t testing.TB, viewing, after int64) *websocket.Conn {
	t.Helper()
	return e.dialAs(t, 0, viewing, after)
}

// dialAs opens a page signed in as agent (0: nobody known).
func (e *hubEnv) dialAs(t testing.TB, agent, viewing, after int64) *websocket.Conn {
	t.Helper()
	u := strings.Replace(e.srv.URL, "http://", "ws://", 1) + fmt.Sprintf("/?conversation=%d&after=%d&agent=%d", viewing, after, agent)
	conn, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// waitPages waits until n pages are registered.
func (e *hubEnv) waitPages(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.hub.Pages() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d pages registered, want %d", e.hub.Pages(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// got is what one frame carried.
type got struct {
	rows     []string // conversation ids of the list rows
	appended []string // message ids appended to the thread
	updated  []string
	states   []string
	cursor   int64
	reload   bool
	size     int
}

// readLive reads the page's next message that is not the sidebar's counts,
// which go out at their own pace (views.go), between the frames of events.
func readLive(t testing.TB, conn *websocket.Conn) []byte {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		if !bytes.HasPrefix(data, []byte(`<template id="view-counts"`)) {
			return data
		}
	}
}

func readFrame(t testing.TB, conn *websocket.Conn) got {
	t.Helper()
	data := readLive(t, conn)
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	g := got{size: len(data), reload: doc.Find("#live-reload").Length() > 0}
	doc.Find("#list-delta li").Each(func(_ int, s *goquery.Selection) {
		g.rows = append(g.rows, s.AttrOr("data-conversation-id", ""))
	})
	doc.Find(".msg").Each(func(_ int, s *goquery.Selection) {
		if s.AttrOr("data-appended", "") == "true" {
			g.appended = append(g.appended, s.AttrOr("id", ""))
		} else {
			g.updated = append(g.updated, s.AttrOr("id", ""))
		}
	})
	doc.Find(".state").Each(func(_ int, s *goquery.Selection) {
		g.states = append(g.states, s.AttrOr("data-conversation-id", ""))
	})
	if v, ok := doc.Find("#live-cursor").Attr("data-last-event-id"); ok {
		g.cursor, _ = strconv.ParseInt(v, 10, 64)
	}
	return g
}

func id(n int64) string { return strconv.FormatInt(n, 10) }

// The batches are paced: the first commit after a quiet spell goes out at
// once, and the commits that follow within FrameEvery wait for its end and go
// out together, one frame to each page, however many commits they were.
func TestHubPacesTheBatches(t *testing.T) {
	const every = 700 * time.Millisecond
	e := startHub(t, func(o *HubOptions) { o.FrameEvery = every })
	e.waitCursor(t)
	pages := []*websocket.Conn{e.dial(t, 0, e.lastEvent(t)), e.dial(t, 0, e.lastEvent(t))}
	e.waitPages(t, 2)
	before := e.hub.Stats().Batches

	sent := time.Now() // before the commit, so before the batch's own clock
	first, _ := e.write(t, 1, "first")
	for _, conn := range pages {
		if g := readFrame(t, conn); !slices.Equal(g.rows, []string{id(first)}) {
			t.Fatalf("the first commit's frame has rows %v, want [%d]", g.rows, first)
		}
	}
	var burst []string
	for n := 2; n <= 6; n++ {
		conv, _ := e.write(t, n, "burst")
		burst = append(burst, id(conv))
	}
	for _, conn := range pages {
		g := readFrame(t, conn)
		if waited := time.Since(sent); waited < every {
			t.Errorf("the burst went out %s after the first frame, before FrameEvery (%s)", waited, every)
		}
		slices.Sort(g.rows)
		if want := slices.Sorted(slices.Values(burst)); !slices.Equal(g.rows, want) {
			t.Errorf("the burst's frame has rows %v, want all five %v in one frame", g.rows, want)
		}
	}
	if n := e.hub.Stats().Batches - before; n != 2 {
		t.Errorf("%d batches for six commits, want 2 (the first, then the burst)", n)
	}
}

// Under a burst the pace stretches: after a batch of 4*burstRows rows the
// next waits four times FrameEvery, so that a hundred pages get fewer, fuller
// frames.
func TestHubStretchesThePaceUnderABurst(t *testing.T) {
	const every = 250 * time.Millisecond
	e := startHub(t, func(o *HubOptions) { o.FrameEvery = every })
	e.waitCursor(t)
	conn := e.dial(t, 0, e.lastEvent(t))
	e.waitPages(t, 1)

	first, _ := e.write(t, 1, "first")
	if g := readFrame(t, conn); !slices.Equal(g.rows, []string{id(first)}) {
		t.Fatalf("the first commit's frame has rows %v, want [%d]", g.rows, first)
	}
	// The burst is one commit, so one batch whatever the machine's speed.
	var burst []string
	committing := time.Now()
	err := e.st.Batch(context.Background(), func(b *store.Store) error {
		for n := 2; n < 2+4*burstRows; n++ {
			r, err := b.ReceiveClientMessage(context.Background(), store.ClientMessage{
				Phone: fmt.Sprintf("+3752986%05d", n), Name: "Client", Kind: session.Text, Text: "burst"})
			if err != nil {
				return err
			}
			burst = append(burst, id(r.Message.ConversationID))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	g := readFrame(t, conn)
	slices.Sort(g.rows)
	if want := slices.Sorted(slices.Values(burst)); !slices.Equal(g.rows, want) {
		t.Fatalf("the burst's frame has rows %v, want all %d in one frame", g.rows, len(want))
	}
	after, _ := e.write(t, 100, "after the burst")
	g = readFrame(t, conn)
	// The burst's batch went out after its commit began, and the next could
	// not go out before 4*every after that (unstretched: about 2*every).
	if waited := time.Since(committing); waited < 4*every {
		t.Errorf("the frame after a burst of %d rows went out %s after it, want at least %s", len(burst), waited, 4*every)
	}
	if !slices.Equal(g.rows, []string{id(after)}) {
		t.Errorf("the frame after the burst has rows %v, want [%d]", g.rows, after)
	}
}

func TestHubGapAfterABatch(t *testing.T) {
	const every = 10 * time.Millisecond
	h := NewHub(HubOptions{FrameEvery: every})
	for _, c := range []struct {
		rows int
		want time.Duration
	}{{0, every}, {1, every}, {burstRows - 1, every}, {burstRows, every}, {2 * burstRows, 2 * every},
		{3*burstRows + 1, 3 * every}, {maxStretch * burstRows, maxStretch * every}, {100 * burstRows, maxStretch * every}} {
		if got := h.gapAfter(c.rows); got != c.want {
			t.Errorf("after a batch of %d rows the next waits %s, want %s", c.rows, got, c.want)
		}
	}
	if got := NewHub(HubOptions{FrameEvery: -1}).gapAfter(100); got != 0 {
		t.Errorf("with no pacing the next batch waits %s, want 0", got)
	}
}

// Twenty pages, half of them viewing conversation A: a client message to B
// reaches all twenty as one shared frame holding B's row only; one to A adds
// the thread and the panel for A's viewers. Each row, bubble and panel is
// rendered once per batch, however many pages show it.
func TestHubSendsOnlyChangedRowsRenderedOnce(t *testing.T) {
	e := startHub(t, nil)
	a, _ := e.write(t, 1, "a")
	b, _ := e.write(t, 2, "b")
	e.write(t, 3, "c")
	cursor := e.waitCursor(t)

	olga, err := e.st.EnsureAgent(context.Background(), "olga", "Olga", "agent")
	if err != nil {
		t.Fatal(err)
	}
	ivan, err := e.st.EnsureAgent(context.Background(), "ivan", "Ivan", "agent")
	if err != nil {
		t.Fatal(err)
	}
	var viewers, others []*websocket.Conn
	for range 10 {
		viewers = append(viewers, e.dialAs(t, olga.ID, a, cursor))
		others = append(others, e.dialAs(t, ivan.ID, 0, cursor))
	}
	e.waitPages(t, 20)
	for _, c := range viewers {
		joinedAlone(t, c) // Olga's tabs show nobody else: one line each, then none
	}
	before := e.hub.Stats()

	e.write(t, 2, "to b")
	last := cursor + 1 // the message's event
	for i, c := range append(append([]*websocket.Conn{}, viewers...), others...) {
		g := readFrame(t, c)
		if strings.Join(g.rows, ",") != id(b) || len(g.appended)+len(g.updated)+len(g.states) != 0 || g.cursor != last {
			t.Fatalf("page %d got %+v, want only row %d and cursor %d", i, g, b, last)
		}
		if g.size > 1024 {
			t.Errorf("page %d: a frame of %d bytes for one row", i, g.size)
		}
	}
	s := e.hub.Stats()
	// One frame for every page, and one with the read marks in front, which
	// both agents share (neither has a mark of their own on B).
	if s.Rows-before.Rows != 1 || s.Frames-before.Frames != 2 || s.Messages != before.Messages || s.States != before.States {
		t.Errorf("one message to B: %+v then %+v, want one row rendered and 1+1 frames built", before, s)
	}

	before = s
	_, msg := e.write(t, 1, "to a")
	last++ // (its viewers then read it: a read event follows)
	for i, c := range viewers {
		g := readFrame(t, c)
		if strings.Join(g.rows, ",") != id(a) || strings.Join(g.appended, ",") != "msg-"+id(msg) ||
			strings.Join(g.states, ",") != id(a) || g.cursor != last {
			t.Fatalf("viewer %d got %+v, want A's row, message %d appended and A's panel", i, g, msg)
		}
	}
	for i, c := range others {
		if g := readFrame(t, c); strings.Join(g.rows, ",") != id(a) || len(g.appended)+len(g.states) != 0 {
			t.Fatalf("page %d got %+v, want only A's row", i, g)
		}
	}
	// Viewers read what arrives: Olga's page marks A read for her once it has
	// the frame (after the write, so it may land a moment after the frames
	// were read here). Unread is per agent: Ivan, who only has the list
	// open, still has both of A's messages unread.
	unread := func(agent int64) int {
		var n map[int64]int
		_ = e.st.Read(context.Background(), func(r *store.Reader) (err error) {
			n, err = r.UnreadCounts(context.Background(), agent, []int64{a})
			return err
		})
		return n[a]
	}
	deadline := time.Now().Add(10 * time.Second)
	for unread(olga.ID) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("A has %d unread for Olga after her pages received the message, want 0", unread(olga.ID))
		}
		time.Sleep(time.Millisecond)
	}
	if n := unread(ivan.ID); n != 2 {
		t.Errorf("A has %d unread for Ivan, who never opened it, want 2", n)
	}
	e.waitCursor(t)
	s = e.hub.Stats()
	if s.Messages-before.Messages != 1 || s.States-before.States != 1 || s.Rows-before.Rows != 1 {
		t.Errorf("one message to A: %+v then %+v, want one bubble, one row and one panel", before, s)
	}
}

// A page that reconnects after missing a few events gets them in one frame:
// the changed rows, the missed messages of its conversation once each, and
// the hub's cursor; then it follows live without a duplicate.
// The hub knows whose pages are open: an agent is online while one of their
// pages is, however many they open and in whatever order they close them.
func TestHubOnlineAgentsFollowTheirPages(t *testing.T) {
	e := startHub(t, nil)
	online := func() string {
		ids := e.hub.OnlineAgents()
		slices.Sort(ids)
		return fmt.Sprint(ids)
	}
	dial := func(agent int64) *websocket.Conn {
		u := strings.Replace(e.srv.URL, "http://", "ws://", 1) + fmt.Sprintf("/?after=0&agent=%d", agent)
		conn, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	a1, a2, b, anon := dial(7), dial(7), dial(3), dial(0)
	e.waitPages(t, 4)
	if got := online(); got != "[3 7]" {
		t.Errorf("online %s, want [3 7]", got)
	}
	a1.Close()
	e.waitPages(t, 3)
	if got := online(); got != "[3 7]" {
		t.Errorf("with one of agent 7's two pages closed: online %s, want [3 7]", got)
	}
	a2.Close()
	b.Close()
	e.waitPages(t, 1)
	if got := online(); got != "[]" {
		t.Errorf("with only a page of nobody's open: online %s, want []", got)
	}
	anon.Close()
}

func TestHubReplaysWhatAPageMissed(t *testing.T) {
	e := startHub(t, nil)
	a, _ := e.write(t, 1, "a")
	cursor := e.waitCursor(t)
	b, _ := e.write(t, 2, "b")
	_, m1 := e.write(t, 1, "missed 1")
	_, m2 := e.write(t, 1, "missed 2")
	last := e.waitCursor(t)

	c := e.dial(t, a, cursor)
	g := readFrame(t, c)
	if strings.Join(g.rows, ",") != id(a)+","+id(b) || strings.Join(g.appended, ",") != "msg-"+id(m1)+",msg-"+id(m2) ||
		g.cursor != last || strings.Join(g.states, ",") != id(a) {
		t.Fatalf("replay %+v, want rows A and B, messages %d and %d, cursor %d", g, m1, m2, last)
	}
	if e.hub.Stats().Replays != 1 {
		t.Errorf("replays = %d, want 1", e.hub.Stats().Replays)
	}
	_, m3 := e.write(t, 1, "live")
	for {
		g = readFrame(t, c)
		if len(g.appended) > 0 {
			break
		}
	}
	if strings.Join(g.appended, ",") != "msg-"+id(m3) {
		t.Errorf("after the replay: %+v, want message %d only", g, m3)
	}
}

// Pages that reconnect together from the same event (a restart, a network
// blip) share one replay: the rows are read and rendered once, and every page
// gets the same frame.
func TestHubSharesOneReplayBetweenPagesFromTheSameCursor(t *testing.T) {
	e := startHub(t, nil)
	e.write(t, 1, "a")
	cursor := e.waitCursor(t)
	e.write(t, 2, "b")
	e.write(t, 3, "c")
	e.waitCursor(t)
	before := e.hub.Stats().Rows
	var first got
	for i := range 5 {
		g := readFrame(t, e.dial(t, 0, cursor))
		if len(g.rows) != 2 {
			t.Fatalf("page %d: replay %+v, want the two changed rows", i, g)
		}
		if i == 0 {
			first = g
		} else if g.size != first.size || strings.Join(g.rows, ",") != strings.Join(first.rows, ",") {
			t.Errorf("page %d got %+v, the first %+v", i, g, first)
		}
	}
	if rows := e.hub.Stats().Rows - before; rows != 2 {
		t.Errorf("%d rows rendered for 5 pages replaying the same events, want 2 (once)", rows)
	}
}

// Further behind than the cap, or ahead of anything stored: one reload frame,
// then close 1013.
func TestHubTellsAPageTooFarBehindToReload(t *testing.T) {
	e := startHub(t, func(o *HubOptions) { o.ReplayCap = 3; o.JoinWait = 300 * time.Millisecond })
	for i := range 5 {
		e.write(t, i, "hello")
	}
	last := e.waitCursor(t)
	for _, after := range []int64{0, last + 1000} {
		c := e.dial(t, 0, after)
		if g := readFrame(t, c); !g.reload || len(g.rows) != 0 {
			t.Errorf("after=%d: %+v, want only the reload frame", after, g)
		}
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != CloseTryAgain {
			t.Errorf("after=%d: then %v, want close 1013", after, err)
		}
	}
	// Within the cap it replays.
	c := e.dial(t, 0, last-3)
	if g := readFrame(t, c); g.reload || len(g.rows) != 3 {
		t.Errorf("3 behind: %+v, want the three changed rows", g)
	}
}

// A page whose cursor lies before the oldest kept event (the rest was pruned)
// is told to reload, though it is within the replay cap: a replay of what is
// left would hide what it missed.
func TestHubReloadsAPageWhoseEventsWerePruned(t *testing.T) {
	e := startHub(t, nil)
	for i := range 4 {
		e.write(t, i, "hello")
	}
	e.clk.Add(time.Hour)
	e.write(t, 9, "after the cut")
	last := e.waitCursor(t)
	if n, err := e.st.PruneEvents(context.Background(), e.clk.Now().Add(-30*time.Minute), 0); err != nil || n != 4 {
		t.Fatalf("pruned %d, %v; want the 4 old events", n, err)
	}
	c := e.dial(t, 0, last-3)
	if g := readFrame(t, c); !g.reload || len(g.rows) != 0 {
		t.Errorf("cursor before the pruned events: %+v, want only the reload frame", g)
	}
	// Right after the cut it replays what is kept.
	c = e.dial(t, 0, last-1)
	if g := readFrame(t, c); g.reload || len(g.rows) != 1 {
		t.Errorf("cursor at the cut: %+v, want the one changed row", g)
	}
}

// A page whose queue outgrows the bound (its browser does not keep up) loses
// the queued frames and gets one reload frame, then close 1013.
func TestHubDropsAPageThatFallsBehind(t *testing.T) {
	e := startHub(t, func(o *HubOptions) { o.QueueBytes = 1000 })
	conns := make(chan *websocket.Conn, 1)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := up.Upgrade(w, r, nil); err == nil {
			conns <- c
		}
	}))
	defer srv.Close()
	client, _, err := websocket.DefaultDialer.Dial(strings.Replace(srv.URL, "http://", "ws://", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-conns
	// A page whose writer is busy (as during its replay) while frames pile up.
	p := &page{hub: e.hub, conn: server, writing: true}
	frame := func(s string) outgoing {
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return outgoing{msg: pm, size: 600}
	}
	p.enqueue(frame("<p>one</p>"))
	p.enqueue(frame("<p>two</p>"))   // over the bound: the queue is dropped
	p.enqueue(frame("<p>three</p>")) // ignored: the page is closing
	if s := e.hub.Stats(); s.Dropped != 1 {
		t.Errorf("dropped = %d, want 1", s.Dropped)
	}
	p.release()
	if g := readFrame(t, client); !g.reload {
		t.Errorf("the first frame after the drop is %+v, want the reload frame", g)
	}
	_, data, err := client.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseTryAgain {
		t.Errorf("then %q %v, want close 1013", data, err)
	}
}

// Closing the hub (server shutdown) closes every page with 1012.
func TestHubClosesPagesWithRestart(t *testing.T) {
	clk := clock.NewManual(t0)
	b := NewBroker()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "live.db"),
		store.Options{Rules: session.Defaults(), Now: clk.Now, Committed: b.Publish})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := NewHub(HubOptions{Store: st, Broker: b, Renderer: plainViews{}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err == nil {
			wg.Add(1)
			_ = h.Serve(r.Context(), conn, PageOptions{Done: wg.Done})
		}
	}))
	defer srv.Close()
	c, _, err := websocket.DefaultDialer.Dial(strings.Replace(srv.URL, "http://", "ws://", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for h.Pages() != 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wg.Wait() // every page has ended
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseRestart {
		t.Errorf("socket ended with %v, want 1012", err)
	}
	if h.Pages() != 0 {
		t.Errorf("%d pages left", h.Pages())
	}
}

// A page that has seen events the hub has not sent yet waits in Serve for it
// to catch up (JoinWait). When the server shuts down meanwhile, the page is
// closed with 1012 at once, as the pages already in are: waiting out JoinWait
// and getting the reload frame sent the browser reloading into a server that
// was going down.
func TestHubClosesAPageWaitingToJoinWithRestart(t *testing.T) {
	const joinWait = 15 * time.Second // well past the read deadline below
	e := startHub(t, func(o *HubOptions) { o.JoinWait = joinWait })
	e.write(t, 1, "hello")
	last := e.waitCursor(t)
	// Serve wakes the hub (Broker.Publish) each time it starts waiting: with
	// no commit meanwhile, a wake-up says the page waits.
	sub := e.hub.opts.Broker.Subscribe()
	defer sub.Close()
	select {
	case <-sub.C:
	default:
	}
	c := e.dial(t, 0, last+5) // events the hub has not sent (a page ahead of it)
	select {
	case <-sub.C:
	case <-time.After(10 * time.Second):
		t.Fatal("the page never waited for the hub")
	}
	if n := e.hub.Pages(); n != 0 {
		t.Fatalf("%d pages registered, want the page still waiting", n)
	}
	e.stop()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, err := func() ([]byte, error) { _, data, err := c.ReadMessage(); return data, err }()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseRestart {
		t.Errorf("the waiting page got %q, %v; want close 1012 and no reload", data, err)
	}
}

// Under sustained traffic (every paced read finds new events, so the hub
// never goes idle) the hub still does its periodic work between batches:
// pages get their pings and outlive PongWait, typing shows and expires.
// Before, all of that waited for a quiet moment: no ping went out, and every
// page hit its read deadline and dropped at once.
func TestHubKeepsPingingUnderSustainedTraffic(t *testing.T) {
	const pongWait = 3 * time.Second // pings at most 2.7 s apart (tick 150 ms)
	e := startHub(t, func(o *HubOptions) {
		o.PongWait = pongWait
		o.TypingTTL = 300 * time.Millisecond
	})
	x, _ := e.write(t, 0, "x")
	cursor := e.waitCursor(t)
	a := e.dialAgent(t, x, cursor, 1, "Anna")
	joinedAlone(t, a)
	b := e.joinSecond(t, a, x, cursor, 2, "Boris")

	// A sustained stream of client messages to other conversations (a
	// campaign's replies), as fast as the store takes them.
	ctx, stopTraffic := context.WithCancel(context.Background())
	var traffic sync.WaitGroup
	traffic.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			_, _ = e.st.ReceiveClientMessage(ctx, store.ClientMessage{
				Phone: fmt.Sprintf("+3752986%05d", 1+i%300), Name: "Client", Kind: session.Text, Text: "burst"})
		}
	})
	defer func() { stopTraffic(); traffic.Wait() }()

	// Both pages read everything, answer pings and count them; A reports
	// its presence lines. The hub's pings are the only thing that moves a
	// page's read deadline: without them the server drops it at PongWait.
	type pageState struct {
		pings atomic.Int32
		ended chan error
	}
	lines := make(chan string, 64)
	follow := func(conn *websocket.Conn, lines chan<- string) *pageState {
		s := &pageState{ended: make(chan error, 1)}
		conn.SetPingHandler(func(msg string) error {
			s.pings.Add(1)
			return conn.WriteControl(websocket.PongMessage, []byte(msg), time.Now().Add(time.Second))
		})
		go func() {
			for {
				_ = conn.SetReadDeadline(time.Now().Add(2 * pongWait))
				_, data, err := conn.ReadMessage()
				if err != nil {
					s.ended <- err
					return
				}
				if lines == nil || !bytes.Contains(data, []byte(`class="presence"`)) {
					continue
				}
				doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(data))
				line := doc.Find(".presence span").Text()
				if doc.Find(`.presence span[data-typing="true"]`).Length() > 0 {
					line += ":typing"
				}
				lines <- line
			}
		}()
		return s
	}
	pa, pb := follow(a, lines), follow(b, nil)
	joined := time.Now()
	deadline := joined.Add(3 * pongWait)

	// Once traffic flows, Boris types once: A sees it, then sees it end.
	for batches := e.hub.Stats().Batches; e.hub.Stats().Batches < batches+10; {
		if time.Now().After(deadline) {
			t.Fatal("no traffic")
		}
		time.Sleep(time.Millisecond)
	}
	if err := b.WriteMessage(websocket.TextMessage, []byte(`{"typing":true}`)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Boris:typing", "Boris"} {
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("A sees %q, want %q", got, want)
			}
		case err := <-pa.ended:
			t.Fatalf("A's page ended %.1fs after joining: %v", time.Since(joined).Seconds(), err)
		case <-time.After(time.Until(deadline)):
			t.Fatalf("A never saw %q under traffic (typing shown, then expired)", want)
		}
	}

	// Both pages outlive PongWait under traffic, by their pings.
	for time.Since(joined) < pongWait+pongWait/4 || pa.pings.Load() == 0 || pb.pings.Load() == 0 {
		select {
		case err := <-pa.ended:
			t.Fatalf("A's page ended %.1fs after joining, %d pings received (hub: %d batches): %v",
				time.Since(joined).Seconds(), pa.pings.Load(), e.hub.Stats().Batches, err)
		case err := <-pb.ended:
			t.Fatalf("B's page ended %.1fs after joining, %d pings received (hub: %d batches): %v",
				time.Since(joined).Seconds(), pb.pings.Load(), e.hub.Stats().Batches, err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("pings after %v of traffic: A %d, B %d; want one each at least",
				time.Since(joined), pa.pings.Load(), pb.pings.Load())
		}
	}
	if n := e.hub.Pages(); n != 2 {
		t.Errorf("%d pages connected after %v of traffic, want both", n, time.Since(joined))
	}
}

// BenchmarkHubFanOut100Pages: one client message, rendered once and sent to
// 100 connected pages (20 of them viewing its conversation), until every page
// has read its frame.
func BenchmarkHubFanOut100Pages(b *testing.B) {
	e := startHub(b, nil)
	var convs []int64
	for i := range 50 {
		c, _ := e.write(b, i, "hello")
		convs = append(convs, c)
	}
	cursor := e.waitCursor(b)
	var pages []*websocket.Conn
	for i := range 100 {
		var viewing int64
		if i < 20 {
			viewing = convs[0]
		}
		pages = append(pages, e.dial(b, viewing, cursor))
	}
	e.waitPages(b, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		e.write(b, 0, "again "+strconv.Itoa(i))
		last := e.lastEvent(b)
		var wg sync.WaitGroup
		for _, c := range pages {
			wg.Go(func() {
				for {
					_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
					_, data, err := c.ReadMessage()
					if err != nil {
						b.Error(err)
						return
					}
					if bytes.Contains(data, []byte(`data-last-event-id="`+id(last)+`"`)) {
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

// BenchmarkIdleSocketMemory opens 1,000 idle pages and reports the heap and
// stack they hold, per socket. The clients are bare TCP connections that did
// the handshake by hand, so almost all of it is the server's side.
func BenchmarkIdleSocketMemory(b *testing.B) {
	e := startHub(b, nil)
	cursor := e.waitCursor(b)
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	const n = 1000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		conns := make([]net.Conn, 0, n)
		for range n {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(c, "GET /?after=%d HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", cursor, addr)
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
				b.Fatalf("handshake: %v %v", res, err)
			}
			conns = append(conns, c)
		}
		e.waitPages(b, n)
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := (after.HeapInuse + after.StackInuse) - (before.HeapInuse + before.StackInuse)
		b.ReportMetric(float64(held)/n, "B/socket")
		for _, c := range conns {
			c.Close()
		}
		e.waitPages(b, 0)
	}
}

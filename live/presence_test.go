package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/gorilla/websocket"
)

// Presence draws the other agents as "name" or "name:typing", in order.
func (plainViews) Presence(_ context.Context, w io.Writer, conv int64, others []Presence) error {
	fmt.Fprintf(w, `<div id="presence-%d" class="presence">`, conv)
	for _, o := range others {
		fmt.Fprintf(w, `<span data-agent="%d" data-typing="%v">%s</span>`, o.Agent, o.Typing, o.Name)
	}
	_, err := io.WriteString(w, `</div>`)
	return err
}

// dialAgent opens a page of agent (id, name) viewing conversation viewing.
func (e *hubEnv) dialAgent(t testing.TB, viewing, after, agent int64, name string) *websocket.Conn {
	t.Helper()
	u := strings.Replace(e.srv.URL, "http://", "ws://", 1) +
		fmt.Sprintf("/?conversation=%d&after=%d&agent=%d&name=%s", viewing, after, agent, url.QueryEscape(name))
	conn, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// presenceFrame is one frame as the presence test reads it: the presence
// line ("Anna, Boris:typing"; ok false when the frame had none) and whether
// it held list rows.
type presenceFrame struct {
	line string
	ok   bool
	rows int
}

func readPresence(t testing.TB, conn *websocket.Conn) presenceFrame {
	t.Helper()
	data := readLive(t, conn)
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var f presenceFrame
	f.rows = doc.Find("#list-delta li").Length()
	if sel := doc.Find(".presence"); sel.Length() > 0 {
		f.ok = true
		var names []string
		sel.Find("span").Each(func(_ int, s *goquery.Selection) {
			n := s.Text()
			if s.AttrOr("data-typing", "") == "true" {
				n += ":typing"
			}
			names = append(names, n)
		})
		f.line = strings.Join(names, ", ")
	}
	return f
}

// nextPresence reads frames until one carries a presence line.
func nextPresence(t testing.TB, conn *websocket.Conn) string {
	t.Helper()
	for {
		if f := readPresence(t, conn); f.ok {
			return f.line
		}
	}
}

// joinedAlone reads the line a page gets when it joins a conversation nobody
// else views: the empty one (TestPresenceReconnectedPageGetsTheCurrentLine).
// Reading it also tells that the hub has taken the join.
func joinedAlone(t testing.TB, conn *websocket.Conn) {
	t.Helper()
	if got := nextPresence(t, conn); got != "" {
		t.Fatalf("a page alone on its conversation sees %q, want nobody", got)
	}
}

// joinSecond opens the page of agent (id, name) on conversation x beside
// first's, and waits until first's line shows it.
func (e *hubEnv) joinSecond(t testing.TB, first *websocket.Conn, x, cursor, id int64, name string) *websocket.Conn {
	t.Helper()
	c := e.dialAgent(t, x, cursor, id, name)
	if got := nextPresence(t, first); got != name {
		t.Fatalf("the first page sees %q, want %s", got, name)
	}
	return c
}

// startTyping makes from's page type and waits until to's line shows name typing.
func startTyping(t testing.TB, from, to *websocket.Conn, name string) {
	t.Helper()
	if err := from.WriteMessage(websocket.TextMessage, []byte(`{"typing":true}`)); err != nil {
		t.Fatal(err)
	}
	if got := nextPresence(t, to); got != name+":typing" {
		t.Fatalf("the other page sees %q, want %s typing", got, name)
	}
}

// Two agents on conversation X see each other viewing and typing, and the
// line empties when one leaves; a page viewing Y gets nothing of it (only its
// own line when it joined; its next frame is the next event's). The agent's
// own name is never in their line.
func TestPresenceReachesOnlyTheConversationsViewers(t *testing.T) {
	e := startHub(t, nil)
	x, _ := e.write(t, 1, "x")
	y, _ := e.write(t, 2, "y")
	cursor := e.waitCursor(t)

	b := e.dialAgent(t, x, cursor, 2, "Boris")
	joinedAlone(t, b)
	other := e.dialAgent(t, y, cursor, 3, "Carla")
	joinedAlone(t, other)
	a := e.dialAgent(t, x, cursor, 1, "Anna")

	if got := nextPresence(t, b); got != "Anna" {
		t.Errorf("B sees %q, want Anna viewing", got)
	}
	if got := nextPresence(t, a); got != "Boris" {
		t.Errorf("A sees %q, want Boris viewing", got)
	}

	if err := a.WriteMessage(websocket.TextMessage, []byte(`{"typing":true}`)); err != nil {
		t.Fatal(err)
	}
	if got := nextPresence(t, b); got != "Anna:typing" {
		t.Errorf("B sees %q, want Anna typing", got)
	}
	if err := a.WriteMessage(websocket.TextMessage, []byte(`{"typing":false}`)); err != nil {
		t.Fatal(err)
	}
	if got := nextPresence(t, b); got != "Anna" {
		t.Errorf("B sees %q, want Anna viewing, no longer typing", got)
	}
	a.Close()
	if got := nextPresence(t, b); got != "" {
		t.Errorf("after A's socket closed B sees %q, want nobody", got)
	}

	// Y's page: after its own join line, its next frame is the next
	// event's, with no presence in it: nothing of X's reached it.
	e.write(t, 2, "to y")
	if f := readPresence(t, other); f.ok || f.rows != 1 {
		t.Errorf("the page viewing Y got %+v after its join line, want the event's row and no presence line", f)
	}
	// Frames: "" (joining alone), "Anna", "Anna:typing", "Anna", "" to B;
	// "" to C; "Boris" to A.
	if n := e.hub.Stats().Presence; n != 7 {
		t.Errorf("%d presence lines sent, want 7", n)
	}
}

// Two tabs of one agent are one presence; the agent never sees themself.
func TestPresenceOneAgentManyTabs(t *testing.T) {
	e := startHub(t, nil)
	x, _ := e.write(t, 1, "x")
	cursor := e.waitCursor(t)
	b := e.dialAgent(t, x, cursor, 2, "Boris")
	joinedAlone(t, b)
	a1 := e.joinSecond(t, b, x, cursor, 1, "Anna")
	if got := nextPresence(t, a1); got != "Boris" {
		t.Fatalf("A sees %q, want Boris", got)
	}
	a2 := e.dialAgent(t, x, cursor, 1, "Anna")
	if got := nextPresence(t, a2); got != "Boris" {
		t.Fatalf("A's second tab sees %q, want Boris", got)
	}
	// The second tab types: B sees Anna typing once (not two Annas).
	if err := a2.WriteMessage(websocket.TextMessage, []byte(`{"typing":true}`)); err != nil {
		t.Fatal(err)
	}
	if got := nextPresence(t, b); got != "Anna:typing" {
		t.Errorf("B sees %q, want one Anna, typing", got)
	}
	// Closing one of Anna's tabs leaves her viewing (the other tab), not typing.
	a2.Close()
	if got := nextPresence(t, b); got != "Anna" {
		t.Errorf("B sees %q after Anna's typing tab closed, want Anna viewing", got)
	}
}

// A page that stops renewing "typing" stops showing as typing.
func TestPresenceTypingExpires(t *testing.T) {
	e := startHub(t, func(o *HubOptions) { o.TypingTTL = time.Millisecond })
	x, _ := e.write(t, 1, "x")
	cursor := e.waitCursor(t)
	b := e.dialAgent(t, x, cursor, 2, "Boris")
	joinedAlone(t, b)
	a := e.joinSecond(t, b, x, cursor, 1, "Anna")
	startTyping(t, a, b, "Anna")
	// No renewal: the next tick of the hub ends it.
	if got := nextPresence(t, b); got != "Anna" {
		t.Errorf("B sees %q, want Anna no longer typing", got)
	}
}

// What a browser sends that is not {"typing":bool} is ignored: binary, bad
// JSON, unknown fields, a page not viewing a conversation; a flood is cut to
// the rate; a frame over the read limit closes that socket only.
func TestPresenceHostileInput(t *testing.T) {
	e := startHub(t, nil)
	x, _ := e.write(t, 1, "x")
	cursor := e.waitCursor(t)
	b := e.dialAgent(t, x, cursor, 2, "Boris")
	joinedAlone(t, b)
	m := e.dialAgent(t, x, cursor, 6, "Mallory")
	if got := nextPresence(t, b); got != "Mallory" {
		t.Fatalf("B sees %q, want Mallory", got)
	}
	nowhere := e.dialAgent(t, 0, cursor, 7, "Nobody")
	e.waitPages(t, 3)
	before := e.hub.Stats()
	for _, in := range []struct {
		kind int
		data string
	}{
		{websocket.BinaryMessage, `{"typing":true}`},
		{websocket.TextMessage, `{"typing":tru`},
		{websocket.TextMessage, `{"typing":"yes"}`},
		{websocket.TextMessage, `{"typing":true,"as":"admin"}`},
		{websocket.TextMessage, `{"typing":true}{"typing":true}`},
		{websocket.TextMessage, `{"typing":true,` + strings.Repeat(" ", 100) + `}`},
		{websocket.TextMessage, ``},
	} {
		if err := m.WriteMessage(in.kind, []byte(in.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nowhere.WriteMessage(websocket.TextMessage, []byte(`{"typing":true}`)); err != nil {
		t.Fatal(err)
	}
	// A flood of typing on/off.
	const flood = 200
	for i := range flood {
		if err := m.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"typing":%v}`, i%2 == 0))); err != nil {
			t.Fatal(err)
		}
	}
	// Then a frame over the read limit: Mallory's socket ends, and with it her presence.
	if err := m.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), readLimit+1)); err != nil {
		t.Fatal(err)
	}
	_ = m.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := m.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
				t.Errorf("Mallory's socket ended with %v, want close 1009", err)
			}
			break
		}
	}
	lines := 0
	for {
		lines++
		if got := nextPresence(t, b); got == "" {
			break
		}
	}
	ignored := e.hub.Stats().Ignored - before.Ignored
	accepted := flood - (ignored - 8) // the 7 hostile frames and Nobody's are ignored
	if ignored < 8+flood/2 {
		t.Errorf("%d messages ignored of %d, want the 8 bad ones and most of the flood", ignored, flood+8)
	}
	if lines > int(accepted)+1 {
		t.Errorf("B got %d presence lines from %d accepted typing messages", lines, accepted)
	}
	// B and Nobody are still connected and get the next event.
	e.write(t, 1, "still here")
	for _, c := range []*websocket.Conn{b, nowhere} {
		for {
			if f := readPresence(t, c); f.rows == 1 {
				break
			}
		}
	}
	if e.hub.Pages() != 2 {
		t.Errorf("%d pages connected, want B and Nobody", e.hub.Pages())
	}
}

// SendToAgent reaches every page of that agent and no other.
func TestSendToAgent(t *testing.T) {
	e := startHub(t, nil)
	x, _ := e.write(t, 1, "x")
	cursor := e.waitCursor(t)
	a1 := e.dialAgent(t, x, cursor, 1, "Anna")
	joinedAlone(t, a1) // before the notice, which the test reads as a line too
	a2 := e.dialAgent(t, 0, cursor, 1, "Anna")
	b := e.dialAgent(t, 0, cursor, 2, "Boris")
	e.waitPages(t, 3)
	n, err := e.hub.SendToAgent(1, []byte(`<div id="live-notify" class="presence"><span>ping</span></div>`))
	if err != nil || n != 2 {
		t.Fatalf("sent to %d pages (%v), want Anna's 2", n, err)
	}
	for _, c := range []*websocket.Conn{a1, a2} {
		if got := nextPresence(t, c); got != "ping" {
			t.Errorf("Anna's page got %q, want the notice", got)
		}
	}
	e.write(t, 1, "next")
	if f := readPresence(t, b); f.ok || f.rows != 1 {
		t.Errorf("Boris's page got %+v first, want the event's row only", f)
	}
}

// BenchmarkPresenceTyping: 100 pages connected, 20 of them viewing one
// conversation (10 agents, two tabs each); one agent starts and stops typing,
// until another agent's page has read both lines. The 80 other pages are
// never touched.
func BenchmarkPresenceTyping(b *testing.B) {
	e := startHub(b, nil)
	x, _ := e.write(b, 1, "x")
	y, _ := e.write(b, 2, "y")
	cursor := e.waitCursor(b)
	var viewers []*websocket.Conn
	for i := range 20 {
		agent := int64(i/2 + 1)
		viewers = append(viewers, e.dialAgent(b, x, cursor, agent, fmt.Sprintf("Agent %02d", agent)))
	}
	for i := range 80 {
		e.dialAgent(b, y, cursor, int64(100+i), "Other")
	}
	e.waitPages(b, 100)
	typist, watcher := viewers[0], viewers[2]
	// Drain the joins: the watcher's line settles on all nine others.
	for {
		if strings.Count(nextPresence(b, watcher), "Agent") == 9 {
			break
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, on := range []bool{true, false} {
			if err := typist.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"typing":%v}`, on))); err != nil {
				b.Fatal(err)
			}
			for {
				if strings.Contains(nextPresence(b, watcher), "typing") == on {
					break
				}
			}
		}
		// The rate limit would drop what a browser never sends this fast.
		b.StopTimer()
		time.Sleep(2 * inputEvery)
		b.StartTimer()
	}
}

// A page that reconnects after a network blip (not a reload) keeps the DOM of
// its old socket: here "Boris is typing", though Boris left while it was
// away. It gets its conversation's current line on joining, the empty one
// included; counting a new page as showing nobody left it asking "Boris is
// typing here: send anyway?" until presence changed again.
func TestPresenceReconnectedPageGetsTheCurrentLine(t *testing.T) {
	e := startHub(t, nil)
	x, _ := e.write(t, 1, "x")
	cursor := e.waitCursor(t)

	a := e.dialAgent(t, x, cursor, 1, "Anna")
	joinedAlone(t, a)
	b := e.joinSecond(t, a, x, cursor, 2, "Boris")
	startTyping(t, b, a, "Boris")
	// A's network drops; meanwhile Boris leaves.
	a.Close()
	e.waitPages(t, 1)
	b.Close()
	e.waitPages(t, 0)
	// A's page reconnects from its cursor, its DOM still showing Boris typing.
	a2 := e.dialAgent(t, x, cursor, 1, "Anna")
	if got := nextPresence(t, a2); got != "" {
		t.Errorf("the reconnected page got %q, want the empty line (Boris left)", got)
	}
	// And one that comes back to someone gets them, as before.
	b2 := e.dialAgent(t, x, cursor, 2, "Boris")
	if got := nextPresence(t, b2); got != "Anna" {
		t.Errorf("Boris's page back sees %q, want Anna", got)
	}
}

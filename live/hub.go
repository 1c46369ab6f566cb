package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"sessiondesk/session"
	"sessiondesk/store"
)

// Renderer draws the fragments frames are made of; the handlers implement it
// with the views. The hub calls it once per changed thing per batch, whatever
// the number of pages, and shares the bytes.
type Renderer interface {
	// Row is one conversation's list row, free of per-page state.
	Row(ctx context.Context, w io.Writer, row store.ListRow, now time.Time) error
	// ListDelta wraps the changed rows (already rendered) for the page's script.
	ListDelta(ctx context.Context, w io.Writer, rows []byte) error
	// Message is a thread bubble: appended at the end, or replacing its old self.
	Message(ctx context.Context, w io.Writer, m store.Message, appended bool) error
	// State is the session panel and the composer's actions of a conversation,
	// whose sessions (latest first, at most HubOptions.History) are given.
	State(ctx context.Context, w io.Writer, cv store.Conversation, history []session.Session, now time.Time) error
	// Cursor ends every frame with the id of the last event it covers.
	Cursor(ctx context.Context, w io.Writer, eventID int64) error
	// Reload asks the page to reload: it is too far behind to catch up.
	Reload(ctx context.Context, w io.Writer) error
}

// HubOptions configure a Hub; zero values take the defaults.
type HubOptions struct {
	Store    *store.Store
	Broker   *Broker // wakes the hub after every commit that appended events (nil: only its tick, tickEvery)
	Renderer Renderer
	Log      *slog.Logger
	// Batch is how many events one read takes at most (default 500).
	Batch int
	// ReplayCap is how far behind (in events) a connecting page may be and
	// still be caught up; further back it is told to reload (default 1,000).
	ReplayCap int64
	// QueueBytes bounds what a page may have waiting to be written; a browser
	// that falls further behind is told to reload and dropped (default 1 MB).
	QueueBytes int
	// WriteWait is how long one write may take (default 10 s); PongWait how
	// long a browser may stay silent (default 60 s); pings go out at most 9/10
	// of it apart, checked on the hub's tick (tickEvery), under traffic too.
	WriteWait, PongWait time.Duration
	// JoinWait is how long a page that has seen events the hub has not sent
	// yet waits for it to catch up (default 5 s).
	JoinWait time.Duration
	// History is how many sessions of a touched conversation the session
	// panel lists, the current one included (default 51).
	History int
	// TypingTTL is how long an agent shows as typing without a renewal
	// (default DefaultTypingTTL); expiry is checked on the hub's tick
	// (tickEvery).
	TypingTTL time.Duration
	// Notes draws internal notes and the mentions badge (notes.go); nil
	// leaves notes out of the frames.
	Notes NoteRenderer
	// ExpiringWithin is the Expiring view's window (0: the store's default);
	// CountEvery how often the sidebar's counts go out without events
	// (default DefaultCountEvery), since time alone moves conversations
	// between the session views.
	ExpiringWithin, CountEvery time.Duration
	// FrameEvery is the least time between two batches going out (default
	// DefaultFrameEvery; negative: none). Each batch costs one write to
	// every page's socket, which is what a hundred pages cost the server
	// under a burst of commits; pacing them makes such a burst fewer,
	// fuller frames. A commit after a quiet spell still goes out at once.
	FrameEvery time.Duration
}

// DefaultFrameEvery paces the batches: at most a hundred a second, so that a
// client's message waits at most this long for a batch before it.
const DefaultFrameEvery = 10 * time.Millisecond

// A batch that changed burstRows rows or more is part of a burst, and the
// next waits longer: FrameEvery once more for every burstRows rows, up to
// maxStretch times FrameEvery. A frame goes to every page whatever its size,
// so under a burst fewer, fuller frames cost the server (and the browsers)
// fewer writes for the same rows: at 2,000 client messages a second and a
// hundred pages, batches every 10 ms were 6,600 socket writes a second. A
// few rows at a time (a team's normal traffic, 200 messages a second
// included) keep the FrameEvery pace.
const (
	burstRows  = 8
	maxStretch = 5
)

// Close codes after which the htmx ws extension reconnects.
const (
	CloseRestart  = 1012 // the server is shutting down
	CloseTryAgain = 1013 // come back (sign-in expired, or too slow to keep up)
)

// Hub is the fan-out of the inbox pages. One goroutine, woken after each
// commit, reads the new events once per batch, loads the rows they touched
// once, renders each changed list row, bubble and session panel once, and
// hands every page a frame built from those shared bytes: the list's changed
// rows always, the thread's parts only to pages viewing that conversation.
// Frames with the same bytes are one websocket.PreparedMessage.
type Hub struct {
	opts HubOptions

	mu     sync.Mutex
	cursor int64 // the last event distributed to the pages
	pages  map[*page]struct{}
	agents map[int64]int // agent id -> pages open (PageOptions.Agent)
	caught chan struct{} // closed (and replaced) after every distributed batch
	closed bool
	joins  uint64 // pages registered so far (page.joined), for sendCounts
	// moving is, while a round of moveByTime reads and renders, which rows
	// the batches distributed meanwhile carried (conversation -> the batch's
	// last event); nil between rounds, when distribute notes nothing.
	moving map[int64]int64

	ready     chan struct{} // closed once the cursor is known
	readyOnce sync.Once

	// replays keeps the replay frames built for the hub's current cursor:
	// pages that reconnect together from the same event (a server restart, a
	// network blip, a proxy that recycles connections) share one read and
	// one render instead of each paying for its own.
	replayMu sync.Mutex
	replays  map[replayKey]replayFrame
	// presence carries the pages' presence changes to the hub goroutine,
	// which alone owns pres; stopped is closed when Run returns.
	presence chan presenceMsg
	pres     presenceState
	stopped  chan struct{}
	// counts is what runViews last sent of the sidebar's counts; viewsDirty
	// tells it that a batch went out since.
	counts     countState
	viewsDirty atomic.Bool
	// sent is when the last batch went out, and gap how long the next waits
	// after it (gapAfter); only the hub goroutine uses them.
	sent time.Time
	gap  time.Duration

	stats hubStats
}

// Stats count what the hub did, for health reports and tests.
type Stats struct {
	Batches  int64 // event batches distributed
	Rows     int64 // list rows rendered
	Messages int64 // thread bubbles rendered
	States   int64 // session panels rendered
	Frames   int64 // distinct frames built for the live pages
	Replays  int64 // pages caught up on connect
	Reloads  int64 // pages told to reload
	Dropped  int64 // pages dropped for falling behind
	Presence int64 // presence lines sent to pages
	Ignored  int64 // messages from browsers ignored (not ours, or over the rate)
	Notes    int64 // note bubbles rendered
}

type hubStats struct {
	batches, rows, messages, states, frames, replays, reloads, dropped atomic.Int64
	presence, ignored, notes                                           atomic.Int64
}

// NewHub returns a hub; Run starts it.
func NewHub(opts HubOptions) *Hub {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Broker == nil {
		// Nobody wakes it: it still catches up on its tick (tickEvery).
		opts.Broker = NewBroker()
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.ReplayCap <= 0 {
		opts.ReplayCap = 1000
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = 1 << 20
	}
	if opts.WriteWait <= 0 {
		opts.WriteWait = 10 * time.Second
	}
	if opts.PongWait <= 0 {
		opts.PongWait = 60 * time.Second
	}
	if opts.JoinWait <= 0 {
		opts.JoinWait = 5 * time.Second
	}
	if opts.History <= 0 {
		opts.History = 51
	}
	if opts.TypingTTL <= 0 {
		opts.TypingTTL = DefaultTypingTTL
	}
	if opts.FrameEvery == 0 {
		opts.FrameEvery = DefaultFrameEvery
	}
	return &Hub{opts: opts, pages: make(map[*page]struct{}), agents: make(map[int64]int), caught: make(chan struct{}), ready: make(chan struct{}),
		presence: make(chan presenceMsg, 256), pres: newPresenceState(), stopped: make(chan struct{})}
}

// Stats returns the counters so far.
func (h *Hub) Stats() Stats {
	s := &h.stats
	return Stats{Batches: s.batches.Load(), Rows: s.rows.Load(), Messages: s.messages.Load(), States: s.states.Load(),
		Frames: s.frames.Load(), Replays: s.replays.Load(), Reloads: s.reloads.Load(), Dropped: s.dropped.Load(),
		Presence: s.presence.Load(), Ignored: s.ignored.Load(), Notes: s.notes.Load()}
}

// Pages returns how many pages are connected.
func (h *Hub) Pages() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pages)
}

// OnlineAgents returns the ids of the agents with at least one page
// connected, in no particular order: who is online, for the round-robin
// assignment.
func (h *Hub) OnlineAgents() []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]int64, 0, len(h.agents))
	for id := range h.agents {
		out = append(out, id)
	}
	return out
}

// Cursor returns the id of the last event sent to the live pages.
func (h *Hub) Cursor() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cursor
}

// Run follows the events until ctx ends, then closes every page with 1012 so
// that it reconnects once the server is back.
func (h *Hub) Run(ctx context.Context) error {
	// Subscribe before reading the cursor, so no commit in between is missed.
	sub := h.opts.Broker.Subscribe()
	defer sub.Close()
	defer h.closeAll(CloseRestart, "server restarting")
	defer close(h.stopped) // first: pages leaving stop waiting for the hub
	err := h.opts.Store.Read(ctx, func(r *store.Reader) error {
		last, err := r.LastEventID(ctx)
		h.mu.Lock()
		h.cursor = last
		h.mu.Unlock()
		// Time's moves count from here: the pages are drawn from now on.
		h.counts.moved = r.Now()
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: nothing to report
		}
		return fmt.Errorf("live hub: %w", err)
	}
	h.readyOnce.Do(func() { close(h.ready) })
	var views sync.WaitGroup
	views.Go(func() { h.runViews(ctx) })
	defer views.Wait()
	tick := time.NewTicker(h.tickEvery())
	defer tick.Stop()
	for {
		if err := h.catchUp(ctx, tick.C); err != nil && ctx.Err() == nil {
			h.opts.Log.Warn("live hub: catch up", "err", err)
		}
		if !h.idle(ctx, sub.C, tick.C) {
			return nil
		}
	}
}

// tickEvery is how often the hub does its periodic work (ticked): a second,
// or a twentieth of PongWait when that is shorter, so that a short PongWait
// still gets its pings in time (ping) without the tick costing more under the
// default one. A millisecond at least: a ticker needs a positive period.
func (h *Hub) tickEvery() time.Duration {
	return max(min(time.Second, h.opts.PongWait/20), time.Millisecond)
}

// pace waits until the gap has passed since the last batch went out, so
// that the commits of a burst reach the pages together; false once ctx ends.
// It comes before every read of new events, including the one that follows a
// batch at once: a commit made while a batch went out waits for the next.
//
// Meanwhile it does what idle does (the tick's work, presence changes), and
// looks for it without waiting when no wait is due: under sustained traffic
// every paced read finds events, catchUp does not return to idle for as long
// as it lasts, and without this no ping would go out (every page would hit
// its read deadline and drop at once), typing would never expire and the
// presence channel would fill up, blocking Serve and the pages leaving. It
// costs a select per batch, on the hub's own goroutine.
func (h *Hub) pace(ctx context.Context, tick <-chan time.Time) bool {
	wait := time.Until(h.sent.Add(h.gap))
	if wait <= 0 {
		select {
		case <-ctx.Done():
			return false
		case now := <-tick:
			h.ticked(ctx, now)
		case m := <-h.presence:
			h.presenceChanged(ctx, m)
		default:
		}
		return true
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		case now := <-tick:
			h.ticked(ctx, now)
		case m := <-h.presence:
			h.presenceChanged(ctx, m)
		}
	}
}

// ticked is the hub's periodic work: the pings due, and the typing that
// expired.
func (h *Hub) ticked(ctx context.Context, now time.Time) {
	h.ping(now)
	h.expireTyping(ctx, now)
}

// gapAfter is how long the next batch waits after one that changed this many
// list rows: FrameEvery, stretched under a burst (burstRows).
func (h *Hub) gapAfter(rows int) time.Duration {
	if h.opts.FrameEvery <= 0 {
		return 0
	}
	return h.opts.FrameEvery * time.Duration(min(max(rows/burstRows, 1), maxStretch))
}

// idle handles presence changes, which need no read of the store, until new
// events or the tick call for a catch-up; false once ctx ends.
func (h *Hub) idle(ctx context.Context, events <-chan struct{}, tick <-chan time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-events:
			return true
		case now := <-tick:
			h.ticked(ctx, now)
			return true
		case m := <-h.presence:
			h.presenceChanged(ctx, m)
		}
	}
}

// catchUp distributes every batch of events after the hub's cursor, paced;
// between batches pace does the tick's work and the presence changes.
func (h *Hub) catchUp(ctx context.Context, tick <-chan time.Time) error {
	for {
		if !h.pace(ctx, tick) {
			return nil
		}
		b, err := h.readBatch(ctx, h.Cursor(), 0, h.opts.Batch)
		if err != nil || b == nil {
			return err
		}
		h.distribute(ctx, b)
	}
}

// distribute hands every page its frame of the batch and moves the cursor.
// Every frame is built before any is queued, so a failed render leaves no
// page with half a batch: all of them are told to reload instead.
func (h *Hub) distribute(ctx context.Context, b *batch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var err error
	for p := range h.pages {
		if _, err = h.pageFrame(ctx, b, p); err != nil {
			break
		}
	}
	for p := range h.pages {
		if err != nil {
			p.enqueue(outgoing{reload: true})
			continue
		}
		f, _ := h.pageFrame(ctx, b, p) // built above
		p.enqueue(outgoing{msg: f.msg, size: len(f.data), after: f.afterFor(p)})
	}
	if err != nil {
		h.opts.Log.Error("live hub: render; the pages reload", "events_to", b.last, "err", err)
	}
	if h.moving != nil { // a round of time's moves runs: its rows may be older
		for _, row := range b.rows {
			h.moving[row.ID] = b.last
		}
	}
	h.cursor = b.last
	h.sent, h.gap = time.Now(), h.gapAfter(len(b.rows))
	h.viewsDirty.Store(true)
	h.stats.batches.Add(1)
	close(h.caught)
	h.caught = make(chan struct{})
}

// frame is the batch's frame for a page viewing conversation viewing (0: none,
// or one the batch did not touch: every such page shares one frame).
func (h *Hub) frame(ctx context.Context, b *batch, viewing int64) (*frame, error) {
	if _, ok := b.convs[viewing]; !ok {
		viewing = 0
	}
	if f, ok := b.frames[viewing]; ok {
		return f, nil
	}
	data, err := h.frameBytes(ctx, b, viewing)
	if err != nil {
		return nil, err
	}
	msg, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
	if err != nil {
		return nil, err
	}
	f := &frame{data: data, msg: msg}
	if c := b.convs[viewing]; c != nil && c.clientWrote {
		// The agent has the conversation open: what the client wrote is read
		// for them once their page has received it (once per agent and batch,
		// however many of their pages show it). Unread is per agent: nobody
		// else's mark moves.
		var mu sync.Mutex
		done := make(map[int64]bool)
		f.after = func(agent int64) {
			if agent == 0 {
				return
			}
			mu.Lock()
			first := !done[agent]
			done[agent] = true
			mu.Unlock()
			if !first {
				return
			}
			mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.WriteWait)
			defer cancel()
			if err := h.opts.Store.MarkRead(mctx, agent, viewing); err != nil {
				h.opts.Log.Warn("mark read", "conversation", viewing, "agent", agent, "err", err)
			}
		}
	}
	b.frames[viewing] = f
	h.stats.frames.Add(1)
	return f, nil
}

// frameBytes renders (the first time only) the shared parts of a frame and
// joins them: the list's changed rows, the viewed conversation's thread parts,
// and the cursor.
func (h *Hub) frameBytes(ctx context.Context, b *batch, viewing int64) ([]byte, error) {
	r := h.opts.Renderer
	if b.list == nil {
		var rows, buf bytes.Buffer
		for _, row := range b.rows {
			if err := r.Row(ctx, &rows, row, b.now); err != nil {
				return nil, err
			}
			h.stats.rows.Add(1)
		}
		if err := r.ListDelta(ctx, &buf, rows.Bytes()); err != nil {
			return nil, err
		}
		b.list = buf.Bytes()
	}
	if b.cursorHTML == nil {
		var buf bytes.Buffer
		if err := r.Cursor(ctx, &buf, b.last); err != nil {
			return nil, err
		}
		b.cursorHTML = buf.Bytes()
	}
	var part []byte
	if c := b.convs[viewing]; c != nil {
		if c.part == nil {
			var buf bytes.Buffer
			for _, m := range c.appended {
				if err := r.Message(ctx, &buf, m, true); err != nil {
					return nil, err
				}
			}
			for _, m := range c.updated {
				if err := r.Message(ctx, &buf, m, false); err != nil {
					return nil, err
				}
			}
			h.stats.messages.Add(int64(len(c.appended) + len(c.updated)))
			if err := h.renderNotes(ctx, &buf, c); err != nil {
				return nil, err
			}
			if c.row != nil {
				// The panel lists the conversation's sessions: read only for a
				// conversation some page shows, once per batch.
				// The same for the contact's details, which the panel shows.
				var history []session.Session
				cv := c.row.Conversation
				err := h.opts.Store.Read(ctx, func(rd *store.Reader) (err error) {
					if history, err = rd.Sessions(ctx, cv.ID, h.opts.History); err != nil {
						return err
					}
					cv.Contact, err = rd.Contact(ctx, cv.Contact.ID)
					return err
				})
				if err != nil {
					return nil, err
				}
				if err := r.State(ctx, &buf, cv, history, b.now); err != nil {
					return nil, err
				}
				h.stats.states.Add(1)
			}
			c.part = buf.Bytes()
		}
		part = c.part
	}
	out := make([]byte, 0, len(b.list)+len(part)+len(b.cursorHTML))
	out = append(append(append(out, b.list...), part...), b.cursorHTML...)
	return out, nil
}

// batch is what a run of events changed, read in one snapshot.
type batch struct {
	last  int64     // the last event it covers
	now   time.Time // the snapshot's clock, for the countdowns
	rows  []store.ListRow
	convs map[int64]*convChange

	// Rendered once, on first use.
	list       []byte
	cursorHTML []byte
	frames     map[int64]*frame

	notes *noteBatch // the notes and mentions it carries (notes.go); nil when none

	// The read marks of the touched conversations (views.go): the shared
	// one of each, and the agents' own; markFrames the frames with them.
	ownMarks     map[int64]map[int64]int64
	sharedMarks  map[int64]int64
	markFrames   map[markKey]*frame
	markPrefixes map[int64]string // marksPrefix's, by agent (0: the shared marks)
	marksMu      sync.Mutex       // guards markPrefixes: replays share a batch
}

// convChange is what a batch changed in one conversation.
type convChange struct {
	row         *store.ListRow
	appended    []store.Message // new messages, in order
	updated     []store.Message // messages whose status changed
	notes       []store.Note    // new internal notes, in order
	clientWrote bool
	part        []byte // the rendered thread parts and state
}

type frame struct {
	data  []byte
	msg   *websocket.PreparedMessage
	after func(agent int64) // once a page of agent has written the frame; nil: nothing
}

// afterFor is what p's writer calls once it has written the frame.
func (f *frame) afterFor(p *page) func() {
	if f.after == nil {
		return nil
	}
	return func() { f.after(p.agent) }
}

// readBatch reads up to limit events after `after` (and up to upTo, when not
// 0) and everything they touched, in one read transaction. It returns nil when
// there is no event.
func (h *Hub) readBatch(ctx context.Context, after, upTo int64, limit int) (*batch, error) {
	var b *batch
	err := h.opts.Store.Read(ctx, func(r *store.Reader) error {
		events, err := r.EventsAfter(ctx, after, limit)
		if err != nil {
			return err
		}
		if upTo > 0 {
			n := 0
			for n < len(events) && events[n].ID <= upTo {
				n++
			}
			events = events[:n]
		}
		if len(events) == 0 {
			return nil
		}
		b = &batch{last: events[len(events)-1].ID, now: r.Now(), convs: make(map[int64]*convChange), frames: make(map[int64]*frame)}
		var convIDs, msgIDs []int64
		kinds := make(map[int64]string) // message id -> the first event kind about it
		var noteEvents []store.Event
		for _, ev := range events {
			if ev.Kind == store.EventNote { // read apart: a note changes no list row
				noteEvents = append(noteEvents, ev)
				continue
			}
			if _, ok := b.convs[ev.ConversationID]; !ok {
				b.convs[ev.ConversationID] = &convChange{}
				convIDs = append(convIDs, ev.ConversationID)
			}
			if ev.MessageID == 0 {
				continue
			}
			if _, ok := kinds[ev.MessageID]; !ok {
				kinds[ev.MessageID] = ev.Kind
				msgIDs = append(msgIDs, ev.MessageID)
			} else if ev.Kind == store.EventMessage {
				kinds[ev.MessageID] = ev.Kind
			}
		}
		if b.rows, err = r.ListRowsByID(ctx, convIDs); err != nil {
			return err
		}
		for i := range b.rows {
			b.convs[b.rows[i].ID].row = &b.rows[i]
		}
		msgs, err := r.MessagesByID(ctx, msgIDs)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			c := b.convs[m.ConversationID]
			if c == nil {
				continue
			}
			// A message added in this batch is drawn once, as it is now; one
			// added before only changes in place.
			if kinds[m.ID] == store.EventMessage {
				c.appended = append(c.appended, m)
				c.clientWrote = c.clientWrote || m.Direction == store.Inbound
			} else {
				c.updated = append(c.updated, m)
			}
		}
		if err := h.readMarks(ctx, r, b); err != nil {
			return err
		}
		return h.readNotes(ctx, r, b, noteEvents)
	})
	if err != nil {
		return nil, fmt.Errorf("read events after %d: %w", after, err)
	}
	return b, nil
}

// PageOptions describe a page that connects.
type PageOptions struct {
	// Viewing is the conversation the page has open, 0 for none.
	Viewing int64
	// Agent and AgentName are who the page is signed in as: the presence
	// line of a conversation names the agents viewing it (0: nobody known).
	Agent     int64
	AgentName string
	// After is the last event the page has shown; below 0 means "from now".
	After int64
	// ExpiresAt closes the socket with 1013 (come back through the sign-in);
	// zero never.
	ExpiresAt time.Time
	// Recheck, when set, is how often the page's right to stay is checked:
	// Allowed is asked (on a timer, no goroutine meanwhile), and the socket
	// closes with 1013 when it says no; with Allowed nil it closes at the first
	// check, so that the page comes back through the sign-in.
	Recheck time.Duration
	Allowed func(ctx context.Context) bool
	// Done is called once the page is gone.
	Done func()
}

// ErrClosed is returned by Serve once the hub has stopped.
var ErrClosed = errors.New("live hub: closed")

// Serve takes an upgraded connection: it catches the page up from opts.After
// (one read), registers it for the live frames, and returns; one goroutine
// then reads the socket (pongs, close) until it ends. Serve owns conn.
func (h *Hub) Serve(ctx context.Context, conn *websocket.Conn, opts PageOptions) error {
	p := &page{hub: h, conn: conn, viewing: opts.Viewing, agent: opts.Agent, agentName: opts.AgentName, writing: true, done: opts.Done}
	fail := func(err error) error {
		conn.Close()
		if p.done != nil {
			p.done()
		}
		return err
	}
	// Every wait below also watches h.stopped: a page that waits out
	// JoinWait on a hub that is shutting down would be told to reload into a
	// server going down; closed with 1012, it reconnects once it is back.
	select {
	case <-h.ready:
	case <-h.stopped:
		return fail(h.refuseStopped(conn))
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-time.After(h.opts.JoinWait):
		return fail(errors.New("live hub: not running"))
	}
	// Register at the hub's cursor; a page that has seen more than the hub has
	// sent yet waits for it (it will get there: those events are committed).
	var (
		start = time.Now()
		from  int64
	)
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return fail(h.refuseStopped(conn))
		}
		if opts.After < 0 {
			opts.After = h.cursor
		}
		if opts.After <= h.cursor {
			from = h.cursor
			h.pages[p] = struct{}{}
			h.joins++
			p.joined = h.joins
			if p.agent != 0 {
				h.agents[p.agent]++
				// A page that missed events (a reconnect) may show an older
				// sidebar than the counts its agent's other pages have: the
				// next round of counts goes to it whatever changed
				// (sendCounts). A page just drawn at the cursor has them.
				if opts.After < h.cursor {
					p.countsDue = true
					h.viewsDirty.Store(true)
				}
			}
			p.lastPing = time.Now()
			h.mu.Unlock()
			break
		}
		caught := h.caught
		h.mu.Unlock()
		h.opts.Broker.Publish()
		select {
		case <-caught:
		case <-h.stopped:
			return fail(h.refuseStopped(conn))
		case <-time.After(h.opts.JoinWait - time.Since(start)):
			// It claims events the store does not have: start again.
			h.stats.reloads.Add(1)
			h.writeReload(ctx, conn)
			return fail(fmt.Errorf("live hub: page after event %d, the hub is at %d", opts.After, h.Cursor()))
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	if opts.After < from {
		if err := h.replay(ctx, p, opts.After, from); err != nil {
			h.leave(p)
			return fail(err)
		}
	}
	if !opts.ExpiresAt.IsZero() {
		p.expiry = time.AfterFunc(time.Until(opts.ExpiresAt), func() { p.close(CloseTryAgain, "sign-in expired") })
	}
	if opts.Recheck > 0 {
		p.scheduleRecheck(opts.Recheck, opts.Allowed)
	}
	p.release()
	// Joined before the reader starts, so its leave always comes after.
	h.sendPresence(p, presenceJoin)
	go p.read()
	return nil
}

// replayKey names a replay frame: the events after `after` up to upTo, for a
// page viewing a conversation (0 none).
type replayKey struct{ after, upTo, viewing int64 }

type replayFrame struct {
	data     []byte
	markRead bool   // the page's conversation got a client message: it is read
	b        *batch // what it was built from: each agent's own mentions badge
}

// maxReplays bounds the replay frames kept for one cursor.
const maxReplays = 64

// cachedReplay returns the frame for key, built by build when no page has
// asked for it since the hub's cursor last moved.
func (h *Hub) cachedReplay(key replayKey, build func() (replayFrame, error)) (replayFrame, error) {
	h.replayMu.Lock()
	f, ok := h.replays[key]
	h.replayMu.Unlock()
	if ok {
		return f, nil
	}
	f, err := build()
	if err != nil {
		return f, err
	}
	h.replayMu.Lock()
	defer h.replayMu.Unlock()
	for k := range h.replays {
		if k.upTo != key.upTo || len(h.replays) >= maxReplays {
			delete(h.replays, k)
		}
	}
	if h.replays == nil {
		h.replays = make(map[replayKey]replayFrame)
	}
	h.replays[key] = f
	return f, nil
}

// replay sends a connecting page what happened after its cursor up to the
// hub's, as one frame built for it alone (one read), or a reload frame when
// that is more than the cap or was pruned.
func (h *Hub) replay(ctx context.Context, p *page, after, upTo int64) error {
	if upTo-after > h.opts.ReplayCap {
		h.stats.reloads.Add(1)
		h.writeReload(ctx, p.conn)
		return fmt.Errorf("live hub: page %d events behind, over the cap of %d", upTo-after, h.opts.ReplayCap)
	}
	var first int64
	if err := h.opts.Store.Read(ctx, func(r *store.Reader) (err error) {
		first, err = r.FirstKeptEventID(ctx)
		return err
	}); err != nil {
		return err
	}
	if after < first-1 {
		// What it missed was pruned: replaying the rest would hide that.
		h.stats.reloads.Add(1)
		h.writeReload(ctx, p.conn)
		return fmt.Errorf("live hub: page after event %d, events before %d are pruned", after, first)
	}
	f, err := h.cachedReplay(replayKey{after, upTo, p.viewing}, func() (replayFrame, error) {
		b, err := h.readBatch(ctx, after, upTo, int(h.opts.ReplayCap))
		if err != nil || b == nil { // nil: the events between were rolled back, nothing to show
			return replayFrame{}, err
		}
		b.last = upTo
		data, err := h.frameBytes(ctx, b, p.viewing)
		if err != nil {
			return replayFrame{}, err
		}
		c := b.convs[p.viewing]
		return replayFrame{data: data, markRead: c != nil && c.clientWrote, b: b}, nil
	})
	if err != nil || f.data == nil {
		return err
	}
	data, err := h.withMentions(ctx, f.b, p.agent, f.data)
	if err != nil {
		return err
	}
	if prefix := f.b.marksPrefix(p.agent); p.agent != 0 && prefix != "" {
		data = append([]byte(prefix), data...)
	}
	h.stats.replays.Add(1)
	_ = p.conn.SetWriteDeadline(time.Now().Add(h.opts.WriteWait))
	if err := p.conn.WriteMessage(websocket.TextMessage, data); err != nil {
		return err
	}
	if f.markRead && p.agent != 0 {
		if err := h.opts.Store.MarkRead(context.WithoutCancel(ctx), p.agent, p.viewing); err != nil {
			h.opts.Log.Warn("mark read", "conversation", p.viewing, "err", err)
		}
	}
	return nil
}

// refuseStopped tells a page that came while the hub stopped to come back
// later, as closeAll tells the pages that were in: close 1012, not a reload
// (the server is going down). It returns ErrClosed, for Serve to return.
func (h *Hub) refuseStopped(conn *websocket.Conn) error {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseRestart, "server restarting"),
		time.Now().Add(time.Second))
	return ErrClosed
}

// writeReload sends the reload frame and closes with 1013.
func (h *Hub) writeReload(ctx context.Context, conn *websocket.Conn) {
	var buf bytes.Buffer
	if err := h.opts.Renderer.Reload(ctx, &buf); err != nil {
		return
	}
	deadline := time.Now().Add(h.opts.WriteWait)
	_ = conn.SetWriteDeadline(deadline)
	if conn.WriteMessage(websocket.TextMessage, buf.Bytes()) == nil {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseTryAgain, "reload"), deadline)
	}
}

// leave unregisters a page.
func (h *Hub) leave(p *page) {
	h.mu.Lock()
	if _, ok := h.pages[p]; ok && p.agent != 0 {
		if h.agents[p.agent]--; h.agents[p.agent] <= 0 {
			delete(h.agents, p.agent)
		}
	}
	delete(h.pages, p)
	h.mu.Unlock()
}

// ping queues a ping for every page that would, by the next tick, have had
// none for 9/10 of the pong wait: pings go out at most that far apart, and a
// tenth of PongWait is left for the pong, however coarse the tick.
func (h *Hub) ping(now time.Time) {
	period := h.opts.PongWait*9/10 - h.tickEvery()
	h.mu.Lock()
	defer h.mu.Unlock()
	for p := range h.pages {
		if now.Sub(p.lastPing) >= period {
			p.lastPing = now
			p.enqueue(outgoing{ping: true})
		}
	}
}

// closeAll closes every page and refuses new ones.
func (h *Hub) closeAll(code int, reason string) {
	h.mu.Lock()
	h.closed = true
	pages := make([]*page, 0, len(h.pages))
	for p := range h.pages {
		pages = append(pages, p)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range pages {
		wg.Go(func() { p.close(code, reason) })
	}
	wg.Wait()
}

package live

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"sessiondesk/store"
)

// The views' live parts. The list's rows are shared by every page: each
// carries what places it in a view (status, assignee, unanswered run, session
// end, the client's newest message) and the page's script decides, by the
// same rules as the server's query, whether it belongs in its view and where.
// What differs per agent travels beside the rows, small:
//   - the agent's read marks of the conversations a batch touched, so that a
//     row entering their list shows unread or not for them (read-marks);
//   - the sidebar's counts, Mine and the unread total of the tab title, sent
//     at most once a second when something changed, and every CountEvery
//     since time alone moves conversations between the session views
//     (view-counts).
// Both are numbers only, so the hub writes their markup itself.

// DefaultCountEvery is how often the counts go out even without events.
const DefaultCountEvery = 30 * time.Second

// countMin is the least time between two rounds of counts.
const countMin = time.Second

// readMarks loads, in the batch's snapshot, the read marks of the
// conversations it touched: each one's shared mark, and the agents' own.
func (h *Hub) readMarks(ctx context.Context, r *store.Reader, b *batch) error {
	if len(b.rows) == 0 {
		return nil
	}
	ids := make([]int64, len(b.rows))
	for i, row := range b.rows {
		ids[i] = row.ID
	}
	var err error
	b.ownMarks, b.sharedMarks, err = r.ReadMarksBy(ctx, ids)
	return err
}

// marksOf are agent's marks of the batch's conversations: their own where
// they have one, the shared one elsewhere.
func (b *batch) marksOf(agent int64) map[int64]int64 {
	own := b.ownMarks[agent]
	if len(own) == 0 {
		return b.sharedMarks
	}
	out := maps.Clone(b.sharedMarks)
	maps.Copy(out, own)
	return out
}

// marksPrefix is marksHTML of agent's marks of the batch ("" when none),
// made once per batch for each agent with marks of their own and once for
// all the others: every page's frame asks for it, twice per batch. Safe for
// concurrent use: the pages that connect from the same cursor share one
// replayed batch, each from its own goroutine.
func (b *batch) marksPrefix(agent int64) string {
	key := agent
	if len(b.ownMarks[agent]) == 0 {
		key = 0 // the shared marks; no agent has id 0
	}
	b.marksMu.Lock()
	defer b.marksMu.Unlock()
	if p, ok := b.markPrefixes[key]; ok {
		return p
	}
	var p string
	if marks := b.marksOf(agent); len(marks) > 0 {
		p = string(marksHTML(marks))
	}
	if b.markPrefixes == nil {
		b.markPrefixes = make(map[int64]string)
	}
	b.markPrefixes[key] = p
	return p
}

// withMarks is f with agent's read marks of the batch in front; f itself when
// the batch has none. Agents with the same marks (most: those who never
// opened these conversations) share one frame per base frame. The base frame
// is part of the key, not only the view: the frame of a mentioned agent
// already carries their mentions badge (mentionsFrame), so keying by view and
// marks alone handed one agent's badge to every agent with the same marks, or
// the plain frame to the agent mentioned.
func (h *Hub) withMarks(b *batch, agent int64, f *frame) (*frame, error) {
	prefix := b.marksPrefix(agent)
	if prefix == "" {
		return f, nil
	}
	key := markKey{base: f, marks: prefix}
	if mf, ok := b.markFrames[key]; ok {
		return mf, nil
	}
	var buf bytes.Buffer
	buf.WriteString(prefix)
	buf.Write(f.data)
	msg, err := websocket.NewPreparedMessage(websocket.TextMessage, buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("prepare frame with read marks: %w", err)
	}
	mf := &frame{data: buf.Bytes(), msg: msg, after: f.after}
	if b.markFrames == nil {
		b.markFrames = make(map[markKey]*frame)
	}
	b.markFrames[key] = mf
	h.stats.frames.Add(1)
	return mf, nil
}

// markKey names a frame with read marks: the frame it was built from (the
// view's, or a mentioned agent's with their badge) and the marks.
type markKey struct {
	base  *frame
	marks string
}

// marksHTML carries an agent's read marks (conversation -> mark) to the
// page, in the order of the conversation ids (equal marks, equal bytes).
func marksHTML(marks map[int64]int64) []byte {
	var buf bytes.Buffer
	buf.WriteString(`<template id="read-marks" hx-swap-oob="true" data-marks="`)
	for i, id := range slices.Sorted(maps.Keys(marks)) {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(strconv.FormatInt(id, 10))
		buf.WriteByte(':')
		buf.WriteString(strconv.FormatInt(marks[id], 10))
	}
	buf.WriteString(`"></template>`)
	return buf.Bytes()
}

// runViews sends the counts and time's moves on their own goroutine, so
// that what they read never holds up the live frames: a tick a second.
func (h *Hub) runViews(ctx context.Context) {
	tick := time.NewTicker(countMin)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			h.moveByTime(ctx)
			h.sendCounts(ctx, time.Now())
		}
	}
}

// countState is what runViews knows of the counts it sent; only it uses it.
type countState struct {
	last  time.Time        // when the last round ran
	sent  map[int64]string // agent -> the counts frame last sent to their pages
	moved time.Time        // the store's time up to which time's moves were sent (set by Run at start)
	round time.Time        // when moveByTime last read (wall clock)
}

// moveByTime sends every page the rows that time alone moved between the
// session views since the last round (a session that ended, one that entered
// the Expiring window): a page whose view they now belong to had not loaded
// them. One read and one render for all pages, every CountEvery.
func (h *Hub) moveByTime(ctx context.Context) {
	cs := &h.counts
	every := h.countEvery()
	if time.Since(cs.round) < every {
		return
	}
	cs.round = time.Now()
	var rows []store.ListRow
	var now time.Time
	err := h.opts.Store.Read(ctx, func(r *store.Reader) (err error) {
		now = r.Now()
		rows, err = r.ListRowsEndingIn(ctx, cs.moved, now, h.expiringWithin())
		return err
	})
	if err != nil {
		h.opts.Log.Warn("live hub: rows moved by time", "err", err)
		return
	}
	cs.moved = now
	if len(rows) == 0 {
		return
	}
	h.viewsDirty.Store(true)
	var buf, list bytes.Buffer
	for _, row := range rows {
		if err := h.opts.Renderer.Row(ctx, &buf, row, now); err != nil {
			h.opts.Log.Warn("live hub: rows moved by time", "err", err)
			return
		}
		h.stats.rows.Add(1)
	}
	if err := h.opts.Renderer.ListDelta(ctx, &list, buf.Bytes()); err != nil {
		h.opts.Log.Warn("live hub: rows moved by time", "err", err)
		return
	}
	msg, err := websocket.NewPreparedMessage(websocket.TextMessage, list.Bytes())
	if err != nil {
		h.opts.Log.Warn("live hub: rows moved by time", "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for p := range h.pages {
		p.enqueue(outgoing{msg: msg, size: list.Len()})
	}
}

func (h *Hub) countEvery() time.Duration {
	if h.opts.CountEvery > 0 {
		return h.opts.CountEvery
	}
	return DefaultCountEvery
}

func (h *Hub) expiringWithin() time.Duration {
	if h.opts.ExpiringWithin > 0 {
		return h.opts.ExpiringWithin
	}
	return store.DefaultExpiringWithin
}

// sendCounts sends every online agent's pages the sidebar's counts when they
// changed: after a batch (at most once a second) and every CountEvery. One
// read counts the views for everybody; each agent then costs one indexed count
// (their unread total) and a few bytes.
func (h *Hub) sendCounts(ctx context.Context, now time.Time) {
	cs := &h.counts
	every := h.countEvery()
	dirty := h.viewsDirty.Load()
	if now.Sub(cs.last) < countMin || (!dirty && now.Sub(cs.last) < every) {
		return
	}
	agents := h.OnlineAgents()
	if len(agents) == 0 {
		return
	}
	cs.last = now
	h.viewsDirty.Store(false)
	var counts store.ViewCounts
	var unread map[int64]int
	err := h.opts.Store.Read(ctx, func(r *store.Reader) (err error) {
		if counts, err = r.ViewCounts(ctx, store.ConvOpen, h.expiringWithin()); err != nil {
			return err
		}
		unread, err = r.UnreadInViewsOf(ctx, agents)
		return err
	})
	if err != nil {
		h.opts.Log.Warn("live hub: view counts", "err", err)
		return
	}
	if cs.sent == nil {
		cs.sent = make(map[int64]string)
	}
	frames := make(map[int64]outgoing, len(agents))
	for _, a := range agents {
		var buf bytes.Buffer
		buf.WriteString(`<template id="view-counts" hx-swap-oob="true" data-status="open" data-unread-total="`)
		buf.WriteString(strconv.Itoa(unread[a]))
		buf.WriteString(`">`)
		for _, v := range store.Views {
			buf.WriteString(`<i data-view="`)
			buf.WriteString(string(v))
			buf.WriteString(`" data-n="`)
			buf.WriteString(strconv.Itoa(counts.Of(v, a)))
			buf.WriteString(`"></i>`)
		}
		buf.WriteString(`</template>`)
		if cs.sent[a] == buf.String() {
			continue
		}
		msg, err := websocket.NewPreparedMessage(websocket.TextMessage, buf.Bytes())
		if err != nil {
			h.opts.Log.Warn("live hub: view counts", "err", err)
			return
		}
		cs.sent[a] = buf.String()
		frames[a] = outgoing{msg: msg, size: buf.Len()}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for p := range h.pages {
		if o, ok := frames[p.agent]; ok {
			p.enqueue(o)
		}
	}
	for a := range cs.sent {
		if h.agents[a] == 0 {
			delete(cs.sent, a) // gone: their next page starts from its own render
		}
	}
}

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
//   - the agent's read marks of the conversations a batch touched, or time
//     alone moved between the session views, so that a row entering their
//     list shows unread or not for them (read-marks);
//   - the sidebar's counts, Mine and the unread total of the tab title, sent
//     at most once a second when something changed, and every CountEvery
//     since time alone moves conversations between the session views
//     (view-counts); a page that joins after missing events gets its agent's
//     current ones.
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
	last  time.Time             // when the last round ran
	sent  map[int64]countsFrame // agent -> the counts frame last sent to their pages
	moved time.Time             // the store's time up to which time's moves were sent (set by Run at start)
	round time.Time             // when moveByTime last read (wall clock)
}

// countsFrame is one agent's counts as sent: the bytes, to compare the next
// round's with, and the frame, for their pages that join meanwhile.
type countsFrame struct {
	text string
	out  outgoing
}

// moveByTime sends every page the rows that time alone moved between the
// session views since the last round (a session that ended, one that entered
// the Expiring window): a page whose view they now belong to had not loaded
// them. One read and one render for all pages, every CountEvery.
//
// Each agent's page gets the agent's read marks of those rows in front, as
// with a batch (withMarks): a row carries no read state of its own, and a
// page that was not told the mark showed a row the agent had read as unread.
// The marks are read in the rows' snapshot; agents with no marks of their own
// on these rows (most) share one frame.
//
// The read and the render run apart from the hub goroutine, so a batch may go
// out meanwhile with a newer state of one of the rows (a conversation just
// resolved); queued after it, the older row would overwrite it on the pages.
// So the hub notes, for as long as a round runs, which rows its batches carry
// (moving); a row that a batch past the round's snapshot carried is left
// out: the pages have a newer state of it already. Any change the snapshot
// missed has an event past it, so it is in such a batch or in one still to
// come, queued after this frame.
func (h *Hub) moveByTime(ctx context.Context) {
	cs := &h.counts
	every := h.countEvery()
	if time.Since(cs.round) < every {
		return
	}
	cs.round = time.Now()
	h.mu.Lock()
	h.moving = make(map[int64]int64)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.moving = nil
		h.mu.Unlock()
	}()
	b := &batch{}
	var upTo int64 // the snapshot's last event
	err := h.opts.Store.Read(ctx, func(r *store.Reader) (err error) {
		b.now = r.Now()
		if upTo, err = r.LastEventID(ctx); err != nil {
			return err
		}
		if b.rows, err = r.ListRowsEndingIn(ctx, cs.moved, b.now, h.expiringWithin()); err != nil {
			return err
		}
		return h.readMarks(ctx, r, b)
	})
	if err != nil {
		h.opts.Log.Warn("live hub: rows moved by time", "err", err)
		return
	}
	cs.moved = b.now
	if len(b.rows) == 0 {
		return
	}
	h.viewsDirty.Store(true)
	rendered := make([][]byte, len(b.rows))
	for i, row := range b.rows {
		var buf bytes.Buffer
		if err := h.opts.Renderer.Row(ctx, &buf, row, b.now); err != nil {
			h.opts.Log.Warn("live hub: rows moved by time", "err", err)
			return
		}
		rendered[i] = buf.Bytes()
		h.stats.rows.Add(1)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	var rows, list bytes.Buffer
	kept := b.rows[:0]
	for i, row := range b.rows {
		if h.moving[row.ID] > upTo {
			// A batch past the snapshot carried it: drop its mark too.
			delete(b.sharedMarks, row.ID)
			for _, own := range b.ownMarks {
				delete(own, row.ID)
			}
			continue
		}
		kept = append(kept, row)
		rows.Write(rendered[i])
	}
	b.rows = kept
	if len(b.rows) == 0 {
		return
	}
	if err := h.opts.Renderer.ListDelta(ctx, &list, rows.Bytes()); err != nil {
		h.opts.Log.Warn("live hub: rows moved by time", "err", err)
		return
	}
	msg, err := websocket.NewPreparedMessage(websocket.TextMessage, list.Bytes())
	if err != nil {
		h.opts.Log.Warn("live hub: rows moved by time", "err", err)
		return
	}
	base := &frame{data: list.Bytes(), msg: msg}
	h.stats.frames.Add(1)
	// Every frame is built before any is queued, as in distribute.
	frames := make(map[*page]*frame, len(h.pages))
	for p := range h.pages {
		f := base
		if p.agent != 0 {
			var err error
			if f, err = h.withMarks(b, p.agent, base); err != nil {
				h.opts.Log.Warn("live hub: rows moved by time", "err", err)
				return
			}
		}
		frames[p] = f
	}
	for p, f := range frames {
		p.enqueue(outgoing{msg: f.msg, size: len(f.data)})
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
//
// What was sent is kept per agent, but a page that joins having missed
// events (countsDue, set by Serve) gets its agent's current counts at the
// next round whether they changed or not: a page that reconnects while
// another tab of the agent stayed open missed the counts that changed while
// it was away, and the agent's counts equal to those last sent would never
// have reached it. Such a join makes the next round come (viewsDirty), at
// most a second later; it costs the round's read, and the joining page one
// frame already built. A page just drawn at the hub's cursor has the counts
// and gets nothing.
func (h *Hub) sendCounts(ctx context.Context, now time.Time) {
	cs := &h.counts
	every := h.countEvery()
	dirty := h.viewsDirty.Load()
	if now.Sub(cs.last) < countMin || (!dirty && now.Sub(cs.last) < every) {
		return
	}
	// The pages that joined up to here get this round's counts; one that
	// joins during the read may have drawn newer counts, and waits for the
	// next round, which its join calls for.
	h.mu.Lock()
	joins := h.joins
	h.mu.Unlock()
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
		cs.sent = make(map[int64]countsFrame)
	}
	changed := make(map[int64]bool, len(agents))
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
		if cs.sent[a].text == buf.String() {
			continue
		}
		msg, err := websocket.NewPreparedMessage(websocket.TextMessage, buf.Bytes())
		if err != nil {
			h.opts.Log.Warn("live hub: view counts", "err", err)
			return
		}
		cs.sent[a] = countsFrame{text: buf.String(), out: outgoing{msg: msg, size: buf.Len()}}
		changed[a] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for p := range h.pages {
		sent, ok := cs.sent[p.agent]
		due := p.countsDue && p.joined <= joins
		if !ok || !changed[p.agent] && !due {
			continue
		}
		if due {
			p.countsDue = false
		}
		p.enqueue(sent.out)
	}
	for a := range cs.sent {
		if h.agents[a] == 0 {
			delete(cs.sent, a) // gone: their next page starts from its own render
		}
	}
}

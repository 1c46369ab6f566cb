package live

import (
	"bytes"
	"context"
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

// readMarks loads, in the batch's snapshot, the marks the online agents have
// on the conversations it touched.
func (h *Hub) readMarks(ctx context.Context, r *store.Reader, b *batch) error {
	agents := h.OnlineAgents()
	if len(agents) == 0 || len(b.rows) == 0 {
		return nil
	}
	ids := make([]int64, len(b.rows))
	for i, row := range b.rows {
		ids[i] = row.ID
	}
	var err error
	b.marks, err = r.ReadMarksOf(ctx, agents, ids)
	return err
}

// withMarks is f with agent's read marks of the batch in front; f itself when
// the batch holds none for them. One frame per (view, agent), built once.
func (h *Hub) withMarks(b *batch, viewing, agent int64, f *frame) (*frame, error) {
	marks := b.marks[agent]
	if len(marks) == 0 {
		return f, nil
	}
	key := [2]int64{viewing, agent}
	if mf, ok := b.markFrames[key]; ok {
		return mf, nil
	}
	var buf bytes.Buffer
	buf.Write(marksHTML(marks))
	buf.Write(f.data)
	msg, err := websocket.NewPreparedMessage(websocket.TextMessage, buf.Bytes())
	if err != nil {
		return nil, err
	}
	mf := &frame{data: buf.Bytes(), msg: msg, after: f.after}
	if b.markFrames == nil {
		b.markFrames = make(map[[2]int64]*frame)
	}
	b.markFrames[key] = mf
	h.stats.frames.Add(1)
	return mf, nil
}

// marksHTML carries an agent's read marks (conversation -> mark) to the page.
func marksHTML(marks map[int64]int64) []byte {
	var buf bytes.Buffer
	buf.WriteString(`<template id="read-marks" hx-swap-oob="true" data-marks="`)
	first := true
	for id, mark := range marks {
		if !first {
			buf.WriteByte(',')
		}
		first = false
		buf.WriteString(strconv.FormatInt(id, 10))
		buf.WriteByte(':')
		buf.WriteString(strconv.FormatInt(mark, 10))
	}
	buf.WriteString(`"></template>`)
	return buf.Bytes()
}

// countState is what the hub goroutine knows of the counts it sent.
type countState struct {
	dirty bool             // a batch changed something since the last round
	last  time.Time        // when the last round ran
	sent  map[int64]string // agent -> the counts frame last sent to their pages
	moved time.Time        // the store's time up to which time's moves were sent
	round time.Time        // when moveByTime last read (wall clock)
}

// moveByTime sends every page the rows that time alone moved between the
// session views since the last round (a session that ended, one that entered
// the Expiring window): a page whose view they now belong to had not loaded
// them. One read and one render for all pages, every CountEvery.
func (h *Hub) moveByTime(ctx context.Context) {
	cs := &h.counts
	every := h.opts.CountEvery
	if every <= 0 {
		every = DefaultCountEvery
	}
	if time.Since(cs.round) < every {
		return
	}
	cs.round = time.Now()
	var rows []store.ListRow
	var now time.Time
	err := h.opts.Store.Read(ctx, func(r *store.Reader) (err error) {
		now = r.Now()
		if !cs.moved.IsZero() { // zero: the pages were drawn at start, nothing moved before
			rows, err = r.ListRowsEndingIn(ctx, cs.moved, now, h.expiringWithin())
		}
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
	cs.dirty = true
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
	every := h.opts.CountEvery
	if every <= 0 {
		every = DefaultCountEvery
	}
	if now.Sub(cs.last) < countMin || (!cs.dirty && now.Sub(cs.last) < every) {
		return
	}
	agents := h.OnlineAgents()
	if len(agents) == 0 {
		return
	}
	cs.last, cs.dirty = now, false
	var counts store.ViewCounts
	unread := make(map[int64]int, len(agents))
	err := h.opts.Store.Read(ctx, func(r *store.Reader) (err error) {
		if counts, err = r.ViewCounts(ctx, store.ConvOpen, h.expiringWithin()); err != nil {
			return err
		}
		for _, a := range agents {
			if unread[a], err = r.UnreadInViews(ctx, a); err != nil {
				return err
			}
		}
		return nil
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

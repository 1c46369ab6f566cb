package live

import (
	"bytes"
	"context"
	"io"
	"sync"

	"github.com/gorilla/websocket"

	"sessiondesk/store"
)

// Internal notes in the live frames. A note event appends the note's bubble
// to the pages viewing its conversation (rendered once per batch, like a
// message), and tells each agent it mentions how many unseen mentions they
// have, on their pages only. A note changes no list row, so it costs the other
// pages nothing but the cursor.

// NoteRenderer draws what notes add to frames; the handlers implement it with
// the views.
type NoteRenderer interface {
	// Note is a note's bubble, appended at the end of the thread.
	Note(ctx context.Context, w io.Writer, n store.Note) error
	// Mentions is the header's badge of an agent with unseen mentions, latest
	// being the newest note of the batch that mentions them.
	Mentions(ctx context.Context, w io.Writer, unseen int, latest store.Note) error
}

// noteBatch is what the notes of a batch tell the agents they mention.
type noteBatch struct {
	unseen map[int64]int        // agent -> unseen mentions, for the agents mentioned in the batch
	latest map[int64]store.Note // agent -> the batch's newest note mentioning them
	// badges holds each agent's rendered badge; guarded by mu, since pages
	// replaying from the same event share the batch (Hub.cachedReplay).
	mu     sync.Mutex
	badges map[int64][]byte    // agent -> their rendered badge
	frames map[[2]int64]*frame // (viewing, agent) -> a mentioned agent's frame
}

// readNotes loads the notes the events name into their conversations' changes,
// and the unseen mentions of the agents they mention, in the batch's snapshot.
func (h *Hub) readNotes(ctx context.Context, r *store.Reader, b *batch, events []store.Event) error {
	if len(events) == 0 || h.opts.Notes == nil {
		return nil
	}
	ids := make([]int64, 0, len(events))
	for _, ev := range events {
		ids = append(ids, ev.NoteID)
	}
	notes, err := r.NotesByID(ctx, ids)
	if err != nil {
		return err
	}
	nb := &noteBatch{latest: map[int64]store.Note{}, badges: map[int64][]byte{}, frames: map[[2]int64]*frame{}}
	var agents []int64
	for _, n := range notes {
		c := b.convs[n.ConversationID]
		if c == nil {
			c = &convChange{}
			b.convs[n.ConversationID] = c
		}
		c.notes = append(c.notes, n)
		for _, m := range n.Mentions {
			if m.Seen {
				continue
			}
			if _, ok := nb.latest[m.AgentID]; !ok {
				agents = append(agents, m.AgentID)
			}
			nb.latest[m.AgentID] = n
		}
	}
	if nb.unseen, err = r.UnseenMentions(ctx, agents); err != nil {
		return err
	}
	for _, a := range agents {
		if _, ok := nb.unseen[a]; !ok {
			// Seen already (another tab was quicker): the badge still goes, with 0.
			nb.unseen[a] = 0
		}
	}
	b.notes = nb
	return nil
}

// renderNotes appends the bubbles of a conversation's new notes to its part.
func (h *Hub) renderNotes(ctx context.Context, w io.Writer, c *convChange) error {
	for _, n := range c.notes {
		if err := h.opts.Notes.Note(ctx, w, n); err != nil {
			return err
		}
	}
	h.stats.notes.Add(int64(len(c.notes)))
	return nil
}

// pageFrame is the batch's frame for p: the frame of its view, with the
// mentions badge in front for an agent the batch mentions.
func (h *Hub) pageFrame(ctx context.Context, b *batch, p *page) (*frame, error) {
	f, err := h.mentionsFrame(ctx, b, p)
	if err != nil || p.agent == 0 {
		return f, err
	}
	return h.withMarks(b, p.agent, f)
}

// mentionsFrame is the batch's frame for p's view, with the mentions badge in
// front for an agent the batch mentions.
func (h *Hub) mentionsFrame(ctx context.Context, b *batch, p *page) (*frame, error) {
	f, err := h.frame(ctx, b, p.viewing)
	if err != nil || b.notes == nil || p.agent == 0 {
		return f, err
	}
	if _, ok := b.notes.unseen[p.agent]; !ok {
		return f, nil
	}
	viewing := p.viewing
	if _, ok := b.convs[viewing]; !ok {
		viewing = 0
	}
	key := [2]int64{viewing, p.agent}
	if af, ok := b.notes.frames[key]; ok {
		return af, nil
	}
	data, err := h.withMentions(ctx, b, p.agent, f.data)
	if err != nil {
		return nil, err
	}
	msg, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
	if err != nil {
		return nil, err
	}
	af := &frame{data: data, msg: msg, after: f.after}
	b.notes.frames[key] = af
	h.stats.frames.Add(1)
	return af, nil
}

// withMentions puts the agent's badge (rendered once per batch) in front of
// data, when the batch mentions the agent; otherwise it returns data as is.
func (h *Hub) withMentions(ctx context.Context, b *batch, agent int64, data []byte) ([]byte, error) {
	if b.notes == nil || agent == 0 {
		return data, nil
	}
	unseen, ok := b.notes.unseen[agent]
	if !ok {
		return data, nil
	}
	b.notes.mu.Lock()
	defer b.notes.mu.Unlock()
	badge, ok := b.notes.badges[agent]
	if !ok {
		var buf bytes.Buffer
		if err := h.opts.Notes.Mentions(ctx, &buf, unseen, b.notes.latest[agent]); err != nil {
			return nil, err
		}
		badge = buf.Bytes()
		b.notes.badges[agent] = badge
	}
	out := make([]byte, 0, len(badge)+len(data))
	return append(append(out, badge...), data...), nil
}

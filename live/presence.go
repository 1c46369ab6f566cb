package live

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"slices"
	"time"

	"github.com/gorilla/websocket"
)

// Presence: who else has a conversation open, and who is typing in it. It is
// kept in memory by the hub goroutine alone (it needs no durability: a
// restart closes every socket, and the pages that come back say again where
// they are), indexed by conversation, so that a change costs only the pages
// viewing that conversation and nothing for the others.

// PresenceRenderer draws the thread header's presence line. A Renderer that
// implements it gets presence frames; one that does not, none.
type PresenceRenderer interface {
	// Presence replaces, out of band, the element of id "presence-<id>" of
	// the conversation with the other agents on it (sorted by name; none
	// draws it empty).
	Presence(ctx context.Context, w io.Writer, conversationID int64, others []Presence) error
}

// Presence is one other agent on a conversation.
type Presence struct {
	Agent  int64
	Name   string
	Typing bool
}

// DefaultTypingTTL is how long "typing" lasts without a renewal; the page
// renews it every 2 s while the agent types.
const DefaultTypingTTL = 5 * time.Second

// maxInput is the longest message a browser sends: {"typing":false} and a
// little room. Anything longer is not ours and is ignored.
const maxInput = 64

// The browser may send a burst of inputBurst messages, then one per
// inputEvery; the rest is ignored, so that a page spamming "typing" costs
// the pages viewing its conversation no more than an honest one.
const (
	inputBurst = 4
	inputEvery = time.Second
)

type presenceKind uint8

const (
	presenceJoin presenceKind = iota + 1
	presenceLeave
	presenceTyping
	presenceIdle
)

type presenceMsg struct {
	p    *page
	kind presenceKind
}

// presenceState belongs to the hub goroutine.
type presenceState struct {
	viewers map[int64]map[*page]struct{} // conversation -> the pages viewing it
	typing  map[*page]time.Time          // pages typing -> until when
	dirty   map[int64]struct{}           // conversations whose presence changed
}

func newPresenceState() presenceState {
	return presenceState{viewers: map[int64]map[*page]struct{}{}, typing: map[*page]time.Time{}, dirty: map[int64]struct{}{}}
}

// sendPresence hands the hub goroutine a presence change; it gives up only
// once the hub has stopped (every page is closed then anyway).
func (h *Hub) sendPresence(p *page, kind presenceKind) {
	if p.viewing == 0 {
		return
	}
	select {
	case h.presence <- presenceMsg{p: p, kind: kind}:
	case <-h.stopped:
	}
}

// presenceChanged applies m and every change already waiting behind it, then
// sends the pages of the conversations they changed their new presence line.
func (h *Hub) presenceChanged(ctx context.Context, m presenceMsg) {
	now := time.Now()
	h.applyPresence(m, now)
	for {
		select {
		case m = <-h.presence:
			h.applyPresence(m, now)
			continue
		default:
		}
		break
	}
	h.flushPresence(ctx)
}

func (h *Hub) applyPresence(m presenceMsg, now time.Time) {
	ps, p := &h.pres, m.p
	conv := p.viewing
	switch m.kind {
	case presenceJoin:
		if ps.viewers[conv] == nil {
			ps.viewers[conv] = map[*page]struct{}{}
		}
		ps.viewers[conv][p] = struct{}{}
	case presenceLeave:
		delete(ps.viewers[conv], p)
		if len(ps.viewers[conv]) == 0 {
			delete(ps.viewers, conv)
		}
		delete(ps.typing, p)
	case presenceTyping:
		if _, viewing := ps.viewers[conv][p]; !viewing {
			return // it left already
		}
		_, was := ps.typing[p]
		ps.typing[p] = now.Add(h.opts.TypingTTL)
		if was {
			return // a renewal changes nothing anyone sees
		}
	case presenceIdle:
		if _, ok := ps.typing[p]; !ok {
			return
		}
		delete(ps.typing, p)
	}
	ps.dirty[conv] = struct{}{}
}

// expireTyping ends the "typing" of pages that stopped renewing it.
func (h *Hub) expireTyping(ctx context.Context, now time.Time) {
	ps := &h.pres
	for p, until := range ps.typing {
		if now.After(until) {
			delete(ps.typing, p)
			ps.dirty[p.viewing] = struct{}{}
		}
	}
	h.flushPresence(ctx)
}

// flushPresence renders the presence line of each changed conversation once
// per distinct agent viewing it (it leaves out the agent it is for), and
// queues it to the pages whose line it changes and to the pages that just
// joined: pages viewing other conversations are not even looked at.
func (h *Hub) flushPresence(ctx context.Context) {
	ps := &h.pres
	r, ok := h.opts.Renderer.(PresenceRenderer)
	for conv := range ps.dirty {
		delete(ps.dirty, conv)
		viewers := ps.viewers[conv]
		if !ok || len(viewers) == 0 {
			continue
		}
		all := h.presentAgents(viewers)
		draw := func(others []Presence) []byte {
			var buf bytes.Buffer
			if err := r.Presence(ctx, &buf, conv, others); err != nil {
				h.opts.Log.Warn("live hub: render presence", "conversation", conv, "err", err)
				return nil
			}
			return buf.Bytes()
		}
		rendered := map[int64][]byte{} // receiving agent -> line
		for p := range viewers {
			line, ok := rendered[p.agent]
			if !ok {
				others := make([]Presence, 0, len(all))
				for _, a := range all {
					if a.Agent != p.agent {
						others = append(others, a)
					}
				}
				line = draw(others)
				rendered[p.agent] = line
			}
			if len(line) == 0 {
				continue
			}
			// A page that has had no line yet (presenceSent nil) gets the
			// current one, even the empty line: it may be a page back from a
			// network blip, whose DOM still shows its old socket's line
			// ("Boris is typing") though Boris left meanwhile.
			if p.presenceSent != nil && bytes.Equal(line, p.presenceSent) {
				continue
			}
			msg, err := websocket.NewPreparedMessage(websocket.TextMessage, line)
			if err != nil {
				continue
			}
			p.presenceSent = line
			p.enqueue(outgoing{msg: msg, size: len(line)})
			h.stats.presence.Add(1)
		}
	}
}

// presentAgents is every agent with a page among viewers, typing when any of
// their pages types, sorted by name.
func (h *Hub) presentAgents(viewers map[*page]struct{}) []Presence {
	byAgent := map[int64]int{}
	var all []Presence
	for p := range viewers {
		_, typing := h.pres.typing[p]
		if i, ok := byAgent[p.agent]; ok {
			all[i].Typing = all[i].Typing || typing
			continue
		}
		byAgent[p.agent] = len(all)
		all = append(all, Presence{Agent: p.agent, Name: p.agentName, Typing: typing})
	}
	slices.SortFunc(all, func(a, b Presence) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Agent, b.Agent))
	})
	return all
}

// inputLimiter is a page's token bucket for what its browser sends. Only the
// page's reader uses it.
type inputLimiter struct {
	tokens float64
	last   time.Time
}

func (l *inputLimiter) allow(now time.Time) bool {
	if l.last.IsZero() {
		l.tokens = inputBurst
	} else {
		l.tokens = min(inputBurst, l.tokens+now.Sub(l.last).Seconds()/inputEvery.Seconds())
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// parseInput reads what a browser sent: {"typing":true} or {"typing":false},
// nothing else. ok is false for anything else.
func parseInput(data []byte) (typing, ok bool) {
	if len(data) > maxInput {
		return false, false
	}
	var in struct {
		Typing *bool `json:"typing"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || in.Typing == nil || dec.More() {
		return false, false
	}
	return *in.Typing, true
}

// SendToAgent queues data (an out-of-band fragment) to every page of the
// agent, and returns how many there were. It is for what concerns one agent
// only, such as a reminder; it never blocks.
func (h *Hub) SendToAgent(agent int64, data []byte) (int, error) {
	if agent == 0 {
		return 0, nil
	}
	msg, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
	if err != nil {
		return 0, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for p := range h.pages {
		if p.agent == agent {
			p.enqueue(outgoing{msg: msg, size: len(data)})
			n++
		}
	}
	return n, nil
}

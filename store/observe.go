package store

import (
	"context"
	"sync/atomic"
)

// Accepted is what one accepted send began, for the metrics.
type Accepted struct {
	// Messages counts the business messages queued.
	Messages int
	// Rollovers counts the sessions the send opened past the cap (S3).
	Rollovers int
	// Billed counts the sessions the send billed (S7): each rollover, and the
	// session it went into when no business message counted in it yet.
	Billed int
}

// acceptHook is where OnAccept's function is kept; shared by the copies
// WithClock makes.
type acceptHook = atomic.Pointer[func(Accepted)]

// OnAccept sets fn to hear of every send accepted (AcceptBusinessMessages,
// RetryMessage), after its commit and never for one that rolled back. It is
// safe to call from any goroutine; fn must be quick and not write.
func (s *Store) OnAccept(fn func(Accepted)) { s.accepted.Store(&fn) }

// notifyAccepted tells OnAccept's function about a committed send.
func (s *Store) notifyAccepted(a Accepted) {
	if fn := s.accepted.Load(); fn != nil && *fn != nil && a.Messages > 0 {
		(*fn)(a)
	}
}

// acceptedBy works out what a send accepted into a conversation began: the
// session state is read before the send (inside its transaction), msgs are
// what the send stored. A business message that is the first of its session
// opened it as a rollover: a client-opened session starts with the client's.
func acceptedBy(ctx context.Context, tx queryer, conversationID int64, send func() ([]Message, error)) ([]Message, Accepted, error) {
	before, _, err := loadState(ctx, tx, conversationID)
	if err != nil {
		return nil, Accepted{}, err
	}
	msgs, err := send()
	if err != nil {
		return nil, Accepted{}, err
	}
	a := Accepted{Messages: len(msgs)}
	for _, m := range msgs {
		if m.FirstOfSession {
			a.Rollovers++
		}
	}
	a.Billed = a.Rollovers
	if len(msgs) > 0 && !msgs[0].FirstOfSession && before.Current != nil && before.Current.Used == 0 {
		a.Billed++
	}
	return msgs, a, nil
}

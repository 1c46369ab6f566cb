// Package live wakes the open pages when something changed.
//
// The broker carries no payload: it only says "there are new events". Each
// subscriber then reads the events after its own cursor from the store's events
// table and renders them. Replay after a reconnect and live delivery are the same
// code path, so nothing is missed and nothing is shown twice, and a slow browser
// only falls behind on its own cursor: Publish never blocks on anyone.
package live

import "sync"

// Broker fans a wake-up out to every subscriber.
type Broker struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// NewBroker returns a broker with no subscribers.
func NewBroker() *Broker {
	return &Broker{subs: make(map[*Subscription]struct{})}
}

// Subscription receives a value on C after every Publish. Wake-ups coalesce: C
// holds at most one pending value, which is enough because the reader catches up
// on everything after its cursor.
type Subscription struct {
	C      <-chan struct{}
	c      chan struct{}
	broker *Broker
}

// Subscribe registers a new subscriber. Call Close when done.
func (b *Broker) Subscribe() *Subscription {
	c := make(chan struct{}, 1)
	s := &Subscription{C: c, c: c, broker: b}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Close unregisters the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	s.broker.mu.Lock()
	delete(s.broker.subs, s)
	s.broker.mu.Unlock()
}

// Publish wakes every subscriber without waiting for any of them.
func (b *Broker) Publish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.c <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// Subscribers returns how many subscriptions are open.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"sessiondesk/session"
)

func gauges(t *testing.T, s *Store) Gauges {
	t.Helper()
	var g Gauges
	if err := s.Read(context.Background(), func(r *Reader) error {
		var err error
		g, err = r.Gauges(context.Background())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return g
}

// The outbox gauges follow the queue: the oldest queued message is the
// first accepted; a refused one leaves it, an unconfirmed one is counted
// apart.
func TestGaugesFollowTheOutbox(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	if g := gauges(t, s); g != (Gauges{}) {
		t.Errorf("empty store: %+v", g)
	}
	a := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	b := receive(t, s, "+375298603939", "Hi").Message.ConversationID
	first := clk.Now()
	sendText(s, a, "one", false)
	clk.Add(time.Minute)
	msgs, err := sendText(s, b, "two", false)
	if err != nil {
		t.Fatal(err)
	}
	if g := gauges(t, s); g.Queued != 2 || !g.OldestQueued.Equal(first) || g.Unconfirmed != 0 {
		t.Errorf("two queued: %+v, want 2 queued since %s", g, first)
	}
	if err := s.RejectMessage(ctx, MessageRef{ID: msgs[0].ID}, "Not Viber User"); err != nil {
		t.Fatal(err)
	}
	q, _ := s.Queued(ctx, 10)
	if err := s.BeginTry(ctx, q[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkUnconfirmed(ctx, q[0].ID, "answer lost", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if g := gauges(t, s); g.Queued != 0 || !g.OldestQueued.IsZero() || g.Unconfirmed != 1 {
		t.Errorf("after a refusal and a lost answer: %+v, want 0 queued, 1 unconfirmed", g)
	}
}

// OnAccept hears each committed send once: its messages, the sessions it
// billed (the first business message of a session, a rollover) and the
// rollovers; nothing for a refused send.
func TestOnAcceptCountsBillingAndRollovers(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	var (
		mu  sync.Mutex
		got Accepted
	)
	s.OnAccept(func(a Accepted) {
		mu.Lock()
		defer mu.Unlock()
		got.Messages += a.Messages
		got.Billed += a.Billed
		got.Rollovers += a.Rollovers
	})
	take := func() Accepted {
		mu.Lock()
		defer mu.Unlock()
		a := got
		got = Accepted{}
		return a
	}
	a := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	receive(t, s, "+375298603940", "Hey") // never answered: never billed
	sendText(s, a, "one", false)
	sendText(s, a, "two", false)
	if g := take(); g != (Accepted{Messages: 2, Billed: 1}) {
		t.Errorf("two replies in one session: %+v, want 2 messages, 1 billed", g)
	}
	// Many agents answer a new client at once: the session is billed once.
	b := receive(t, s, "+375298603939", "Hi").Message.ConversationID
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { sendText(s, b, "race", false) })
	}
	wg.Wait()
	if g := take(); g != (Accepted{Messages: 4, Billed: 1}) {
		t.Errorf("four agents at once: %+v, want 4 messages, 1 billed", g)
	}
	// A refusal is nothing.
	if _, err := s.AcceptBusinessMessages(ctx, BusinessSend{ConversationID: a,
		Parts: []session.Part{{Kind: session.Text, Text: ""}}}); err == nil {
		t.Fatal("an empty text was accepted")
	}
	if g := take(); g != (Accepted{}) {
		t.Errorf("refused send heard: %+v", g)
	}
	// Past the cap: the 61st opens a billed rollover.
	receive(t, s, "+375298603938", "ok")
	fill(t, s, a, "+375298603938", 58)
	take()
	clk.Add(time.Hour)
	msgs, err := sendText(s, a, "61st", true)
	if err != nil {
		t.Fatal(err)
	}
	if g := take(); g != (Accepted{Messages: 1, Billed: 1, Rollovers: 1}) {
		t.Errorf("rollover: %+v, want 1 message, 1 billed, 1 rollover", g)
	}
	// "Send again" of a refused message is a send like any other.
	if err := s.RejectMessage(ctx, MessageRef{ID: msgs[0].ID}, "Not Viber User"); err != nil {
		t.Fatal(err)
	}
	receive(t, s, "+375298603938", "still there")
	if _, err := s.RetryMessage(ctx, msgs[0].ID, 0, true); err != nil {
		t.Fatal(err)
	}
	if g := take(); g.Messages != 1 || g.Billed != 1 {
		t.Errorf("send again into an unbilled session: %+v, want 1 message, 1 billed", g)
	}
}

// The search index's lag is a gauge: the messages it has not reached.
func TestGaugesSayHowFarSearchIsBehind(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	s.search.stop() // no background indexer: only IndexSearch moves it
	<-s.search.done
	for i := range 3 {
		receive(t, s, fmt.Sprintf("+37529860393%d", i), "Hello")
	}
	if g := gauges(t, s); g.SearchBehind != 3 {
		t.Errorf("three messages not indexed: behind %d, want 3", g.SearchBehind)
	}
	if err := s.IndexSearch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g := gauges(t, s); g.SearchBehind != 0 {
		t.Errorf("after indexing: behind %d, want 0", g.SearchBehind)
	}
}

package store

import (
	"context"
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

// The scrape-time figures follow the outbox and the sessions: the oldest
// queued message is the first accepted, a released session is no longer
// billed, a rollover is a session of its own, billed.
func TestGaugesFollowTheOutboxAndSessions(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	if g := gauges(t, s); g.Queued != 0 || !g.OldestQueued.IsZero() || len(g.Sessions) != 0 {
		t.Errorf("empty store: %+v", g)
	}
	a := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	b := receive(t, s, "+375298603939", "Hi").Message.ConversationID
	receive(t, s, "+375298603940", "Hey") // never answered: not billed
	first := clk.Now()
	sendText(s, a, "one", false)
	clk.Add(time.Minute)
	msgs, err := sendText(s, b, "two", false)
	if err != nil {
		t.Fatal(err)
	}
	g := gauges(t, s)
	if g.Queued != 2 || !g.OldestQueued.Equal(first) || g.Sessions["client"] != 3 || g.Billed["client"] != 2 {
		t.Errorf("two queued to two clients: %+v, want 2 queued since %s, 3 sessions, 2 billed", g, first)
	}
	// B's only message is refused: its session was never billed.
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
	g = gauges(t, s)
	if g.Queued != 0 || !g.OldestQueued.IsZero() || g.Unconfirmed != 1 || g.Billed["client"] != 1 {
		t.Errorf("after a refusal and a lost answer: %+v, want 0 queued, 1 unconfirmed, 1 billed", g)
	}
	// A rollover past the cap opens a billed session of its own.
	fill(t, s, a, "+375298603938", 59)
	clk.Add(time.Hour)
	if _, err := sendText(s, a, "61st", true); err != nil {
		t.Fatal(err)
	}
	if g = gauges(t, s); g.Sessions["rollover"] != 1 || g.Billed["rollover"] != 1 || g.Sessions["client"] != 3 {
		t.Errorf("after a rollover: %+v", g)
	}
}

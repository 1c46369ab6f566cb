package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"sessiondesk/session"
)

// eventIDs lists every event id kept, oldest first.
func eventIDs(t *testing.T, s *Store) []int64 {
	t.Helper()
	var ids []int64
	if err := s.Read(context.Background(), func(r *Reader) error {
		evs, err := r.EventsAfter(context.Background(), 0, 1_000_000)
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func firstKept(t *testing.T, s *Store) int64 {
	t.Helper()
	var first int64
	if err := s.Read(context.Background(), func(r *Reader) error {
		var err error
		first, err = r.FirstKeptEventID(context.Background())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return first
}

func countRows(t *testing.T, s *Store, table string) int64 {
	t.Helper()
	queries := map[string]string{
		"messages": `SELECT count(*) FROM messages`,
		"events":   `SELECT count(*) FROM events`,
	}
	var n int64
	if err := s.read.QueryRow(queries[table]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Events older than the window go, in batches; newer ones and every message
// stay, and the ids keep growing after the delete.
func TestPruneEventsKeepsTheWindowAndEveryMessage(t *testing.T) {
	ctx := context.Background()
	s, clk := newStore(t, session.Defaults())
	if got := firstKept(t, s); got != 1 {
		t.Errorf("first kept event of an empty table: %d, want 1", got)
	}
	const window = 720 * time.Hour
	for range 21 { // a number of events that is not a multiple of the batch
		receive(t, s, "+375298603938", "old")
		clk.Add(time.Minute)
	}
	oldIDs := eventIDs(t, s)
	clk.Add(window)
	for range 4 {
		receive(t, s, "+375298603939", "new")
	}
	keptIDs := eventIDs(t, s)[len(oldIDs):]
	messages := countRows(t, s, "messages")

	n, err := s.PruneEvents(ctx, clk.Now().Add(-window), 5)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(oldIDs)) {
		t.Errorf("pruned %d events, want the %d older than the window", n, len(oldIDs))
	}
	if got := eventIDs(t, s); !slices.Equal(got, keptIDs) {
		t.Errorf("events kept %v, want %v", got, keptIDs)
	}
	if got := countRows(t, s, "messages"); got != messages {
		t.Errorf("%d messages after pruning, want %d", got, messages)
	}
	if got, want := firstKept(t, s), keptIDs[0]; got != want {
		t.Errorf("first kept event %d, want %d", got, want)
	}
	// Nothing more to do: a second run deletes nothing.
	if n, err := s.PruneEvents(ctx, clk.Now().Add(-window), 5); err != nil || n != 0 {
		t.Errorf("second prune: %d, %v; want 0", n, err)
	}

	// Everything ages out; the table empties and the next event still gets a
	// new id, which FirstKeptEventID announced.
	clk.Add(window + time.Hour)
	last := keptIDs[len(keptIDs)-1]
	if n, err := s.PruneEvents(ctx, clk.Now().Add(-window), 2); err != nil || n != int64(len(keptIDs)) {
		t.Fatalf("prune all: %d, %v; want %d", n, err, len(keptIDs))
	}
	if got := firstKept(t, s); got != last+1 {
		t.Errorf("first kept event of an emptied table: %d, want %d", got, last+1)
	}
	receive(t, s, "+375298603938", "after")
	if ids := eventIDs(t, s); len(ids) == 0 || ids[0] != last+1 {
		t.Errorf("events after emptying: %v, want ids from %d on (AUTOINCREMENT)", ids, last+1)
	}
	if got := countRows(t, s, "messages"); got != messages+1 {
		t.Errorf("%d messages, want %d", got, messages+1)
	}
}

// A clock put back stamps a newer id with an older time: pruning never deletes
// an event younger than the window, and what it keeps stays one range of ids.
func TestPruneEventsNeverDeletesYoungerEventsWhenTheClockWentBack(t *testing.T) {
	ctx := context.Background()
	s, clk := newStore(t, session.Defaults())
	const window = 720 * time.Hour
	receive(t, s, "+375298603938", "old")
	old := eventIDs(t, s)
	clk.Add(2 * window)
	receive(t, s, "+375298603938", "new")
	young := eventIDs(t, s)[len(old):]
	clk.Set(t0) // put back: this event is stamped as old as the first
	receive(t, s, "+375298603938", "stamped old")
	clk.Set(t0.Add(2 * window))

	if _, err := s.PruneEvents(ctx, clk.Now().Add(-window), 0); err != nil {
		t.Fatal(err)
	}
	got := eventIDs(t, s)
	if len(got) == 0 || got[0] != young[0] {
		t.Fatalf("events kept %v, want every id from %d on", got, young[0])
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Errorf("events kept %v are not one range of ids", got)
		}
	}
}

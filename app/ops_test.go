package app

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"sessiondesk/clock"
	"sessiondesk/config"
	"sessiondesk/session"
	"sessiondesk/store"
)

// The inbox prunes events older than the retention when it starts, and keeps
// every message.
func TestStartPrunesOldEvents(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	old := clock.NewManual(t0.Add(-31 * 24 * time.Hour))
	st, err := store.Open(ctx, filepath.Join(data, "sessiondesk.db"), store.Options{Rules: session.Defaults(), Now: old.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"one", "two", "three"} {
		if _, err := st.ReceiveClientMessage(ctx, store.ClientMessage{Phone: "+375298603938", Kind: session.Text, Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	ta := startApp(t, func(c *config.Config) { c.DataDir = data })
	ta.clientWrites(t, "+375298603938", "four") // within the window
	var events []store.Event
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ta.Store.Read(ctx, func(r *store.Reader) error {
			events, err = r.EventsAfter(ctx, 0, 100)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(events) > 0 && events[0].At.After(t0.Add(-time.Hour)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old events are still there: %+v", events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := ta.Store.Read(ctx, func(r *store.Reader) error {
		msgs, err := r.Messages(ctx, 1, 10)
		if len(msgs) != 4 {
			t.Errorf("%d messages after pruning, want 4", len(msgs))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// A second inbox on the same data folder is refused while the first runs, and
// starts once it has stopped.
func TestSecondInboxOnOneDataFolderIsRefused(t *testing.T) {
	ta := startApp(t)
	cfg, err := config.Parse([]string{"--addr", "127.0.0.1:0", "--data", ta.data, "--no-demo"},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), cfg, Options{}); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("second inbox on %s: %v, want ErrInUse", ta.data, err)
	}
	if err := ta.shutdown(t); err != nil {
		t.Fatal(err)
	}
	runApp(t, cfg, clock.NewManual(t0), Options{})
}

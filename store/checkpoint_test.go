package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sessiondesk/clock"
	"sessiondesk/session"
)

// TestCheckpointsInTheBackground: what the writer commits reaches the
// database file itself, with nothing asking, through the background
// checkpoints; the writer's own threshold is only the high fallback.
func TestCheckpointsInTheBackground(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "test.db")
	clk := clock.NewManual(t0)
	s, err := Open(context.Background(), path, Options{Rules: session.Defaults(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var threshold int
	if err := s.write.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&threshold); err != nil {
		t.Fatal(err)
	}
	if threshold != 16000 {
		t.Errorf("the writer checkpoints past %d WAL pages, want 16000 (the fallback)", threshold)
	}

	const n = 20
	for i := range n {
		receive(t, s, fmt.Sprintf("+3579900%04d", i), "hello")
	}
	// The database file alone (a copy without its -wal) holds what the
	// checkpoints copied into it.
	inFile := func() (int, error) {
		copyPath := filepath.Join(t.TempDir(), "copy.db")
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		if err := os.WriteFile(copyPath, b, 0o600); err != nil {
			return 0, err
		}
		db, err := sql.Open("sqlite3", "file:"+copyPath+"?mode=ro")
		if err != nil {
			return 0, err
		}
		defer db.Close()
		var got int
		err = db.QueryRow(`SELECT count(*) FROM messages`).Scan(&got)
		return got, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := inFile()
		if err == nil && got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the database file holds %d messages (err %v) 10 s after %d were committed: no background checkpoint (passes %d, failed %d)",
				got, err, n, s.checkpoints.passes.Load(), s.checkpoints.failed.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := s.Checkpoints(); got.Passes == 0 || got.WALCopied == 0 || got.WALCopied > got.WALPages {
		t.Errorf("checkpoints: %+v, want passes, and some of the WAL's pages copied", got)
	}
	if f := s.checkpoints.failed.Load(); f != 0 {
		t.Errorf("%d checkpoints failed", f)
	}
}

// TestCheckpointerStopsWithTheStore: closing the store stops the
// checkpoints and folds the rest of the WAL in, so the database file alone
// holds everything and no -wal is left.
func TestCheckpointerStopsWithTheStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "test.db")
	s, err := Open(context.Background(), path, Options{Rules: session.Defaults(), Now: clock.NewManual(t0).Now})
	if err != nil {
		t.Fatal(err)
	}
	receive(t, s, "+35799001234", "hello")
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case <-s.checkpoints.done:
	default:
		t.Fatal("the checkpointer still runs after Close")
	}
	if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
		t.Errorf("a -wal is left after Close (stat: %v)", err)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got int
	if err := db.QueryRow(`SELECT count(*) FROM messages`).Scan(&got); err != nil || got != 1 {
		t.Fatalf("messages in the closed database: %d (%v), want 1", got, err)
	}
}

// TestCheckpointFailureIsCounted: a pass that fails is counted (the metrics
// show it), the writes go on, and the next write's pass tries again.
func TestCheckpointFailureIsCounted(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	// The checkpointer's connection breaks under it.
	if err := s.checkpoints.db.Close(); err != nil {
		t.Fatal(err)
	}
	receive(t, s, "+35799001234", "hello")
	deadline := time.Now().Add(10 * time.Second)
	for s.Checkpoints().Failed == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no failed pass counted 10 s after a write: %+v", s.Checkpoints())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Later writes still commit, and wake another (failing) pass.
	receive(t, s, "+35799001234", "still there?")
	for s.Checkpoints().Failed < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the next write's pass did not run: %+v", s.Checkpoints())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.Checkpoints(); got.Passes != 0 || got.WALPages != 0 {
		t.Errorf("failed passes counted as done: %+v", got)
	}
}

package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"sessiondesk/clock"
	"sessiondesk/session"
)

func openStoreAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, Options{Rules: session.Defaults(), Now: clock.NewManual(t0).Now})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return s
}

// indexed is how far the index has gone.
func indexed(s *Store) int64 { return s.search.indexed() }

// TestSearchIndexOfAnotherDatabaseIsNotTrusted: a database file copied over
// another one keeps the other's index file beside it. Both have a message 1;
// the old index would answer "apple" with the new database's message 1.
func TestSearchIndexOfAnotherDatabaseIsNotTrusted(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	sa := openStoreAt(t, a)
	ma := receiveFrom(t, sa, "+375298603938", "Olga", "apple pie").Message
	if got := matchedIDs(search(t, sa, "apple", 20)); !slices.Equal(got, []int64{ma.ID}) {
		t.Fatalf("apple in a: %v", got)
	}
	sa.Close()
	sb := openStoreAt(t, b)
	mb := receiveFrom(t, sb, "+375298603938", "Olga", "banana split").Message
	sb.Close()
	if ma.ID != mb.ID {
		t.Fatalf("the test needs the same message id in both: %d, %d", ma.ID, mb.ID)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(a + suffix)
	}
	if err := copyFile(b, a); err != nil {
		t.Fatal(err)
	}

	s := openStoreAt(t, a)
	defer s.Close()
	if got := matchedIDs(search(t, s, "apple", 20)); len(got) != 0 {
		t.Errorf("apple after b was copied over a: %v, want nothing", got)
	}
	if got := matchedIDs(search(t, s, "banana", 20)); !slices.Equal(got, []int64{mb.ID}) {
		t.Errorf("banana after b was copied over a: %v", got)
	}
}

// TestSearchIndexAfterRestoringAnOlderCopy: the index saw messages the
// restored backup does not have; the next message takes the id of one of
// them and must be found by its own words only.
func TestSearchIndexAfterRestoringAnOlderCopy(t *testing.T) {
	dir := t.TempDir()
	path, backup := filepath.Join(dir, "inbox.db"), filepath.Join(dir, "backup.db")
	ctx := context.Background()
	s := openStoreAt(t, path)
	receiveFrom(t, s, "+375298603938", "Olga", "apple pie")
	if _, err := Backup(ctx, path, backup, false); err != nil {
		t.Fatal(err)
	}
	later := receiveFrom(t, s, "+375298603938", "Olga", "cherry tart").Message
	if got := matchedIDs(search(t, s, "cherry", 20)); !slices.Equal(got, []int64{later.ID}) {
		t.Fatalf("cherry before the restore: %v", got)
	}
	s.Close()
	if _, _, err := Restore(ctx, backup, path, t0); err != nil {
		t.Fatal(err)
	}

	s = openStoreAt(t, path)
	defer s.Close()
	takeTheID(t, s, later.ID)
	if got := matchedIDs(search(t, s, "apple", 20)); len(got) != 1 {
		t.Errorf("apple after the restore: %v", got)
	}
}

// takeTheID stores a client message "banana split" that must get id (the id
// of a "cherry tart" message the database no longer has) and checks that
// the search finds it by its own words and nothing by the old ones.
func takeTheID(t *testing.T, s *Store, id int64) {
	t.Helper()
	reused := receiveFrom(t, s, "+375298603938", "Olga", "banana split").Message
	if reused.ID != id {
		t.Fatalf("the test needs the id reused: %d, want %d", reused.ID, id)
	}
	if got := matchedIDs(search(t, s, "cherry", 20)); len(got) != 0 {
		t.Errorf("cherry, whose message is gone: %v, want nothing", got)
	}
	if got := matchedIDs(search(t, s, "banana", 20)); !slices.Equal(got, []int64{id}) {
		t.Errorf("banana: %v, want [%d]", got, id)
	}
}

// TestSearchIndexDamagedFileIsBuiltAgain: the index is derived data; a file
// that is no database does not stop the inbox.
func TestSearchIndexDamagedFileIsBuiltAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inbox.db")
	s := openStoreAt(t, path)
	m := receiveFrom(t, s, "+375298603938", "Olga", "apple pie").Message
	s.Close()
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(SearchPath(path) + suffix)
	}
	garbage := make([]byte, 8192)
	for i := range garbage {
		garbage[i] = byte(i * 7)
	}
	if err := os.WriteFile(SearchPath(path), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openStoreAt(t, path)
	defer s.Close()
	if got := matchedIDs(search(t, s, "apple", 20)); !slices.Equal(got, []int64{m.ID}) {
		t.Errorf("apple with the index file damaged: %v", got)
	}
}

// TestSearchIndexDeletedNewestIdReused: the newest message goes and a new
// one takes its id before or after the indexer sees the change: the new one
// is found by its words, the old words find nothing.
func TestSearchIndexDeletedNewestIdReused(t *testing.T) {
	for _, indexBetween := range []bool{false, true} {
		t.Run(fmt.Sprintf("indexed between: %v", indexBetween), func(t *testing.T) {
			s, _ := newStore(t, session.Defaults())
			ctx := context.Background()
			receiveFrom(t, s, "+375298603938", "Olga", "apple pie")
			gone := receiveFrom(t, s, "+375298603938", "Olga", "cherry tart").Message
			if got := matchedIDs(search(t, s, "cherry", 20)); len(got) != 1 {
				t.Fatalf("cherry: %v", got)
			}
			if _, err := s.write.ExecContext(ctx, `DELETE FROM events`); err != nil {
				t.Fatal(err)
			}
			if _, err := s.write.ExecContext(ctx, `DELETE FROM messages WHERE id = ?`, gone.ID); err != nil {
				t.Fatal(err)
			}
			if indexBetween {
				if err := s.IndexSearch(ctx); err != nil {
					t.Fatal(err)
				}
			}
			takeTheID(t, s, gone.ID)
		})
	}
}

// TestSearchIndexBuildsInTheBackground: without any search, the indexer
// reaches every message stored, in steps of searchBatch.
func TestSearchIndexBuildsInTheBackground(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	var last int64
	for i := range 5 {
		last = receiveFrom(t, s, fmt.Sprintf("+3752986039%02d", i), "Olga", fmt.Sprintf("question number %d", i)).Message.ID
	}
	deadline := time.Now().Add(20 * time.Second)
	for indexed(s) < last {
		if time.Now().After(deadline) {
			t.Fatalf("indexed to %d after 20 s, want %d", indexed(s), last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSearchWhileTheIndexIsBuiltSaysSo: a search that could not index
// everything first says its results may be incomplete; the next ones go on
// from there until none is.
func TestSearchWhileTheIndexIsBuiltSaysSo(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	s.search.stop() // no background indexer: the searches alone index
	<-s.search.done
	s.search.catchUp = 2
	for i := range 5 {
		receiveFrom(t, s, fmt.Sprintf("+3752986039%02d", i), "Olga", fmt.Sprintf("question number %d", i))
	}
	ctx := context.Background()
	q, err := ParseSearch("question")
	if err != nil {
		t.Fatal(err)
	}
	var incomplete []bool
	var found []int
	for range 4 {
		err := s.Read(ctx, func(r *Reader) error {
			res, err := r.Search(ctx, q, 20)
			incomplete = append(incomplete, r.SearchIncomplete())
			found = append(found, len(matchedIDs(res)))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := []bool{true, true, false, false}; !slices.Equal(incomplete, want) {
		t.Errorf("incomplete: %v, want %v", incomplete, want)
	}
	if len(found) != 4 || found[0] != 2 || found[3] != 5 {
		t.Errorf("messages found by each search: %v, want 2 first and 5 last", found)
	}
}

// TestSearchIndexConcurrentSearchesAndWrites: more searches at once than
// the pool has read connections, each indexing what is new, with the
// background indexer, IndexSearch and the writes all going (run with -race).
// Nothing waits for ever (a search holds its read connection when it waits
// for the index; the indexer must not hold the index while it waits for a
// connection), and at the end every message is found once.
func TestSearchIndexConcurrentSearchesAndWrites(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	q, err := ParseSearch("parcel")
	if err != nil {
		t.Fatal(err)
	}
	const clients = 40
	searchers := 2*max(4, runtime.NumCPU()) + 2 // more than the read pool's connections
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, searchers+1)
	// until runs fn again and again until stop, reporting its first error.
	until := func(fn func() error) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := fn(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range searchers {
		until(func() error {
			return s.Read(ctx, func(r *Reader) error { _, err := r.Search(ctx, q, 20); return err })
		})
	}
	until(func() error { return s.IndexSearch(ctx) })
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := range clients {
			if _, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: fmt.Sprintf("+3752986039%02d", i), Name: "Olga",
				Kind: session.Text, Text: fmt.Sprintf("where is my parcel %d", i)}); err != nil {
				errs <- err
				return
			}
		}
	}()
	// A hang is this test's failure, not the test binary's timeout.
	select {
	case <-finished:
	case <-time.After(2 * time.Minute):
		t.Fatal("the writes did not finish in 2 minutes: the searches and the indexer wait for each other")
	}
	close(stop)
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Minute):
		t.Fatal("the searches did not stop in 2 minutes: they and the indexer wait for each other")
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	res := search(t, s, "parcel", MaxSearchResults)
	ids := matchedIDs(res)
	slices.Sort(ids)
	if len(res) != clients || len(slices.Compact(ids)) != clients {
		t.Errorf("found %d conversations, %d distinct messages; want %d each", len(res), len(ids), clients)
	}
	var n int
	if err := s.search.db.QueryRowContext(ctx, `SELECT count(*) FROM messages_fts`).Scan(&n); err != nil || n != clients {
		t.Errorf("index entries: %d, %v; want %d", n, err, clients)
	}
}

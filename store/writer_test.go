package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mattn/go-sqlite3"

	"sessiondesk/session"
)

// newWriterDB opens a bare database for the group writer: one connection, a
// table of rows the requests insert.
func newWriterDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "w.db")+"?_busy_timeout=5000&_journal_mode=WAL&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE rows (v TEXT NOT NULL UNIQUE)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func insertReq(ctx context.Context, v string) *writeReq {
	return &writeReq{ctx: ctx, result: make(chan error, 1), fn: func(ctx context.Context, tx queryer) (bool, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO rows (v) VALUES (?)`, v)
		return err == nil, err
	}}
}

func storedRows(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT v FROM rows ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// A batch commits once; a request that fails is undone alone, and every
// request learns its own outcome.
func TestGroupCommitUndoesOnlyTheFailedRequest(t *testing.T) {
	db := newWriterDB(t)
	var commits atomic.Int32
	w := newGroupWriter(db, func() { commits.Add(1) }, maxBatch)
	defer w.close()
	ctx := context.Background()
	refused := errors.New("refused by the rules")
	half := &writeReq{ctx: ctx, result: make(chan error, 1), fn: func(ctx context.Context, tx queryer) (bool, error) {
		// Writes, then refuses: its row must not survive.
		if _, err := tx.ExecContext(ctx, `INSERT INTO rows (v) VALUES ('half')`); err != nil {
			return false, err
		}
		return false, refused
	}}
	dup := insertReq(ctx, "one") // violates UNIQUE after the first
	batch := []*writeReq{insertReq(ctx, "one"), half, dup, insertReq(ctx, "two")}
	w.runBatch(batch)

	if err := <-batch[0].result; err != nil {
		t.Errorf("first: %v", err)
	}
	if err := <-half.result; !errors.Is(err, refused) {
		t.Errorf("refused request got %v", err)
	}
	if err := <-dup.result; err == nil {
		t.Error("a duplicate row was accepted")
	}
	if err := <-batch[3].result; err != nil {
		t.Errorf("last: %v", err)
	}
	if got := fmt.Sprint(storedRows(t, db)); got != "[one two]" {
		t.Errorf("stored %s, want [one two]", got)
	}
	if commits.Load() != 1 {
		t.Errorf("Committed called %d times for one batch, want 1", commits.Load())
	}
	// The counts name the commit once and only the two writes it kept.
	if c, n := w.commits.Load(), w.writes.Load(); c != 1 || n != 2 {
		t.Errorf("counted %d commits and %d writes, want 1 and 2", c, n)
	}
}

// A caller whose context ended before its turn is answered with that error
// and its work never runs; the others commit.
func TestGroupCommitSkipsCancelledRequests(t *testing.T) {
	db := newWriterDB(t)
	w := newGroupWriter(db, func() {}, maxBatch)
	defer w.close()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	gone := insertReq(cancelled, "gone")
	kept := insertReq(context.Background(), "kept")
	w.runBatch([]*writeReq{gone, kept})
	if err := <-gone.result; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request got %v", err)
	}
	if err := <-kept.result; err != nil {
		t.Errorf("kept: %v", err)
	}
	if got := fmt.Sprint(storedRows(t, db)); got != "[kept]" {
		t.Errorf("stored %s, want [kept]", got)
	}
}

type callerKey struct{}

// A caller that goes away while its write runs does not undo it: the write
// ends and commits, alone or in a batch, and the caller is told so. Its work
// sees the caller's values through a context that cannot end.
func TestGroupCommitFinishesAWriteWhoseCallerLeft(t *testing.T) {
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("batch of %d", size), func(t *testing.T) {
			db := newWriterDB(t)
			w := newGroupWriter(db, func() {}, maxBatch)
			defer w.close()
			caller, leave := context.WithCancel(context.WithValue(context.Background(), callerKey{}, "agent 7"))
			defer leave()
			var sawValue any
			var sawDone bool
			leaver := &writeReq{ctx: caller, result: make(chan error, 1), fn: func(ctx context.Context, tx queryer) (bool, error) {
				leave() // the request's connection closes mid-write
				sawValue, sawDone = ctx.Value(callerKey{}), ctx.Done() != nil
				if _, err := tx.ExecContext(ctx, `INSERT INTO rows (v) VALUES ('left')`); err != nil {
					return false, err
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO rows (v) VALUES ('after')`)
				return err == nil, err
			}}
			batch := []*writeReq{leaver}
			for i := 1; i < size; i++ {
				batch = append(batch, insertReq(context.Background(), fmt.Sprint("other", i)))
			}
			w.runBatch(batch)
			for i, r := range batch {
				if err := <-r.result; err != nil {
					t.Errorf("request %d: %v", i, err)
				}
			}
			want := []string{"left", "after"}
			for i := 1; i < size; i++ {
				want = append(want, fmt.Sprint("other", i))
			}
			if got := storedRows(t, db); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("stored %q, want %q", got, want)
			}
			if sawValue != "agent 7" || sawDone {
				t.Errorf("the work saw value %v and a context that can end: %v", sawValue, sawDone)
			}
		})
	}
}

// A request that breaks the shared transaction itself (here it ends it)
// costs the others nothing: they run again alone and commit.
func TestGroupCommitFallsBackWhenTheSharedTransactionBreaks(t *testing.T) {
	db := newWriterDB(t)
	var commits atomic.Int32
	w := newGroupWriter(db, func() { commits.Add(1) }, maxBatch)
	defer w.close()
	ctx := context.Background()
	var breakerRuns int
	breaker := &writeReq{ctx: ctx, result: make(chan error, 1), fn: func(ctx context.Context, tx queryer) (bool, error) {
		breakerRuns++
		if breakerRuns == 1 {
			// Ends the shared transaction under everyone's feet.
			if _, err := tx.ExecContext(ctx, `ROLLBACK`); err != nil {
				return false, err
			}
			return false, errors.New("broke it")
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO rows (v) VALUES ('breaker')`)
		return err == nil, err
	}}
	batch := []*writeReq{insertReq(ctx, "a"), breaker, insertReq(ctx, "b")}
	w.runBatch(batch)
	for i, r := range batch {
		if err := <-r.result; err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if got := fmt.Sprint(storedRows(t, db)); got != "[a breaker b]" {
		t.Errorf("stored %s, want [a breaker b]: every request once", got)
	}
	if commits.Load() != 3 {
		t.Errorf("Committed called %d times, want 3 (one per lone transaction)", commits.Load())
	}
	// The shared transaction that broke committed nothing: it is not counted.
	if c, n := w.commits.Load(), w.writes.Load(); c != 3 || n != 3 {
		t.Errorf("counted %d commits and %d writes, want 3 and 3", c, n)
	}
}

// A write function that panics fails its own request, with its writes
// undone, and nobody else's: the panic runs on the writer's goroutine, where
// no handler's recover reaches, and must not end the process.
func TestGroupCommitAnswersAPanicAsThatRequestsError(t *testing.T) {
	db := newWriterDB(t)
	w := newGroupWriter(db, func() {}, maxBatch)
	defer w.close()
	ctx := context.Background()
	panicking := func(v string) *writeReq {
		return &writeReq{ctx: ctx, result: make(chan error, 1), fn: func(ctx context.Context, tx queryer) (bool, error) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO rows (v) VALUES (?)`, v); err != nil {
				return false, err
			}
			panic("a bug in the write of " + v)
		}}
	}
	batch := []*writeReq{insertReq(ctx, "one"), panicking("shared"), insertReq(ctx, "two")}
	w.runBatch(batch)
	var pe *PanicError
	if err := <-batch[1].result; !errors.As(err, &pe) || !strings.Contains(err.Error(), "a bug in the write of shared") || len(pe.Stack) == 0 {
		t.Errorf("the panicking request: %v, want a *PanicError naming the panic, with its stack", err)
	}
	for _, i := range []int{0, 2} {
		if err := <-batch[i].result; err != nil {
			t.Errorf("request %d of the batch: %v", i, err)
		}
	}
	if c, n := w.commits.Load(), w.writes.Load(); c != 1 || n != 2 {
		t.Errorf("counted %d commits and %d writes, want 1 and 2", c, n)
	}
	// Alone, through the writer's own loop, and the writer goes on.
	if err := w.do(ctx, panicking("alone").fn); !errors.As(err, &pe) {
		t.Errorf("a lone panicking write: %v, want a *PanicError", err)
	}
	if err := w.do(ctx, insertReq(ctx, "after").fn); err != nil {
		t.Fatalf("a write after the panics: %v", err)
	}
	if got := fmt.Sprint(storedRows(t, db)); got != "[one two after]" {
		t.Errorf("stored %s, want [one two after]: nothing of the panicking writes", got)
	}
}

// A batch whose every request was refused writes nothing, so it counts no
// commit, as the same requests one by one would not.
func TestGroupCommitCountsNoCommitForARefusedBatch(t *testing.T) {
	db := newWriterDB(t)
	var woken atomic.Int32
	w := newGroupWriter(db, func() { woken.Add(1) }, maxBatch)
	defer w.close()
	ctx := context.Background()
	refused := func() *writeReq {
		return &writeReq{ctx: ctx, result: make(chan error, 1), fn: func(ctx context.Context, tx queryer) (bool, error) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO rows (v) VALUES ('refused')`); err != nil {
				return false, err
			}
			return true, errors.New("refused by the rules")
		}}
	}
	batch := []*writeReq{refused(), refused(), refused()}
	w.runBatch(batch)
	for i, r := range batch {
		if err := <-r.result; err == nil {
			t.Errorf("request %d succeeded", i)
		}
	}
	if c, n := w.commits.Load(), w.writes.Load(); c != 0 || n != 0 {
		t.Errorf("counted %d commits and %d writes, want 0 and 0", c, n)
	}
	if woken.Load() != 0 || len(storedRows(t, db)) != 0 {
		t.Errorf("woke the pages %d times, stored %v: want nothing", woken.Load(), storedRows(t, db))
	}
	// The connection is out of the transaction: the next batch can begin.
	next := []*writeReq{insertReq(ctx, "a"), insertReq(ctx, "b")}
	w.runBatch(next)
	for _, r := range next {
		if err := <-r.result; err != nil {
			t.Fatal(err)
		}
	}
	if c, n := w.commits.Load(), w.writes.Load(); c != 1 || n != 2 {
		t.Errorf("after a batch of two: %d commits and %d writes, want 1 and 2", c, n)
	}
}

// Many callers at once through the real loop: every accepted write is there
// exactly once, every refused one left nothing, and writes after close fail.
func TestGroupCommitUnderConcurrency(t *testing.T) {
	db := newWriterDB(t)
	w := newGroupWriter(db, func() {}, maxBatch)
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := fmt.Sprintf("r%03d", i)
			if i%5 == 0 {
				v = "same" // only the first of these may commit
			}
			r := insertReq(context.Background(), v)
			errs[i] = w.do(r.ctx, r.fn)
		}()
	}
	wg.Wait()
	w.close()
	accepted := 0
	for _, err := range errs {
		if err == nil {
			accepted++
		}
	}
	rows := storedRows(t, db)
	if want := n - n/5 + 1; accepted != want || len(rows) != want {
		t.Errorf("accepted %d, stored %d, want %d each", accepted, len(rows), want)
	}
	if c, got := w.commits.Load(), w.writes.Load(); got != int64(accepted) || c < 1 || c > got {
		t.Errorf("counted %d writes in %d commits, want the %d accepted in 1 to %d", got, c, accepted, accepted)
	}
	if err := w.do(context.Background(), func(context.Context, queryer) (bool, error) { return true, nil }); !errors.Is(err, errStoreClosed) {
		t.Errorf("write after close: %v", err)
	}
}

// BenchmarkConcurrentReceive measures client messages arriving from many
// webhook requests at once, with commits shared (group) and one commit per
// message (single), on the same disk in the same run.
func BenchmarkConcurrentReceive(b *testing.B) {
	for _, mode := range []struct {
		name  string
		batch int
	}{{"single", 1}, {"group", maxBatch}} {
		for _, senders := range []int{1, 8, 32, 64} {
			b.Run(fmt.Sprintf("%s/senders=%d", mode.name, senders), func(b *testing.B) {
				s, _ := newStore(b, session.Defaults())
				s.writer.close()
				s.writer = newGroupWriter(s.write, s.checkpoints.poke, mode.batch)
				b.ResetTimer()
				n := receiveConcurrently(b, s, senders, func(i int64) ClientMessage {
					return ClientMessage{Phone: fmt.Sprintf("+37529%07d", 1000000+i%500), Kind: session.Text, Text: "hello"}
				})
				b.StopTimer()
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

// receiveConcurrently stores b.N client messages (at least; each sender the
// same share), message(i) for the i-th, from senders goroutines at once, each
// with a context that can end, as an HTTP request's. It returns how many.
func receiveConcurrently(b *testing.B, s *Store, senders int, message func(i int64) ClientMessage) int64 {
	var seq atomic.Int64
	var wg sync.WaitGroup
	per := (b.N + senders - 1) / senders
	for range senders {
		wg.Go(func() {
			for range per {
				ctx, cancel := context.WithCancel(context.Background())
				_, err := s.ReceiveClientMessage(ctx, message(seq.Add(1)))
				cancel()
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return int64(per * senders)
}

// TestWriterKeepsItsJournalsInMemory: the write connection's sub-journals (a
// savepoint per request of a batch, a statement journal per statement with
// triggers) stay in memory instead of spilling to temporary files; the read
// connections keep SQLite's default, so that a large sort of a report may
// still spill to disk rather than grow the heap.
func TestWriterKeepsItsJournalsInMemory(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	const memory = 2 // PRAGMA temp_store: 0 default, 1 file, 2 memory
	var writer, reader int
	if err := s.write.QueryRow(`PRAGMA temp_store`).Scan(&writer); err != nil {
		t.Fatal(err)
	}
	if writer != memory {
		t.Errorf("the writer's temp_store is %d, want %d (memory)", writer, memory)
	}
	if err := s.read.QueryRow(`PRAGMA temp_store`).Scan(&reader); err != nil {
		t.Fatal(err)
	}
	if reader == memory {
		t.Errorf("a reader's temp_store is %d (memory), want SQLite's default", reader)
	}
	// A shared batch still undoes a refused request exactly: its savepoint's
	// pages come back from the in-memory sub-journal.
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.writeTx(context.Background(), func(ctx context.Context, tx queryer) (bool, error) {
				if _, err := tx.ExecContext(ctx, `INSERT INTO contacts (phone, phone_display, name, country, created_at)
					VALUES (?, '', 'Refused', 'DE', 0)`, fmt.Sprintf("+4915120000%03d", i)); err != nil {
					return false, err
				}
				if i%2 == 1 {
					return false, errors.New("refused")
				}
				return true, nil
			})
		})
	}
	wg.Wait()
	var kept int
	if err := s.read.QueryRow(`SELECT count(*) FROM contacts WHERE name = 'Refused'`).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if (err != nil) != (i%2 == 1) {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if kept != len(errs)/2 {
		t.Errorf("%d contacts kept, want %d: only the refused requests' writes are undone", kept, len(errs)/2)
	}
}

// A request that fails after writing leaves nothing behind, and the write
// connection goes back out of any transaction: the next request begins and
// commits on it.
func TestWriterGivesBackItsConnectionOutOfTheTransaction(t *testing.T) {
	db := newWriterDB(t)
	w := newGroupWriter(db, func() {}, maxBatch)
	defer w.close()
	ctx := context.Background()
	err := w.do(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rows (v) VALUES ('undone')`); err != nil {
			return false, err
		}
		return false, errors.New("refused after writing")
	})
	if err == nil || err.Error() != "refused after writing" {
		t.Fatalf("the failed request returned %v", err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var inTransaction bool
	if err := conn.Raw(func(dc any) error {
		inTransaction = !dc.(*sqlite3.SQLiteConn).AutoCommit()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if inTransaction {
		t.Fatal("the write connection came back inside a transaction")
	}
	if err := w.do(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO rows (v) VALUES ('kept')`)
		return err == nil, err
	}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(storedRows(t, db)); got != "[kept]" {
		t.Errorf("stored %s, want [kept]", got)
	}
}

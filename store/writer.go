package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/mattn/go-sqlite3"
)

// maxBatch bounds how many write transactions share one commit, so that one
// batch never holds the write lock for long.
const maxBatch = 64

// errStoreClosed answers a write that arrives after Close.
var errStoreClosed = errors.New("store is closed")

// groupWriter runs every write transaction of the store on its one write
// connection, and lets the transactions that are waiting for it share a commit
// (group commit). Each caller's work runs inside its own SAVEPOINT, so a
// refusal or an error undoes exactly that caller's writes and nobody else's,
// and each caller is answered only after the commit that holds its writes, so
// an answered write is as durable as before. Under no contention a batch holds
// one transaction and costs what a plain transaction costs.
//
// Batching changes no outcome: the transactions of a batch still run one after
// the other, each seeing the writes of those before it, exactly as if each had
// committed on its own.
type groupWriter struct {
	db        *sql.DB
	reqs      chan *writeReq // unbuffered: a send succeeds only when the writer takes it
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	committed func() // called after a commit that holds at least one change
	maxBatch  int
	// gens counts the commits for the readers (generation.go).
	gens generations
	// commits and writes count the commits and the requests whose work they
	// held (WriterStats).
	commits, writes atomic.Int64
}

// WriterStats count what the store's one writer committed since it opened.
type WriterStats struct {
	// Commits is how many transactions it committed; Writes how many
	// callers' write transactions (a client message, a send, a status...)
	// they held. Writes per commit is how many shared one (group commit):
	// 1 with no contention, more under a burst.
	Commits, Writes int64
}

// Writes returns the writer's counts.
func (s *Store) Writes() WriterStats {
	return WriterStats{Commits: s.writer.commits.Load(), Writes: s.writer.writes.Load()}
}

// writeFunc is one caller's work in a write transaction; it reports whether it
// changed something the live pages show. tx is the writer's connection inside
// the transaction (and the request's savepoint): the writer alone begins and
// ends the transaction, and fn must not.
//
// The ctx it is given carries the caller's values but never ends: once the
// writer has taken a request, the request runs to its end and its caller
// learns whether it committed. A caller's cancel could only do harm there:
// interrupting a statement stops the connection the whole batch shares, and
// the driver runs every statement of a context that can end on a goroutine of
// its own, so that it can interrupt it, one hand-off per statement for the
// writer to wait on.
type writeFunc func(ctx context.Context, tx queryer) (changed bool, err error)

type writeReq struct {
	ctx    context.Context
	fn     writeFunc
	result chan error // buffered: the writer never waits for a caller
	// changed is what fn reported, kept until the batch commits.
	changed bool
	err     error
}

func newGroupWriter(db *sql.DB, committed func(), batch int) *groupWriter {
	w := &groupWriter{
		db:        db,
		reqs:      make(chan *writeReq),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		committed: committed,
		maxBatch:  max(batch, 1),
	}
	go w.run()
	return w
}

// do runs fn in a write transaction and returns once it committed (or failed).
func (w *groupWriter) do(ctx context.Context, fn writeFunc) error {
	r := &writeReq{ctx: ctx, fn: fn, result: make(chan error, 1)}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.quit:
		return errStoreClosed
	}
	// Once taken, the request is always answered, even if ctx ends meanwhile:
	// the caller must know whether its writes committed.
	return <-r.result
}

// close stops the writer after the batch in progress.
func (w *groupWriter) close() {
	w.closeOnce.Do(func() { close(w.quit) })
	<-w.done
}

func (w *groupWriter) run() {
	defer close(w.done)
	batch := make([]*writeReq, 0, w.maxBatch)
	for {
		select {
		case r := <-w.reqs:
			batch = append(batch[:0], r)
		case <-w.quit:
			return
		}
		// Take every caller already waiting, up to the bound: they queued while
		// the previous batch committed, which is what makes sharing pay.
	gather:
		for len(batch) < w.maxBatch {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		w.runBatch(batch)
		clear(batch)
	}
}

// runBatch commits the batch as one transaction. Should the shared transaction
// itself fail (the commit, a savepoint, a caller's work that ended the
// transaction), nothing of it was kept, so each caller's work runs again in a
// transaction of its own: one caller's trouble never becomes another's error.
// A batch of one is simply that transaction, without savepoints.
func (w *groupWriter) runBatch(batch []*writeReq) {
	// Committed runs before any caller is answered: a write that returned has
	// already woken the live pages.
	if len(batch) > 1 {
		changed, kept, err := w.shared(batch)
		if err == nil {
			if kept > 0 {
				w.commits.Add(1)
				w.writes.Add(int64(kept))
			}
			if changed {
				w.committed()
			}
			for _, r := range batch {
				r.result <- r.err
			}
			return
		}
	}
	for _, r := range batch {
		r.changed = false
		err := w.single(r)
		if err == nil {
			w.commits.Add(1)
			w.writes.Add(1)
			if r.changed {
				w.committed()
			}
		}
		r.result <- err
	}
}

// shared runs the batch in one transaction, each request in its own savepoint;
// kept is how many requests' work it committed. A batch whose every request
// was refused commits nothing: it rolls back, and counts no commit.
func (w *groupWriter) shared(batch []*writeReq) (changed bool, kept int, err error) {
	// The batch's own context: a caller that goes away must not end the
	// transaction the others' writes are in.
	ctx := context.Background()
	tx, err := w.begin(ctx)
	if err != nil {
		return false, 0, err
	}
	defer w.end(tx)
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT request`); err != nil {
			return false, 0, fmt.Errorf("savepoint: %w", err)
		}
		r.changed, r.err = r.call(tx)
		if r.err != nil {
			r.changed = false
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO request`); err != nil {
				return false, 0, fmt.Errorf("roll back a refused write: %w", err)
			}
		} else {
			kept++
		}
		if _, err := tx.ExecContext(ctx, `RELEASE request`); err != nil {
			return false, 0, fmt.Errorf("release savepoint: %w", err)
		}
		changed = changed || r.changed
	}
	if kept == 0 {
		return false, 0, nil // end rolls the empty transaction back
	}
	if err := w.commit(ctx, tx); err != nil {
		return false, 0, err
	}
	return changed, kept, nil
}

// PanicError is the error of a write whose function panicked. The writer
// runs every caller's work on its own goroutine, where no handler's recover
// reaches: it recovers there, undoes that caller's writes and answers it with
// this, so that one bug fails one request instead of ending the process and
// every agent's inbox with it.
type PanicError struct {
	Value any    // what the function panicked with
	Stack []byte // where: the writer goroutine's stack at the panic
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("a write panicked: %v\n%s", e.Value, e.Stack)
}

// call runs r's work on tx, turning a panic into r's error.
func (r *writeReq) call(tx queryer) (changed bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			changed, err = false, &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return r.fn(context.WithoutCancel(r.ctx), tx)
}

// single runs one request in a transaction of its own; r.changed holds what fn
// reported.
func (w *groupWriter) single(r *writeReq) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	ctx := context.WithoutCancel(r.ctx)
	tx, err := w.begin(ctx)
	if err != nil {
		return err
	}
	defer w.end(tx)
	changed, err := r.call(tx)
	if err != nil {
		return err
	}
	if err := w.commit(ctx, tx); err != nil {
		return err
	}
	r.changed = changed
	return nil
}

// begin takes the write connection and begins a transaction on it.
//
// The transaction is SQL's own (BEGIN IMMEDIATE, COMMIT) on a *sql.Conn, not a
// *sql.Tx: database/sql starts a goroutine for every query run in a *sql.Tx,
// to close its rows should the Tx end first, and a client message's reads
// (its delivery key, its client) paid two goroutines and their wake-ups each.
// On a connection, a query whose context cannot end starts none, and the
// writer's never can (writeFunc): BenchmarkReceiveOnDataset (32 senders, 1M
// messages) went from 248–253 to 199–205 µs of CPU a message.
func (w *groupWriter) begin(ctx context.Context) (*sql.Conn, error) {
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin write: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		conn.Close()
		return nil, fmt.Errorf("begin write: %w", err)
	}
	return conn, nil
}

// end rolls back whatever tx has not committed and gives the connection back.
// A connection SQLite still holds a transaction on (its ROLLBACK failed) is
// discarded rather than given to the next batch, which could not begin.
func (w *groupWriter) end(tx *sql.Conn) {
	// Raw's error is f's: ErrBadConn has discarded the connection, and there
	// is nothing else to do either way.
	_ = tx.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok || c.AutoCommit() {
			return nil // committed, or rolled back by SQLite itself
		}
		if _, err := c.Exec(`ROLLBACK`, nil); err != nil || !c.AutoCommit() {
			return driver.ErrBadConn
		}
		return nil
	})
	tx.Close() //nolint:errcheck // ErrConnDone once Raw discarded it
}

// commit commits tx, counting the commit for the readers (generations).
func (w *groupWriter) commit(ctx context.Context, tx *sql.Conn) error {
	w.gens.committing()
	defer w.gens.committed()
	if _, err := tx.ExecContext(ctx, `COMMIT`); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

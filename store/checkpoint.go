package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"sessiondesk/clock"
)

// The write-ahead log is folded back into the database file (a checkpoint)
// by a goroutine of its own, on a connection of its own, not by the writer.
//
// By default SQLite runs a checkpoint inside the commit that takes the WAL
// past 1,000 pages. Under a steady stream of client messages that was every
// few commits: each one read its pages back from the WAL, wrote them into
// the database and waited for two fsyncs, while every request of the batch
// waited for it. In the background, a checkpoint copies a page once per pass
// however often it changed in between, and the writer's commits only append
// to the WAL.

const (
	// checkpointEvery is the least time between two background checkpoints.
	checkpointEvery = 250 * time.Millisecond
	// writerCheckpoint sets where the writer still checkpoints after its
	// commits, as SQLite does by default past 1,000 pages: past 16,000 (64
	// MB). It is what lets the WAL start over from its beginning under a
	// steady load, since a pass in the background seldom finds the WAL all
	// copied (commits keep coming while it runs), and the WAL restarts only
	// when it is. Without it, 64 webhook senders took the -wal file to 414
	// MB in 40 s. Each of the writer's own checkpoints holds up the batch
	// waiting for it (two fsyncs and the pages the background has not copied
	// yet), so the threshold trades the WAL's size under a burst for ingest:
	// past 4,000 pages the file levelled off at 38 MB and the writer stored
	// 1,650–1,960 client messages a second; past 32,000, 135 MB and
	// 2,100–2,330 (64 senders, 100 agents, 1M-message dataset). 16,000 is
	// between the two. A team's normal traffic never reaches it: the
	// background keeps the WAL small.
	writerCheckpoint = `PRAGMA wal_autocheckpoint = 16000`
)

// checkpointer runs PASSIVE checkpoints after commits, at most one per
// interval. A PASSIVE checkpoint never waits for the writer or for readers:
// it copies what no reader still needs, and the next pass takes the rest.
type checkpointer struct {
	db    *sql.DB
	every time.Duration
	wake  chan struct{} // buffered (1): a poke never blocks the writer
	stop  context.CancelFunc
	done  chan struct{}
	// passes and failed count the passes run and those that failed (the
	// next commit's pass tries again); walPages and walCopied are what the
	// last pass found: the pages in the WAL, and how many of them are in the
	// database too.
	passes, failed      atomic.Int64
	walPages, walCopied atomic.Int64
}

// startCheckpointer opens a connection of its own to the database at dsn
// and starts the background checkpoints.
func startCheckpointer(ctx context.Context, dsn string, every time.Duration) (*checkpointer, error) {
	db, err := openOneConnection(ctx, dsn, nil)
	if err != nil {
		return nil, fmt.Errorf("open the checkpoint connection: %w", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	c := &checkpointer{db: db, every: every, wake: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	go c.run(runCtx)
	return c, nil
}

// CheckpointStats are the background checkpoints' counts since the store
// opened, and the WAL as the last pass found it, for the metrics.
type CheckpointStats struct {
	// Passes and Failed count the passes that ran and those that failed (the
	// next commit's pass tries again; the writer's own threshold still holds).
	Passes, Failed int64
	// WALPages is how many pages the WAL held at the last pass, and
	// WALCopied how many of them were in the database after it: pages stay
	// uncopied while a reader still needs their older version.
	WALPages, WALCopied int64
}

// Checkpoints returns the background checkpoints' counts.
func (s *Store) Checkpoints() CheckpointStats {
	c := s.checkpoints
	return CheckpointStats{Passes: c.passes.Load(), Failed: c.failed.Load(),
		WALPages: c.walPages.Load(), WALCopied: c.walCopied.Load()}
}

// poke says that a commit added to the WAL.
func (c *checkpointer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		if err := c.checkpoint(ctx); err != nil {
			c.failed.Add(1)
		}
		// The pause is what lets a pass copy many commits' pages at once.
		if !clock.Sleep(ctx, c.every) {
			return
		}
	}
}

// checkpoint runs one PASSIVE checkpoint.
func (c *checkpointer) checkpoint(ctx context.Context) error {
	var busy, walPages, copied int64
	if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &walPages, &copied); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	// Both are the WAL's totals since it last started over, -1 when the
	// database is not in WAL mode.
	c.walPages.Store(max(walPages, 0))
	c.walCopied.Store(max(copied, 0))
	c.passes.Add(1)
	return nil
}

// close stops the checkpoints (after the pass in progress) and closes the
// connection.
func (c *checkpointer) close() error {
	c.stop()
	<-c.done
	return c.db.Close()
}

// writerJournals keeps the write connection's statement journals in memory.
// Every request of a shared batch runs in a SAVEPOINT, and every statement
// with triggers may need to undo itself: SQLite keeps the pages such a step
// changes in a sub-journal, which past 64 KB spills to a temporary file unless
// temporary storage is in memory. Under a burst of client messages those
// files took as many write calls as the WAL itself (strace, 64 requests a
// batch), for data that is thrown away at every commit. In memory a
// sub-journal holds at most the pages one batch changes (a few MB for 64
// requests), and is freed at its commit.
const writerJournals = `PRAGMA temp_store = MEMORY`

// writerPragmas sets up the write connection: it checkpoints only as the
// fallback writerCheckpoint says, the checkpointer doing the rest, and keeps
// its sub-journals in memory (writerJournals).
func writerPragmas(conn *sqlite3.SQLiteConn) error {
	if _, err := conn.Exec(writerCheckpoint, nil); err != nil {
		return fmt.Errorf("store: set the writer's checkpoint threshold: %w", err)
	}
	if _, err := conn.Exec(writerJournals, nil); err != nil {
		return fmt.Errorf("store: keep the writer's journals in memory: %w", err)
	}
	return nil
}

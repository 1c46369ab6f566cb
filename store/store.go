// Package store keeps Sessiondesk's data in SQLite.
//
// One connection writes and a pool reads, both on the same WAL-mode file. Every
// rule-bearing write is one BEGIN IMMEDIATE transaction that reads the state,
// asks package session for a decision and applies it, so two agents racing for
// the last slot are serialised by SQLite itself (S9). Every write that changes
// what an agent sees appends a row to the events table in the same transaction;
// after the commit the store calls Options.Committed, which the live broker uses
// to wake the open pages.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	// The SQLite driver; importing it also registers it as "sqlite3".
	"github.com/mattn/go-sqlite3"

	"sessiondesk/session"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configure a Store.
type Options struct {
	// Rules are the session settings every send is checked against, and Rates
	// what sessions cost: the defaults (the flags). Settings an admin saved
	// override them (see SaveSettings).
	Rules session.Settings
	Rates session.Rates
	// CountryRates, SenderCountry, InternationalRate and MonthlyBudget are
	// the defaults of the AdminSettings fields of the same names.
	CountryRates      map[string]session.CountryRates
	SenderCountry     string
	InternationalRate float64
	MonthlyBudget     float64
	// Now is the clock every decision uses (S10). Defaults to time.Now.
	Now func() time.Time
	// Committed is called after every committed write that appended events. It
	// must not block; the live broker's Publish fits.
	Committed func()
	// MediaTokenTTL is how long an outbound attachment's public URL works: the
	// provider fetches it within the message's ttl. Defaults to 25 h.
	MediaTokenTTL time.Duration
	// Synchronous is SQLite's synchronous setting, NORMAL (the default) or
	// FULL. In WAL mode NORMAL never corrupts the database; a power cut may
	// lose the last transactions. FULL syncs the WAL on every commit.
	Synchronous string
}

// Store is the SQLite database. It is safe for concurrent use.
type Store struct {
	write *sql.DB // one connection: SQLite has one writer at a time anyway
	read  *sql.DB
	// writer runs every write transaction on write, sharing commits between
	// the transactions that wait for it (see groupWriter).
	writer *groupWriter
	// search is the messages' full-text index, in a file of its own
	// (searchindex.go).
	search *searchIndex
	// checkpoints folds the WAL into the database in the background
	// (checkpoint.go).
	checkpoints *checkpointer
	opts        Options
	// settings are the rules, rates and canned replies in force: swapped whole
	// when an admin saves, shared by the copies WithClock makes.
	settings *atomic.Pointer[AdminSettings]
	// batch, set only on the copies Store.Batch hands out, makes every write
	// and read join its one transaction (see batch.go).
	batch *batch
	// online lists the agents with a live page open (SetOnlineAgents), shared
	// by the copies WithClock makes.
	online *atomic.Pointer[func() []int64]
	// accepted hears of every send accepted (OnAccept), for the metrics.
	accepted *acceptHook
	// memo keeps what readers of the same commits share (memo.go), shared by
	// the copies WithClock makes.
	memo *readMemo
}

// Open opens (creating if needed) the database file at path and migrates it to
// the latest schema.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if err := opts.Rules.Validate(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Committed == nil {
		opts.Committed = func() {}
	}
	if opts.MediaTokenTTL <= 0 {
		opts.MediaTokenTTL = 25 * time.Hour
	}
	if err := writableFolder(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// _busy_timeout comes first so that it applies while the other pragmas run.
	params := url.Values{}
	params.Set("_busy_timeout", "5000")
	params.Set("_journal_mode", "WAL")
	params.Set("_foreign_keys", "on")
	switch opts.Synchronous {
	case "":
		opts.Synchronous = "NORMAL"
	case "NORMAL", "FULL":
	default:
		return nil, fmt.Errorf("store: synchronous %q: want NORMAL or FULL", opts.Synchronous)
	}
	params.Set("_synchronous", opts.Synchronous)
	params.Set("_txlock", "immediate")
	// Prepared statements are kept per connection: preparing the store's
	// queries anew took 40% of the CPU of a client message's transaction.
	// They stay prepared only with stable plans (plans.go).
	params.Set("_stmt_cache_size", "128")
	dsn := "file:" + path + "?" + params.Encode()

	write, err := openOneConnection(ctx, dsn, writerPragmas)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := migrateSpilling(ctx, write); err != nil {
		write.Close()
		return nil, err
	}

	search, err := openSearch(ctx, write, path)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("store: %w", err)
	}

	checkpoints, err := startCheckpointer(ctx, dsn, checkpointEvery)
	if err != nil {
		search.close()
		write.Close()
		return nil, fmt.Errorf("store: %w", err)
	}

	params.Set("_query_only", "true")
	params.Set("_txlock", "deferred")
	read := sql.OpenDB(newConnector("file:"+path+"?"+params.Encode(), search.attach))
	// The read connections stay open: database/sql keeps only two idle by
	// default, so with the hub, the outbox, the downloader and the pages
	// reading at once the others were closed after each use and opened again,
	// each time with its pragmas to run, an empty page cache and no prepared
	// statements (measured: a tenth of the CPU under live traffic).
	readers := max(4, runtime.NumCPU())
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers)
	s := &Store{write: write, read: read, search: search, checkpoints: checkpoints, opts: opts,
		settings: new(atomic.Pointer[AdminSettings]), online: new(atomic.Pointer[func() []int64]), accepted: new(acceptHook),
		memo: new(readMemo)}
	search.run(read)
	s.writer = newGroupWriter(write, func() {
		s.checkpoints.poke()
		s.opts.Committed()
	}, maxBatch)
	if err := s.applyStoredSettings(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := s.freezeLegacyRates(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := s.fillPhoneDisplays(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	return s, nil
}

// openOneConnection opens the database at dsn as a pool of one connection
// that stays open (with its pragmas, page cache and prepared statements),
// and checks that it opens.
func openOneConnection(ctx context.Context, dsn string, then func(*sqlite3.SQLiteConn) error) (*sql.DB, error) {
	db := sql.OpenDB(newConnector(dsn, then))
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// freezeLegacyRates completes migration 00005: sessions billed before rates
// were frozen per session get the rates in force now (the stored settings or
// the flags, which SQL cannot see), so their cost stays what it was shown as.
// It runs until it is recorded as done (00048), so a start does not read every
// session to find nothing.
func (s *Store) freezeLegacyRates(ctx context.Context) error {
	r := s.Rates()
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		if done, err := upgradeDone(ctx, tx, "freeze_legacy_rates"); done || err != nil {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, `
			UPDATE sessions SET rate_text = ?, rate_media = ?, currency = ?,
			       billed_at = (SELECT min(created_at) FROM messages
			                     WHERE session_id = sessions.id AND direction = 'out' AND counted = 1)
			WHERE rate_text IS NULL AND EXISTS (SELECT 1 FROM messages
			        WHERE session_id = sessions.id AND direction = 'out' AND counted = 1)`,
			r.Text, r.Media, r.Currency); err != nil {
			return false, err
		}
		return false, markUpgradeDone(ctx, tx, "freeze_legacy_rates", s.opts.Now())
	})
	if err != nil {
		return fmt.Errorf("freeze the rates of sessions billed before 00005: %w", err)
	}
	return nil
}

// upgradeDone says whether the start-up upgrade name has finished (00048).
func upgradeDone(ctx context.Context, tx queryer, name string) (bool, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM upgrades_done WHERE name = ?`, name).Scan(&n); err != nil {
		return false, fmt.Errorf("read whether %s is done: %w", name, err)
	}
	return n > 0, nil
}

// markUpgradeDone records that the start-up upgrade name has nothing left to do.
func markUpgradeDone(ctx context.Context, tx queryer, name string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO upgrades_done (name, done_at) VALUES (?, ?)`,
		name, ms(now)); err != nil {
		return fmt.Errorf("record %s as done: %w", name, err)
	}
	return nil
}

// writableFolder makes sure the data folder exists (creating it) and that
// files can be created in it, by creating and removing one. SQLite needs that
// for its journal, and when it cannot, it says only "unable to open database
// file"; this names the folder and the system's reason instead.
func writableFolder(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("data folder %s cannot be created: %w", dir, pathCause(err))
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data folder %s is not writable: %w", dir, pathCause(err))
	}
	name := f.Name()
	if err := errors.Join(f.Close(), os.Remove(name)); err != nil {
		return fmt.Errorf("data folder %s is not writable: %w", dir, pathCause(err))
	}
	return nil
}

// pathCause is the system's reason in a path error ("permission denied"),
// without the path of the file tried, which callers name themselves.
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// openSearch opens the search index beside the database at path, telling it
// which database it is for and how far that database goes.
func openSearch(ctx context.Context, db *sql.DB, path string) (*searchIndex, error) {
	var token string
	var maxMessage, maxChange int64
	if err := db.QueryRowContext(ctx, `SELECT (SELECT token FROM instance),
		coalesce((SELECT max(id) FROM messages), 0), coalesce((SELECT max(id) FROM search_changes), 0)`).
		Scan(&token, &maxMessage, &maxChange); err != nil {
		return nil, fmt.Errorf("search index: read the database's identity: %w", err)
	}
	return openSearchIndex(ctx, SearchPath(path), token, maxMessage, maxChange)
}

// migrateSpilling migrates the write connection with SQLite's default
// temporary storage, then keeps its journals in memory again
// (writerJournals): a migration may rewrite a whole table in one statement,
// whose statement journal holds every page it changes, and that belongs in a
// temporary file rather than in the heap of a server that stays up for months
// (the C heap keeps what it once grew to).
func migrateSpilling(ctx context.Context, write *sql.DB) error {
	if _, err := write.ExecContext(ctx, `PRAGMA temp_store = DEFAULT`); err != nil {
		return fmt.Errorf("store: journals on disk while migrating: %w", err)
	}
	if err := migrate(ctx, write); err != nil {
		return err
	}
	if _, err := write.ExecContext(ctx, writerJournals); err != nil {
		return fmt.Errorf("store: keep the writer's journals in memory: %w", err)
	}
	return nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("store: migrations folder: %w", err)
	}
	// Out of order: migrations written on parallel branches land with numbers
	// below one a database may already have; each still runs once.
	provider, err := goose.NewProvider(goose.DialectSQLite3, db, dir, goose.WithDisableGlobalRegistry(true),
		goose.WithAllowOutofOrder(true))
	if err != nil {
		return fmt.Errorf("store: prepare migrations: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// Close closes both pools. The batch of writes in flight commits first; a write
// asked for afterwards fails.
func (s *Store) Close() error {
	s.writer.close()
	// The write connection closes last: closing the last connection folds
	// what is left of the WAL into the database.
	return errors.Join(s.checkpoints.close(), s.search.close(), s.read.Close(), s.write.Close())
}

// WithClock returns a Store that shares the same database but decides with now.
// The demo data uses it to play a history at past times.
func (s *Store) WithClock(now func() time.Time) *Store {
	c := *s
	c.opts.Now = now
	return &c
}

// Now returns the store's clock reading.
func (s *Store) Now() time.Time { return s.opts.Now() }

// writeTx runs fn in a write transaction (BEGIN IMMEDIATE, through the DSN's
// _txlock), commits, and then tells Options.Committed when fn appended events.
// Concurrent calls may share one commit (group commit), each undone alone when
// its fn fails; fn must touch nothing but tx, since a failure of the shared
// transaction runs it again on its own.
func (s *Store) writeTx(ctx context.Context, fn writeFunc) error {
	if s.batch != nil {
		return s.batch.write(ctx, fn)
	}
	return s.writer.do(ctx, fn)
}

// Read runs fn in one read transaction: everything fn reads comes from one
// snapshot of the database, so a page and the event id it resumes after agree.
func (s *Store) Read(ctx context.Context, fn func(r *Reader) error) error {
	if s.batch != nil { // inside Batch: read what the batch wrote so far
		// The batch's connection has no search index attached: Search refuses.
		return fn(&Reader{q: s.batch.tx, rules: s.Rules(), now: s.opts.Now()})
	}
	// Read before the snapshot begins (its first statement): see generations.
	gen := s.writer.gens.finished.Load()
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	return fn(&Reader{q: tx, rules: s.Rules(), now: s.opts.Now(), search: s.search,
		gens: &s.writer.gens, gen: gen, memo: s.memo})
}

// Reader reads within one snapshot; see Store.Read.
type Reader struct {
	q      queryer
	rules  session.Settings
	now    time.Time
	search *searchIndex // nil inside a Batch
	// searchIncomplete: see SearchIncomplete.
	searchIncomplete bool
	// gens and gen tell which commits the snapshot holds (exactGeneration);
	// gens is nil inside a Batch, whose snapshot holds its own writes.
	gens *generations
	gen  uint64
	// memo keeps what readers of the same commits may share (memo.go).
	memo *readMemo
}

// exactGeneration returns the number of commits the snapshot holds, and false
// when it cannot tell. Call it only after a statement of the snapshot ran:
// that statement is what began the snapshot.
func (r *Reader) exactGeneration() (uint64, bool) {
	if r.gens == nil {
		return 0, false
	}
	return r.gen, r.gens.started.Load() == r.gen
}

// Now is the clock reading taken when the snapshot began.
func (r *Reader) Now() time.Time { return r.now }

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// ms converts a time to the stored form: integer milliseconds since the epoch.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS converts the stored form back to a UTC time; 0 stays the zero time.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

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
	// The SQLite driver; registered as "sqlite3".
	_ "github.com/mattn/go-sqlite3"

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
	// Now is the clock every decision uses (S10). Defaults to time.Now.
	Now func() time.Time
	// Committed is called after every committed write that appended events. It
	// must not block; the live broker's Publish fits.
	Committed func()
	// MediaTokenTTL is how long an outbound attachment's public URL works: the
	// provider fetches it within the message's ttl. Defaults to 25 h.
	MediaTokenTTL time.Duration
}

// Store is the SQLite database. It is safe for concurrent use.
type Store struct {
	write *sql.DB // one connection: SQLite has one writer at a time anyway
	read  *sql.DB
	opts  Options
	// settings are the rules, rates and canned replies in force: swapped whole
	// when an admin saves, shared by the copies WithClock makes.
	settings *atomic.Pointer[AdminSettings]
	// batch, set only on the copies Store.Batch hands out, makes every write
	// join one bulk transaction (see import.go).
	batch *batchTx
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
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("store: create data folder: %w", err)
	}
	// _busy_timeout comes first so that it applies while the other pragmas run.
	params := url.Values{}
	params.Set("_busy_timeout", "5000")
	params.Set("_journal_mode", "WAL")
	params.Set("_foreign_keys", "on")
	params.Set("_synchronous", "NORMAL")
	params.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + params.Encode()

	write, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, err
	}

	params.Set("_query_only", "true")
	params.Set("_txlock", "deferred")
	read, err := sql.Open("sqlite3", "file:"+path+"?"+params.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("store: open read pool: %w", err)
	}
	read.SetMaxOpenConns(max(4, runtime.NumCPU()))
	s := &Store{write: write, read: read, opts: opts, settings: new(atomic.Pointer[AdminSettings])}
	if err := s.applyStoredSettings(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	return s, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("store: migrations folder: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectSQLite3, db, dir, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("store: prepare migrations: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// Close closes both pools. Writes in flight finish first (database/sql waits for
// connections in use to be returned).
func (s *Store) Close() error {
	return errors.Join(s.read.Close(), s.write.Close())
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

// writeTx runs fn in one write transaction (BEGIN IMMEDIATE, through the DSN's
// _txlock), commits, and then tells Options.Committed when fn appended events.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) (changed bool, err error)) error {
	if s.batch != nil {
		return s.batch.run(ctx, fn)
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	changed, err := fn(tx)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if changed {
		s.opts.Committed()
	}
	return nil
}

// Read runs fn in one read transaction: everything fn reads comes from one
// snapshot of the database, so a page and the event id it resumes after agree.
func (s *Store) Read(ctx context.Context, fn func(r *Reader) error) error {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	return fn(&Reader{q: tx, rules: s.Rules(), now: s.opts.Now()})
}

// Reader reads within one snapshot; see Store.Read.
type Reader struct {
	q     queryer
	rules session.Settings
	now   time.Time
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

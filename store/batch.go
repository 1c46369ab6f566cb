package store

import (
	"context"
	"database/sql"
	"errors"
)

// batch is one write transaction shared by every write of an Atomically call.
type batch struct {
	tx      *sql.Tx
	changed bool // a write appended events: tell Committed after the commit
	done    bool // the transaction is over; the batch Store must not be used
}

// Atomically runs fn with a Store whose writes (and reads) all happen in one
// write transaction: they commit together when fn returns nil, and none of
// them is kept when fn fails. It is for the few callers that play many store
// calls as one change (the demo data), so that a failure half-way leaves
// nothing half-done. fn must touch nothing but the store: like any write it may
// run again, alone, when the commit it shared fails. The Store given to fn, and its WithClock copies, must not
// be used after fn returns.
func (s *Store) Atomically(ctx context.Context, fn func(st *Store) error) error {
	if s.batch != nil {
		return errors.New("store: Atomically cannot nest")
	}
	// One request of the group writer: it commits with whatever shares its
	// batch, or is undone alone when fn fails.
	return s.writer.do(ctx, func(tx *sql.Tx) (bool, error) {
		b := &batch{tx: tx}
		inner := *s
		inner.batch = b
		defer func() { b.done = true }()
		if err := fn(&inner); err != nil {
			return false, err
		}
		return b.changed, nil
	})
}

// write runs a write of fn inside the Atomically transaction.
func (b *batch) write(fn func(tx *sql.Tx) (bool, error)) error {
	if b.done {
		return errors.New("store: the Atomically transaction is over")
	}
	changed, err := fn(b.tx)
	b.changed = b.changed || changed
	return err
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The bulk path: loading a whole history (the load tool's datasets, an import
// from another inbox) through the store's own calls, so that what is stored is
// exactly what live traffic would have stored, but thousands of calls to a
// transaction instead of one each.

// batchTx is the one write transaction the calls of a Batch share.
type batchTx struct {
	tx      *sql.Tx
	changed bool // some call appended events: tell Committed after the commit
}

// run applies one store call inside the batch, in its own savepoint: a call
// that fails (a refusal by the rules, bad input) leaves nothing behind, as its
// own transaction would have, and the batch goes on.
func (b *batchTx) run(ctx context.Context, fn func(tx *sql.Tx) (changed bool, err error)) error {
	if _, err := b.tx.ExecContext(ctx, `SAVEPOINT batch_call`); err != nil {
		return fmt.Errorf("batch: savepoint: %w", err)
	}
	changed, err := fn(b.tx)
	if err != nil {
		// ROLLBACK TO keeps the savepoint open; RELEASE then drops it, empty.
		if _, rerr := b.tx.ExecContext(ctx, `ROLLBACK TO batch_call`); rerr != nil {
			return errors.Join(err, fmt.Errorf("batch: roll back the failed call: %w", rerr))
		}
		if _, rerr := b.tx.ExecContext(ctx, `RELEASE batch_call`); rerr != nil {
			return errors.Join(err, fmt.Errorf("batch: release the failed call: %w", rerr))
		}
		return err
	}
	if _, err := b.tx.ExecContext(ctx, `RELEASE batch_call`); err != nil {
		return fmt.Errorf("batch: release: %w", err)
	}
	b.changed = b.changed || changed
	return nil
}

// Batch runs fn with a copy of the store whose every write
// (ReceiveClientMessage, AcceptBusinessMessages, ApplyStatus, EnsureAgent, …)
// joins one write transaction, committed when fn returns nil and rolled back
// entirely when it returns an error. Each call inside stays all-or-nothing: one
// that fails leaves nothing behind, and fn may go on. Use the copy's WithClock to
// play a history at past times.
//
// Batch is for bulk loads only: it holds the database's one writer until fn
// returns, so keep a batch to a few thousand calls. The copy must not be used
// after fn returns, and its Read sees only what was committed before the batch.
func (s *Store) Batch(ctx context.Context, fn func(b *Store) error) error {
	if s.batch != nil {
		return errors.New("store: batch inside a batch")
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin batch: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	b := *s
	b.batch = &batchTx{tx: tx}
	if err := fn(&b); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit batch: %w", err)
	}
	if b.batch.changed {
		s.opts.Committed()
	}
	return nil
}

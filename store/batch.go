package store

import (
	"context"
	"errors"
	"fmt"
)

// The bulk path: playing many store calls as one change, through the store's
// own code, so that what is stored is exactly what live traffic would have
// stored. The demo data uses it to be all or nothing; the load tool's dataset
// generator to put thousands of calls in one transaction instead of one each.

// batch is the one write transaction the calls of a Batch share.
type batch struct {
	tx      queryer
	changed bool // some call appended events: tell Committed after the commit
	done    bool // the transaction is over; the batch Store must not be used
}

// Batch runs fn with a copy of the store whose every write
// (ReceiveClientMessage, AcceptBusinessMessages, ApplyStatus, EnsureAgent, …)
// and read joins one write transaction, committed when fn returns nil and
// rolled back entirely when it returns an error. Each call inside stays all or
// nothing: one that fails (a refusal by the rules, bad input) leaves nothing
// behind, as its own transaction would have, and fn may go on. Use the copy's
// WithClock to play a history at past times.
//
// It holds the database's one writer until fn returns, so keep a batch to a
// few thousand calls. fn must touch nothing but the store: like any write it
// may run again, alone, when the commit it shared fails. The copy, and its
// WithClock copies, must not be used after fn returns.
func (s *Store) Batch(ctx context.Context, fn func(b *Store) error) error {
	if s.batch != nil {
		return errors.New("store: batch inside a batch")
	}
	// One request of the group writer: it commits with whatever shares its
	// commit, or is undone alone when fn fails.
	return s.writer.do(ctx, func(_ context.Context, tx queryer) (bool, error) {
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

// write applies one store call inside the batch, in its own savepoint.
func (b *batch) write(ctx context.Context, fn writeFunc) error {
	if b.done {
		return errors.New("store: the batch is over")
	}
	// A call whose caller has gone does not start; one that started ends, as
	// in the writer (writeFunc).
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	if _, err := b.tx.ExecContext(ctx, `SAVEPOINT batch_call`); err != nil {
		return fmt.Errorf("batch: savepoint: %w", err)
	}
	changed, err := fn(ctx, b.tx)
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

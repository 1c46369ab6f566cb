package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PruneBatch is how many events one pruning transaction deletes at most: small
// enough that the writer is held for milliseconds, not for the whole backlog.
const PruneBatch = 5000

// PruneEvents deletes the events older than before, batch rows per write
// transaction, and returns how many it deleted. Messages, conversations and
// everything else stay: events only let open pages catch up.
//
// What goes is a prefix of the ids: every event before the first one created at
// or after the cut-off. The events kept are then always a contiguous range of
// ids, so FirstKeptEventID tells a page exactly whether it missed any; and an
// event is never deleted younger than the window, even when a clock put back
// stamped a newer id with an older time (it simply waits for its elders). The
// ids go on growing after a delete: the table is AUTOINCREMENT.
func (s *Store) PruneEvents(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = PruneBatch
	}
	// Found in a read snapshot, which does not hold up writers. It walks the
	// ids up from the oldest, so it reads only the events about to go.
	var cut int64 // delete ids <= cut
	err := s.Read(ctx, func(r *Reader) error {
		var first int64
		err := r.q.QueryRowContext(ctx, `SELECT id FROM events WHERE created_at >= ? ORDER BY id LIMIT 1`,
			ms(before)).Scan(&first)
		switch {
		case err == nil:
			cut = first - 1
			return nil
		case errors.Is(err, sql.ErrNoRows): // every event is older
			return r.q.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM events`).Scan(&cut)
		default:
			return err
		}
	})
	if err != nil {
		return 0, fmt.Errorf("prune events: find the cut-off: %w", err)
	}
	var total int64
	for cut > 0 {
		var n int64
		err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
			res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE id IN
				(SELECT id FROM events WHERE id <= ? ORDER BY id LIMIT ?)`, cut, batch)
			if err != nil {
				return false, err
			}
			n, err = res.RowsAffected()
			return false, err // nothing a page shows changed: wake no one
		})
		if err != nil {
			return total, fmt.Errorf("prune events: %w", err)
		}
		total += n
		if n < int64(batch) {
			break
		}
	}
	return total, nil
}

// FirstKeptEventID returns the smallest event id a replay can still return:
// every event with a smaller id was pruned. With no event kept it is the id the
// next event will get. A page resuming after cursor missed events when
// cursor < FirstKeptEventID-1, and must reload instead of replaying.
func (r *Reader) FirstKeptEventID(ctx context.Context) (int64, error) {
	var first int64
	err := r.q.QueryRowContext(ctx, `SELECT coalesce(
		(SELECT min(id) FROM events),
		(SELECT seq + 1 FROM sqlite_sequence WHERE name = 'events'),
		1)`).Scan(&first)
	if err != nil {
		return 0, fmt.Errorf("first kept event: %w", err)
	}
	return first, nil
}

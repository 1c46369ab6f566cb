package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Gauges are the figures the metrics endpoint reads from the database at
// each scrape: what waits in the outbox.
type Gauges struct {
	// Queued counts the business messages waiting to be handed to the
	// provider (held for a retry included); Unconfirmed those whose last try
	// may or may not have reached it.
	Queued, Unconfirmed int
	// OldestQueued is when the oldest queued message was accepted; zero when
	// nothing is queued.
	OldestQueued time.Time
	// SearchBehind is how many messages (by id) the search index has not
	// reached yet: a few at most while it follows, up to all of them while it
	// is built after an upgrade or a restore.
	SearchBehind int64
}

// Gauges reads the outbox's depth through the partial indexes on queued and
// unconfirmed messages: its cost grows with the queue, not with the history
// (BenchmarkGauges).
func (r *Reader) Gauges(ctx context.Context) (Gauges, error) {
	var g Gauges
	var oldest sql.NullInt64
	// messages_queued is on (id) WHERE status = 'queued': ids grow with
	// acceptance, so the smallest is the oldest.
	err := r.q.QueryRowContext(ctx, `SELECT count(*),
		(SELECT created_at FROM messages WHERE status = 'queued' ORDER BY id LIMIT 1)
		FROM messages WHERE status = 'queued'`).Scan(&g.Queued, &oldest)
	if err != nil {
		return Gauges{}, fmt.Errorf("outbox depth: %w", err)
	}
	if oldest.Valid {
		g.OldestQueued = fromMS(oldest.Int64)
	}
	if err := r.q.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE status = 'unconfirmed'`).
		Scan(&g.Unconfirmed); err != nil {
		return Gauges{}, fmt.Errorf("unconfirmed messages: %w", err)
	}
	if r.search != nil {
		var newest int64
		if err := r.q.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM messages`).Scan(&newest); err != nil {
			return Gauges{}, fmt.Errorf("newest message: %w", err)
		}
		g.SearchBehind = max(newest-r.search.indexed(), 0)
	}
	return g, nil
}

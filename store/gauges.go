package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Gauges are the figures the metrics endpoint reads from the database at
// each scrape: what waits in the outbox, and the sessions kept.
type Gauges struct {
	// Queued counts the business messages waiting to be handed to the
	// provider (held for a retry included); Unconfirmed those whose last try
	// may or may not have reached it.
	Queued, Unconfirmed int
	// OldestQueued is when the oldest queued message was accepted; zero when
	// nothing is queued.
	OldestQueued time.Time
	// Sessions counts the sessions kept, by who opened them ("client" or
	// "rollover"); Billed those of them with a business message counted in
	// them (their rates frozen, S7).
	Sessions, Billed map[string]int
}

// Gauges reads the outbox's depth through the partial indexes on queued and
// unconfirmed messages (their cost grows with the queue, not with the
// history), and the sessions' totals in one pass over the sessions table.
func (r *Reader) Gauges(ctx context.Context) (Gauges, error) {
	g := Gauges{Sessions: map[string]int{}, Billed: map[string]int{}}
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
	rows, err := r.q.QueryContext(ctx, `SELECT opened_by, count(*), count(rate_text) FROM sessions GROUP BY opened_by`)
	if err != nil {
		return Gauges{}, fmt.Errorf("session totals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			by              string
			opened, charged int
		)
		if err := rows.Scan(&by, &opened, &charged); err != nil {
			return Gauges{}, fmt.Errorf("session totals: %w", err)
		}
		g.Sessions[by], g.Billed[by] = opened, charged
	}
	if err := rows.Err(); err != nil {
		return Gauges{}, fmt.Errorf("session totals: %w", err)
	}
	return g, nil
}

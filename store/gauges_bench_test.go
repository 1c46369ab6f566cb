package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"sessiondesk/session"
)

// BenchmarkGauges times one scrape's read (Reader.Gauges) over 100,000
// sessions, 200,000 messages and 20 queued:
//
//	go test ./store -run '^$' -bench BenchmarkGauges
func BenchmarkGauges(b *testing.B) {
	s, _ := newStore(b, session.Defaults())
	ctx := context.Background()
	const convs, perConv = 20000, 5
	start := t0.Add(-90 * 24 * time.Hour)
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		for c := 1; c <= convs; c++ {
			if _, err := tx.ExecContext(ctx, `INSERT INTO contacts (id, phone, name, created_at) VALUES (?, ?, '', ?)`,
				c, fmt.Sprintf("+37529%07d", c), ms(start)); err != nil {
				return false, err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO conversations (id, contact_id, created_at) VALUES (?, ?, ?)`,
				c, c, ms(start)); err != nil {
				return false, err
			}
			for n := 1; n <= perConv; n++ {
				at := start.Add(time.Duration(c*perConv+n) * time.Minute)
				var rate any
				if n%2 == 0 {
					rate = 0.01
				}
				res, err := tx.ExecContext(ctx, `INSERT INTO sessions (conversation_id, number, started_at, ends_at, opened_by, rate_text)
					VALUES (?, ?, ?, ?, 'client', ?)`, c, n, ms(at), ms(at.Add(24*time.Hour)), rate)
				if err != nil {
					return false, err
				}
				sid, _ := res.LastInsertId()
				for i, dir := range []string{"in", "out"} {
					status, counted := "received", 0
					if dir == "out" {
						status, counted = StatusDelivered, 1
						if c%1000 == 0 && n == 1 {
							status = StatusQueued
						}
					}
					if _, err := tx.ExecContext(ctx, `INSERT INTO messages (conversation_id, session_id, direction, kind, body,
						status, status_at, counted, sent_at, created_at) VALUES (?, ?, ?, 'text', 'hello', ?, ?, ?, ?, ?)`,
						c, sid, dir, status, ms(at), counted, ms(at.Add(time.Duration(i)*time.Second)), ms(at)); err != nil {
						return false, err
					}
				}
			}
		}
		return false, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	var g Gauges
	b.ResetTimer()
	for b.Loop() {
		if err := s.Read(ctx, func(r *Reader) error {
			var err error
			g, err = r.Gauges(ctx)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if g.Queued != convs/1000 {
		b.Fatalf("generated %+v, want %d queued", g, convs/1000)
	}
}

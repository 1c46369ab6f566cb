package store

import (
	"context"
	"math"
	"testing"
	"time"

	"sessiondesk/session"
)

// billedMonth is a store with 100,000 sessions billed in t0's month, a third
// of them with media and half of them priced by the provider, and the month's
// bounds.
func billedMonth(b *testing.B) (s *Store, from, to time.Time) {
	s, _ = newStore(b, session.Defaults())
	ctx := context.Background()
	from, to = MonthBounds(t0)
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO contacts (phone, name, created_at) VALUES ('+4915112345678', 'x', 0)`); err != nil {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO conversations (contact_id, created_at) VALUES (1, 0)`); err != nil {
			return false, err
		}
		for i := range 100_000 {
			at := from.Add(time.Duration(i) * 20 * time.Second)
			if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (conversation_id, number, started_at, ends_at, opened_by,
				used, media_used, rate_text, rate_media, currency, billed_at, reported_cost, reported_count)
				VALUES (1, ?, ?, ?, 'client', 2, ?, 0.05, 0.1, 'EUR', ?, 0.04, ?)`,
				i+1, ms(at), ms(at.Add(24*time.Hour)), i%3, ms(at), i%2); err != nil {
				return false, err
			}
		}
		return false, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return s, from, to
}

// BenchmarkSpend100k measures the month's spend (the header's budget meter,
// read on every admin page) over 100,000 sessions billed in the month.
func BenchmarkSpend100k(b *testing.B) {
	s, from, to := billedMonth(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		err := s.Read(ctx, func(r *Reader) error {
			sp, err := r.Spend(ctx, from, to, "EUR")
			if sp.Sessions != 100_000 {
				b.Fatalf("%d sessions", sp.Sessions)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMonthSpend100k is the same figure from the running totals.
func BenchmarkMonthSpend100k(b *testing.B) {
	s, from, to := billedMonth(b)
	ctx := context.Background()
	var want Spend
	if err := s.Read(ctx, func(r *Reader) (err error) {
		want, err = r.Spend(ctx, from, to, "EUR")
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		err := s.Read(ctx, func(r *Reader) error {
			sp, err := r.MonthSpend(ctx, t0, "EUR")
			if sp.Sessions != want.Sessions || math.Abs(sp.Amount-want.Amount) > 1e-6 {
				b.Fatalf("%+v, want %+v", sp, want)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"sessiondesk/session"
)

func TestSynchronousSetting(t *testing.T) {
	for setting, want := range map[string]int{"": 1, "NORMAL": 1, "FULL": 2} {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), Options{Rules: session.Defaults(), Synchronous: setting})
		if err != nil {
			t.Fatal(err)
		}
		var got int
		if err := s.write.QueryRow(`PRAGMA synchronous`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if got != want {
			t.Errorf("synchronous %q: PRAGMA synchronous = %d, want %d", setting, got, want)
		}
	}
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), Options{Rules: session.Defaults(), Synchronous: "OFF"}); err == nil {
		t.Error("synchronous OFF was accepted")
	}
}

// BenchmarkSynchronous measures what FULL costs against NORMAL on this disk:
// a one-row write transaction, and a client's message as the inbox stores it.
func BenchmarkSynchronous(b *testing.B) {
	for _, mode := range []string{"NORMAL", "FULL"} {
		b.Run("OneRow/"+mode, func(b *testing.B) {
			s := openBench(b, mode)
			if _, err := s.write.Exec(`CREATE TABLE bench (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
					_, err := tx.ExecContext(ctx, `INSERT INTO bench (v) VALUES ('x')`)
					return false, err
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("ClientMessage/"+mode, func(b *testing.B) {
			s := openBench(b, mode)
			i := 0
			for b.Loop() {
				i++
				receive(b, s, fmt.Sprintf("+37529%07d", 1000000+i%50), "Hello")
			}
		})
	}
}

func openBench(b *testing.B, mode string) *Store {
	b.Helper()
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), Options{Rules: session.Defaults(), Synchronous: mode})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

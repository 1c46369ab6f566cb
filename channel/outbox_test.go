package channel

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"sessiondesk/clock"
	"sessiondesk/session"
	"sessiondesk/store"
)

// scriptedSender answers each Send from a function, and records the order.
type scriptedSender struct {
	mu     sync.Mutex
	answer func(store.Outgoing) (string, error)
	sent   []int64
}

func (s *scriptedSender) Send(_ context.Context, m store.Outgoing) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.answer(m)
	if err == nil {
		s.sent = append(s.sent, m.ID)
	}
	return id, err
}

func setup(t *testing.T) (*store.Store, *clock.Manual, []int64) {
	t.Helper()
	clk := clock.NewManual(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC))
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "o.db"), store.Options{Rules: session.Defaults(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var ids []int64
	for _, phone := range []string{"+375298603938", "+375298603939"} {
		r, err := st.ReceiveClientMessage(context.Background(), store.ClientMessage{Phone: phone, Kind: session.Text, Text: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			msgs, err := st.AcceptBusinessMessages(context.Background(), store.BusinessSend{
				ConversationID: r.Message.ConversationID, Parts: []session.Part{{Kind: session.Text, Text: "reply"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, msgs[0].ID)
		}
	}
	return st, clk, ids
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// A client whose message fails is held back; the others go on; the failed one
// is retried after its backoff, and its client's order is kept.
func TestOutboxHoldsAFailingClientAndKeepsOrder(t *testing.T) {
	st, clk, ids := setup(t) // ids: client A (0, 1), client B (2, 3)
	failA := true
	sender := &scriptedSender{answer: func(m store.Outgoing) (string, error) {
		if m.Phone == "+375298603938" && failA {
			return "", errors.New("connection refused")
		}
		return "trk-" + strconv.FormatInt(m.ID, 10), nil
	}}
	ob := NewOutbox(st, sender, quiet, OutboxOptions{Now: clk.Now, Backoff: time.Second, MaxBackoff: 4 * time.Second})
	ctx := context.Background()
	for range 3 {
		if _, err := ob.Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(sender.sent) != 2 || sender.sent[0] != ids[2] || sender.sent[1] != ids[3] {
		t.Fatalf("sent %v while A fails, want B's %v", sender.sent, ids[2:])
	}
	next, _ := ob.Pass(ctx)
	if next.IsZero() || !next.After(clk.Now()) {
		t.Fatalf("next retry %v, want after now", next)
	}
	failA = false
	clk.Add(5 * time.Second)
	for range 3 {
		ob.Pass(ctx)
	}
	if len(sender.sent) != 4 || sender.sent[2] != ids[0] || sender.sent[3] != ids[1] {
		t.Errorf("sent %v, want A's messages in order after B's", sender.sent)
	}
	_ = st.Read(ctx, func(r *store.Reader) error {
		m, _ := r.Message(ctx, ids[0])
		if m.Status != store.StatusSent || m.Attempts == 0 {
			t.Errorf("retried message: %s after %d attempts", m.Status, m.Attempts)
		}
		return nil
	})
}

// After GiveUpAfter the message fails visibly and stops counting.
func TestOutboxGivesUp(t *testing.T) {
	st, clk, ids := setup(t)
	sender := &scriptedSender{answer: func(store.Outgoing) (string, error) { return "", errors.New("503 Service Unavailable") }}
	ob := NewOutbox(st, sender, quiet, OutboxOptions{Now: clk.Now, GiveUpAfter: time.Hour})
	ctx := context.Background()
	ob.Pass(ctx)
	clk.Add(time.Hour)
	ob.Pass(ctx)
	_ = st.Read(ctx, func(r *store.Reader) error {
		m, _ := r.Message(ctx, ids[0])
		if m.Status != store.StatusFailed || m.Counted || m.StatusReason == "" {
			t.Errorf("after the give-up time: %s counted=%v reason=%q", m.Status, m.Counted, m.StatusReason)
		}
		return nil
	})
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	ob := NewOutbox(nil, nil, quiet, OutboxOptions{Backoff: time.Second, MaxBackoff: time.Minute})
	for failures, limit := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		for range 50 {
			if d := ob.backoff(failures); d < limit/2 || d > limit {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", failures, d, limit/2, limit)
			}
		}
	}
	if d := ob.backoff(100); d > time.Minute || d < 30*time.Second {
		t.Errorf("backoff(100) = %s, want capped at a minute", d)
	}
}

package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"sessiondesk/session"
)

// freshViewCounts are r's counts computed without the memo, in r's snapshot.
func freshViewCounts(ctx context.Context, r *Reader, status string, within time.Duration) (ViewCounts, error) {
	bare := *r
	bare.gens = nil
	return bare.ViewCounts(ctx, status, within)
}

// bothViewCounts reads the counts through the memo and without it, in one
// snapshot.
func bothViewCounts(t *testing.T, s *Store, status string, within time.Duration) (memo, fresh ViewCounts) {
	t.Helper()
	ctx := context.Background()
	err := s.Read(ctx, func(r *Reader) (err error) {
		if memo, err = r.ViewCounts(ctx, status, within); err != nil {
			return err
		}
		fresh, err = freshViewCounts(ctx, r, status, within)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return memo, fresh
}

func reusedCounts(s *Store) int {
	s.memo.mu.Lock()
	defer s.memo.mu.Unlock()
	return s.memo.reused
}

// The counts that depend on the time are reused while nothing is written and
// the clock stays short of the next session's end or window, and never past
// it: walking the clock minute by minute over every boundary, the reused
// counts are always those a fresh count gives in the same snapshot.
func TestViewCountsReusedOnlyWhileTheyHold(t *testing.T) {
	rules := session.Defaults()
	rules.Window = 3 * time.Hour
	rules.MaxUnanswered = 2
	s, clk := newStore(t, rules)
	// Sessions ending 20 minutes apart; some answered once (Expiring, not
	// waiting), some up to the limit (Locked).
	for i := range 8 {
		r := receive(t, s, fmt.Sprintf("+37529860%04d", i), "hello")
		for range i % 3 {
			if _, err := sendText(s, r.Message.ConversationID, "answer", false); err != nil {
				t.Fatal(err)
			}
		}
		clk.Add(20 * time.Minute)
	}
	seen := map[string]bool{}
	before := reusedCounts(s)
	for step := 0; step <= 3*60+30; step++ {
		for _, status := range []string{"", StatusAny} {
			memo, fresh := bothViewCounts(t, s, status, time.Hour)
			if fmt.Sprint(memo) != fmt.Sprint(fresh) {
				t.Fatalf("at %s, status %q: the reused counts are %+v, counted afresh %+v",
					clk.Now().Sub(t0), status, memo, fresh)
			}
			seen[fmt.Sprint(fresh.Waiting, fresh.Expiring, fresh.Locked)] = true
		}
		clk.Add(time.Minute)
	}
	// The walk crossed boundaries (the counts changed many times) and reused
	// most of its readings in between, or it proved nothing.
	if len(seen) < 6 {
		t.Errorf("the walk saw only %d different counts: %v", len(seen), seen)
	}
	if reused := reusedCounts(s) - before; reused < 300 {
		t.Errorf("only %d of about 420 readings reused the counts", reused)
	}
	// A write is never hidden by a reuse: a client's message changes Waiting.
	_, fresh := bothViewCounts(t, s, "", time.Hour)
	receive(t, s, "+375298609999", "new")
	memo, _ := bothViewCounts(t, s, "", time.Hour)
	if memo.Waiting != fresh.Waiting+1 {
		t.Errorf("after a new client wrote, Waiting is %d, was %d", memo.Waiting, fresh.Waiting)
	}
}

// Readers racing the writer never take counts of other commits than their
// snapshot's: each reading through the memo equals a fresh count in the same
// snapshot while clients write and agents answer.
func TestViewCountsUnderConcurrentWrites(t *testing.T) {
	rules := session.Defaults()
	rules.MaxUnanswered = 2
	s, _ := newStore(t, rules)
	ctx := context.Background()
	var conv []int64
	for i := range 20 {
		conv = append(conv, receive(t, s, fmt.Sprintf("+37529861%04d", i), "hi").Message.ConversationID)
	}
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 0 {
					if _, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: fmt.Sprintf("+37529861%04d", (i+w)%20),
						Kind: session.Text, Text: "again"}); err != nil {
						t.Error(err)
						return
					}
				} else {
					_, _ = sendText(s, conv[(i*7+w)%20], "answer", false) // refusals are part of the traffic
				}
			}
		})
	}
	var readers sync.WaitGroup
	for range 3 {
		readers.Go(func() {
			for range 300 {
				var memo, fresh ViewCounts
				err := s.Read(ctx, func(r *Reader) (err error) {
					if memo, err = r.ViewCounts(ctx, "", time.Hour); err != nil {
						return err
					}
					fresh, err = freshViewCounts(ctx, r, "", time.Hour)
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				if fmt.Sprint(memo) != fmt.Sprint(fresh) {
					t.Errorf("the reused counts are %+v, counted afresh in the same snapshot %+v", memo, fresh)
					return
				}
			}
		})
	}
	readers.Wait()
	close(stop)
	writers.Wait()
}

package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"sessiondesk/session"
)

// historyStep is one call of a played history.
type historyStep struct {
	client bool
	phone  string
	text   string
	status string // for a business message: what the phone reported
}

// history has two clients, a reply that the unanswered limit refuses (the
// sixth in a row), a gap that closes the first session, and statuses.
func history() []historyStep {
	steps := []historyStep{
		{client: true, phone: "+4915110000001", text: "hello"},
		{client: true, phone: "+4915110000002", text: "hi there"},
	}
	for i := range 6 {
		steps = append(steps, historyStep{phone: "+4915110000001", text: fmt.Sprintf("reply %d", i), status: StatusDelivered})
	}
	steps = append(steps,
		historyStep{phone: "+4915110000002", text: "answer", status: StatusSeen},
		historyStep{client: true, phone: "+4915110000001", text: "back after a day"},
		historyStep{phone: "+4915110000001", text: "welcome back", status: StatusSent},
	)
	return steps
}

// play runs the history through st at one minute per step (a day before the
// last client message), returning how many calls the rules refused.
func play(t *testing.T, st *Store, start time.Time) int {
	t.Helper()
	ctx := context.Background()
	agent, err := st.EnsureAgent(ctx, "importer", "Importer", "agent")
	if err != nil {
		t.Fatalf("agent: %v", err)
	}
	convs := map[string]int64{}
	refused := 0
	at := start
	for i, s := range history() {
		at = at.Add(time.Minute)
		if s.text == "back after a day" {
			at = at.Add(25 * time.Hour)
		}
		past := st.WithClock(func() time.Time { return at })
		if s.client {
			rec, err := past.ReceiveClientMessage(ctx, ClientMessage{Phone: s.phone, Name: "Client " + s.phone[len(s.phone)-1:],
				Kind: session.Text, Text: s.text, SentAt: at, DedupeKey: fmt.Sprintf("k%d", i)})
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			convs[s.phone] = rec.Message.ConversationID
			continue
		}
		msgs, err := past.AcceptBusinessMessages(ctx, BusinessSend{ConversationID: convs[s.phone], AgentID: agent.ID,
			Parts: []session.Part{{Kind: session.Text, Text: s.text}}})
		var refusal *session.Refusal
		if errors.As(err, &refusal) {
			refused++
			continue
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if _, err := past.ApplyStatus(ctx, StatusUpdate{Ref: MessageRef{ID: msgs[0].ID}, Status: s.status, At: at,
			ProviderID: fmt.Sprintf("p-%d", msgs[0].ID)}); err != nil {
			t.Fatalf("step %d status: %v", i, err)
		}
	}
	return refused
}

// snapshot is everything an agent can see, read back through the store.
type snapshot struct {
	Conversations []Conversation
	Messages      map[int64][]Message
	Events        []Event
}

func readBack(t *testing.T, st *Store) snapshot {
	t.Helper()
	ctx := context.Background()
	snap := snapshot{Messages: map[int64][]Message{}}
	err := st.Read(ctx, func(r *Reader) error {
		var err error
		if snap.Conversations, err = r.Conversations(ctx, 100); err != nil {
			return err
		}
		for _, c := range snap.Conversations {
			if snap.Messages[c.ID], err = r.Messages(ctx, c.ID, 100); err != nil {
				return err
			}
		}
		snap.Events, err = r.EventsAfter(ctx, 0, 1000)
		return err
	})
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	return snap
}

func openBatchStore(t *testing.T, name string, now func() time.Time, committed func()) *Store {
	t.Helper()
	st, err := Open(context.Background(), filepath.Join(t.TempDir(), name), Options{Rules: session.Defaults(), Now: now, Committed: committed})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A history imported in one batch reads back exactly like the same history
// made through one transaction per call, refusals included.
func TestBatchReadsBackLikeSingleCalls(t *testing.T) {
	now := func() time.Time { return t0.Add(48 * time.Hour) }
	single := openBatchStore(t, "single.db", now, nil)
	wantRefused := play(t, single, t0)
	if wantRefused != 1 {
		t.Fatalf("the history should have one refusal (the sixth reply in a row), got %d", wantRefused)
	}
	want := readBack(t, single)

	commits := 0
	batched := openBatchStore(t, "batched.db", now, func() { commits++ })
	var refused int
	if err := batched.Batch(context.Background(), func(b *Store) error {
		refused = play(t, b, t0)
		return nil
	}); err != nil {
		t.Fatalf("batch: %v", err)
	}
	got := readBack(t, batched)
	if refused != wantRefused {
		t.Errorf("refused in the batch: %d, want %d", refused, wantRefused)
	}
	if commits != 1 {
		t.Errorf("Committed called %d times for one batch, want 1", commits)
	}
	if len(got.Conversations) != 2 || len(got.Events) == 0 {
		t.Fatalf("batch stored %d conversations and %d events, want 2 and some", len(got.Conversations), len(got.Events))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("batched import reads back differently:\n got %+v\nwant %+v", got, want)
	}
}

// A batch whose function fails stores nothing at all; a batch in a batch is refused.
func TestBatchFailureStoresNothing(t *testing.T) {
	st := openBatchStore(t, "fail.db", func() time.Time { return t0 }, nil)
	boom := errors.New("boom")
	err := st.Batch(context.Background(), func(b *Store) error {
		if _, err := b.ReceiveClientMessage(context.Background(), ClientMessage{Phone: "+4915110000001", Kind: session.Text, Text: "x"}); err != nil {
			return err
		}
		if err := b.Batch(context.Background(), func(*Store) error { return nil }); err == nil {
			t.Error("a batch inside a batch was accepted")
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("batch error = %v, want boom", err)
	}
	if snap := readBack(t, st); len(snap.Conversations) != 0 || len(snap.Events) != 0 {
		t.Errorf("a failed batch left %d conversations and %d events", len(snap.Conversations), len(snap.Events))
	}
}

// A call that fails inside a batch, even after writing part of its rows, leaves
// nothing behind, and the batch goes on.
func TestBatchBadCallLeavesNothing(t *testing.T) {
	st := openBatchStore(t, "bad.db", func() time.Time { return t0 }, nil)
	ctx := context.Background()
	err := st.Batch(ctx, func(b *Store) error {
		var invalid *InvalidError
		if _, err := b.ReceiveClientMessage(ctx, ClientMessage{Phone: "+4915110000001", Kind: session.Text, Text: "  "}); !errors.As(err, &invalid) {
			t.Errorf("blank text in a batch: %v, want an InvalidError", err)
		}
		rec, err := b.ReceiveClientMessage(ctx, ClientMessage{Phone: "+4915110000001", Kind: session.Text, Text: "ok"})
		if err != nil {
			return err
		}
		// An image without its stored bytes is refused after its row was written.
		if _, err := b.AcceptBusinessMessages(ctx, BusinessSend{ConversationID: rec.Message.ConversationID,
			Parts: []session.Part{{Kind: session.Image}}}); !errors.As(err, &invalid) {
			t.Errorf("an image without bytes in a batch: %v, want an InvalidError", err)
		}
		_, err = b.AcceptBusinessMessages(ctx, BusinessSend{ConversationID: rec.Message.ConversationID,
			Parts: []session.Part{{Kind: session.Text, Text: "answer"}}})
		return err
	})
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	snap := readBack(t, st)
	if len(snap.Conversations) != 1 {
		t.Fatalf("%d conversations, want 1", len(snap.Conversations))
	}
	msgs := snap.Messages[snap.Conversations[0].ID]
	if len(msgs) != 2 || msgs[1].Body != "answer" || len(snap.Events) != 2 {
		t.Errorf("after the failed calls: messages %+v and %d events; want the client's and the answer, 2 events", msgs, len(snap.Events))
	}
	if used := snap.Conversations[0].State.Current.Used; used != 1 {
		t.Errorf("the session counts %d business messages, want 1 (the failed image must not count)", used)
	}
}

// BenchmarkBatchImport is the bulk path's speed: one client message and one
// answered business message per iteration, 1000 to a batch.
func BenchmarkBatchImport(b *testing.B) {
	st, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), Options{Rules: session.Defaults()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	b.ResetTimer()
	for done := 0; done < b.N; {
		err := st.Batch(ctx, func(bs *Store) error {
			for ; done < b.N; done++ {
				rec, err := bs.ReceiveClientMessage(ctx, ClientMessage{Phone: fmt.Sprintf("+49151%08d", done), Kind: session.Text, Text: "hello"})
				if err != nil {
					return err
				}
				msgs, err := bs.AcceptBusinessMessages(ctx, BusinessSend{ConversationID: rec.Message.ConversationID,
					Parts: []session.Part{{Kind: session.Text, Text: "hi"}}})
				if err != nil {
					return err
				}
				if _, err := bs.ApplyStatus(ctx, StatusUpdate{Ref: MessageRef{ID: msgs[0].ID}, Status: StatusDelivered,
					ProviderID: fmt.Sprintf("p%d", msgs[0].ID)}); err != nil {
					return err
				}
				if done%1000 == 999 {
					done++
					return nil
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

package dataset

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"sessiondesk/phone"
	"sessiondesk/session"
	"sessiondesk/store"
)

// A generated dataset has the asked sizes, in conversations in generation
// order, valid phone numbers, and nothing left for the outbox to send.
func TestGenerateMakesTheAskedDataset(t *testing.T) {
	ctx := context.Background()
	spec := Spec{Conversations: 7, Messages: 40} // 5 conversations of 6 messages, 2 of 5
	path, took, err := Cached(ctx, t.TempDir(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if took <= 0 {
		t.Errorf("a fresh dataset reports no generation time")
	}
	st, err := store.Open(ctx, path, store.Options{Rules: session.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	total := 0
	err = st.Read(ctx, func(r *store.Reader) error {
		convs, err := r.Conversations(ctx, 100)
		if err != nil {
			return err
		}
		if len(convs) != spec.Conversations {
			t.Fatalf("%d conversations, want %d", len(convs), spec.Conversations)
		}
		for i := range spec.Conversations {
			cv, err := r.Conversation(ctx, ConversationID(i))
			if err != nil {
				return err
			}
			if cv.Contact.Phone != Phone(i) {
				t.Errorf("conversation %d is %s's, want %s's", ConversationID(i), cv.Contact.Phone, Phone(i))
			}
			msgs, err := r.Messages(ctx, cv.ID, 100)
			if err != nil {
				return err
			}
			total += len(msgs)
			for _, m := range msgs {
				if m.Direction == store.Outbound && (m.Status != store.StatusDelivered || m.ProviderID == "") {
					t.Errorf("business message %d is %s with provider id %q: the outbox would send it", m.ID, m.Status, m.ProviderID)
				}
			}
		}
		// The list shows the newest first: the last generated conversation.
		if convs[0].ID != ConversationID(spec.Conversations-1) {
			t.Errorf("newest conversation %d, want %d", convs[0].ID, ConversationID(spec.Conversations-1))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total != spec.Messages {
		t.Errorf("%d messages, want %d", total, spec.Messages)
	}
	queued, err := st.Queued(ctx, 10)
	if err != nil || len(queued) != 0 {
		t.Errorf("queued messages %v (%v), want none", queued, err)
	}
	for _, i := range []int{0, 99_999, 9_999_999} {
		if _, err := phone.Parse(Phone(i)); err != nil {
			t.Errorf("Phone(%d) = %s: %v", i, Phone(i), err)
		}
	}
}

// The cache hands back the same file without generating again; a copy is
// independent of it and never overwrites a database.
func TestCachedReusesAndCopiesAreIndependent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	spec := Spec{Conversations: 2, Messages: 4}
	first, _, err := Cached(ctx, dir, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, took, err := Cached(ctx, dir, spec, nil)
	if err != nil || again != first || took != 0 {
		t.Fatalf("second Cached = %s, %s, %v; want %s from the cache", again, took, err, first)
	}
	dst := filepath.Join(t.TempDir(), "run", "sessiondesk.db")
	if err := CopyTo(first, dst); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(store.SearchPath(dst)); err != nil {
		t.Errorf("the copy has no search index beside it: %v", err)
	}
	if err := os.WriteFile(dst, []byte("changed by a run"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(first); string(b) == "changed by a run" {
		t.Error("writing the copy changed the cached dataset")
	}
	if err := CopyTo(first, dst); !errors.Is(err, os.ErrExist) {
		t.Errorf("copy over an existing database: %v, want ErrExist", err)
	}
	if _, err := os.Stat(first + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a partial file was left behind: %v", err)
	}
}

// A cached dataset, when reused, loses the events a running inbox would have
// pruned by now (those past the default retention), and keeps the others: the
// product's first start has no backlog to prune during its measurements.
func TestCachedDatasetKeepsOnlyRetainedEvents(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	spec := Spec{Conversations: 3, Messages: 6}
	path, _, err := Cached(ctx, dir, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	firstKept := func() (id, last int64) {
		t.Helper()
		st, err := store.Open(ctx, path, store.Options{Rules: session.Defaults()})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		err = st.Read(ctx, func(r *store.Reader) error {
			if id, err = r.FirstKeptEventID(ctx); err != nil {
				return err
			}
			last, err = r.LastEventID(ctx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return id, last
	}
	fresh, last := firstKept()
	// Conversation 0 began exactly 30 days before the generation: by now its
	// first message's events are past the retention.
	if _, _, err := Cached(ctx, dir, spec, nil); err != nil {
		t.Fatal(err)
	}
	kept, lastAfter := firstKept()
	if kept <= fresh {
		t.Errorf("reusing the dataset kept event %d on, as fresh (%d): nothing past the retention was pruned", kept, fresh)
	}
	if lastAfter != last || kept > last {
		t.Errorf("events kept %d–%d, want up to %d: the recent ones must stay", kept, lastAfter, last)
	}
}

func TestSpecRefusesImpossibleSizes(t *testing.T) {
	for _, s := range []Spec{{0, 10}, {10, 9}, {-1, 5}, {20_000_000, 30_000_000}} {
		if err := s.Check(); err == nil {
			t.Errorf("%+v accepted", s)
		}
		if _, _, err := Cached(context.Background(), t.TempDir(), s, nil); err == nil {
			t.Errorf("Cached(%+v) accepted", s)
		}
	}
}

// Package dataset makes the load tool's databases: a history of N
// conversations and M messages played through the store's own calls
// (store.Batch), cached by size so that repeated runs reuse it.
package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"sessiondesk/config"
	"sessiondesk/session"
	"sessiondesk/store"
)

// version names the generator in the cache's file names: bump it whenever
// what Generate writes changes, so that an old cached file is not reused.
const version = 2

// batchCalls is how many store calls share one transaction.
const batchCalls = 3000

// Spec is the size of a dataset.
type Spec struct {
	Conversations int
	Messages      int // in all; spread evenly, at least one per conversation
}

// Check refuses sizes Generate cannot make.
func (s Spec) Check() error {
	switch {
	case s.Conversations < 1:
		return fmt.Errorf("dataset: want at least one conversation, got %d", s.Conversations)
	case s.Messages < s.Conversations:
		return fmt.Errorf("dataset: %d messages cannot fill %d conversations (one at least each)", s.Messages, s.Conversations)
	case s.Conversations > 10_000_000:
		return fmt.Errorf("dataset: %d conversations is more than the phone numbering holds", s.Conversations)
	}
	return nil
}

// Phone is the E.164 number of the i-th client (0-based): German mobile
// numbers, valid for the webhook's phone check. Numbers from Conversations on
// are new clients.
func Phone(i int) string { return fmt.Sprintf("+49151%08d", 10_000_000+i) }

// ConversationID is the id the i-th client's conversation gets: Generate
// creates them in order in a new database.
func ConversationID(i int) int64 { return int64(i) + 1 }

// Generate writes the dataset into a new database at path. Conversation i
// alternates client messages and agent replies, two minutes apart, its first
// message i·(30 days / N) after a start 30 days before now, so the list's
// order is the generation order. Replies are marked delivered with a provider
// id, so the product's outbox has nothing to send.
func Generate(ctx context.Context, path string, spec Spec, progress io.Writer) error {
	if err := spec.Check(); err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("dataset: %s exists already", path)
	}
	st, err := store.Open(ctx, path, store.Options{Rules: session.Defaults()})
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	defer st.Close()
	agent, err := st.EnsureAgent(ctx, "load-agent", "Load agent", "agent")
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	start := time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Millisecond)
	stride := 30 * 24 * time.Hour / time.Duration(spec.Conversations)
	per, extra := spec.Messages/spec.Conversations, spec.Messages%spec.Conversations
	var at time.Time
	clock := func() time.Time { return at }
	conv, calls, reported := 0, 0, 0
	began := time.Now()
	for conv < spec.Conversations {
		err := st.Batch(ctx, func(b *store.Store) error {
			b = b.WithClock(clock)
			for calls = 0; calls < batchCalls && conv < spec.Conversations; conv++ {
				n := per
				if conv < extra {
					n++
				}
				if err := playConversation(ctx, b, agent.ID, conv, n, start.Add(time.Duration(conv)*stride), &at, &calls); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("dataset: conversation %d: %w", conv, err)
		}
		if progress != nil && (conv-reported >= 20_000 || conv == spec.Conversations) {
			reported = conv
			fmt.Fprintf(progress, "dataset: %d/%d conversations (%s)\n", conv, spec.Conversations, time.Since(began).Round(time.Second))
		}
	}
	// The search index (a file beside the database) is built now, so that no
	// run's product spends its first minutes building it.
	if err := st.IndexSearch(ctx); err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	return st.Close()
}

// playConversation plays one conversation of n messages from first on,
// setting *at before every call and counting the calls made.
func playConversation(ctx context.Context, b *store.Store, agentID int64, i, n int, first time.Time, at *time.Time, calls *int) error {
	var convID int64
	for j := range n {
		*at = first.Add(time.Duration(j) * 2 * time.Minute)
		if j%2 == 0 || convID == 0 {
			rec, err := b.ReceiveClientMessage(ctx, store.ClientMessage{
				Phone: Phone(i), Name: fmt.Sprintf("Client %07d", i), Country: "DE", Kind: session.Text,
				Text: fmt.Sprintf("Hello, a question about order #%d (%d)", 100000+i, j), SentAt: *at,
				DedupeKey: fmt.Sprintf("load:%d:%d", i, j),
			})
			if err != nil {
				return err
			}
			convID = rec.Message.ConversationID
			*calls++
			continue
		}
		msgs, err := b.AcceptBusinessMessages(ctx, store.BusinessSend{ConversationID: convID, AgentID: agentID,
			Parts: []session.Part{{Kind: session.Text, Text: fmt.Sprintf("Thanks, we are looking at order #%d.", 100000+i)}}})
		var refusal *session.Refusal
		if errors.As(err, &refusal) {
			continue // cannot happen with alternating turns under the default rules; keep going if it does
		}
		if err != nil {
			return err
		}
		if _, err := b.ApplyStatus(ctx, store.StatusUpdate{Ref: store.MessageRef{ID: msgs[0].ID}, Status: store.StatusDelivered,
			At: *at, ProviderID: fmt.Sprintf("load-%d", msgs[0].ID)}); err != nil {
			return err
		}
		*calls += 2
	}
	return nil
}

// Cached returns the path of the dataset for spec in dir, generating it first
// when it is not there (into a temporary name, renamed once complete, so an
// interrupted generation is never reused). took is how long generating took,
// zero when the cache had it.
func Cached(ctx context.Context, dir string, spec Spec, progress io.Writer) (path string, took time.Duration, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", 0, fmt.Errorf("dataset cache: %w", err)
	}
	path = filepath.Join(dir, fmt.Sprintf("dataset-v%d-c%d-m%d.db", version, spec.Conversations, spec.Messages))
	if _, err := os.Stat(path); err == nil {
		// Brought to this binary's schema once here, so that no run's start
		// (and its cold-start figure) pays for migrating a dataset made by an
		// older one.
		if err := migrate(ctx, path); err != nil {
			return "", 0, err
		}
		return path, 0, nil
	}
	tmp := path + ".partial"
	for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm", store.SearchPath(tmp), store.SearchPath(tmp) + "-wal", store.SearchPath(tmp) + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", 0, fmt.Errorf("dataset cache: %w", err)
		}
	}
	began := time.Now()
	if err := Generate(ctx, tmp, spec, progress); err != nil {
		return "", 0, err
	}
	took = time.Since(began)
	if _, err := os.Stat(tmp + "-wal"); err == nil {
		return "", 0, fmt.Errorf("dataset: %s-wal left after close: the database was not checkpointed", tmp)
	}
	// The index first: a dataset in place always has its own.
	if err := os.Rename(store.SearchPath(tmp), store.SearchPath(path)); err != nil {
		return "", 0, fmt.Errorf("dataset cache: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", 0, fmt.Errorf("dataset cache: %w", err)
	}
	return path, took, nil
}

// migrate opens the dataset with the store, which migrates it to the latest
// schema, brings its search index up to date, prunes the events a running
// inbox would have pruned, and closes it with everything checkpointed into
// the one file (and the index's).
func migrate(ctx context.Context, path string) error {
	st, err := store.Open(ctx, path, store.Options{Rules: session.Defaults()})
	if err != nil {
		return fmt.Errorf("dataset %s: %w", path, err)
	}
	// The product prunes every hour, so it never holds more than an hour of
	// events past its retention; a cached dataset ages, and after a few days
	// its first start would prune tens of thousands of events, in the middle
	// of the cold start and idle memory figures.
	if _, err := st.PruneEvents(ctx, time.Now().Add(-config.DefaultEventRetention), store.PruneBatch); err != nil {
		st.Close()
		return fmt.Errorf("dataset %s: %w", path, err)
	}
	if err := st.IndexSearch(ctx); err != nil {
		st.Close()
		return fmt.Errorf("dataset %s: %w", path, err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("dataset %s: %w", path, err)
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		return fmt.Errorf("dataset: %s-wal left after close: the database was not checkpointed", path)
	}
	return nil
}

// CopyTo copies a cached dataset and its search index to dst (the product's
// data file) and the index's place beside it, so every run starts from the
// same database and leaves the cache untouched.
func CopyTo(src, dst string) error {
	if err := copyFile(src, dst); err != nil {
		return err
	}
	return copyFile(store.SearchPath(src), store.SearchPath(dst))
}

// copyFile copies one file. The copy is flushed to the disk before the
// product starts, so that the product's first fsync of the file (its first
// checkpoint, during a measurement) does not also write back the tool's copy:
// half a gigabyte at 1M messages.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("dataset copy: %w", err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return fmt.Errorf("dataset copy: %w", err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("dataset copy: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("dataset copy: %w", err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("dataset copy: %w", err)
	}
	return out.Close()
}

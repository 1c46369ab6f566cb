package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"sessiondesk/session"
)

// BenchmarkListView reads the inbox's first page of 50 rows (each with its
// contact, last message, session and the agent's read mark) out of 5,000
// conversations, as every page load and the JSON list do.
func BenchmarkListView(b *testing.B) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), Options{Rules: session.Defaults()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	agent, err := st.EnsureAgent(ctx, "olga", "Olga", "agent")
	if err != nil {
		b.Fatal(err)
	}
	err = st.Batch(ctx, func(bs *Store) error {
		for i := range 5000 {
			rec, err := bs.ReceiveClientMessage(ctx, ClientMessage{Phone: fmt.Sprintf("+49151%08d", i), Kind: session.Text, Text: "hello"})
			if err != nil {
				return err
			}
			if i%2 == 0 { // half answered: in the activity band, not waiting
				if _, err := bs.AcceptBusinessMessages(ctx, BusinessSend{ConversationID: rec.Message.ConversationID,
					Parts: []session.Part{{Kind: session.Text, Text: "hi"}}}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	q := ListQuery{Agent: agent.ID}
	b.ReportAllocs()
	for b.Loop() {
		err := st.Read(ctx, func(r *Reader) error {
			rows, _, err := r.ListView(ctx, q, nil, 50)
			if err == nil && len(rows) != 50 {
				err = fmt.Errorf("%d rows", len(rows))
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

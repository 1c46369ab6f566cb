package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"sessiondesk/clock"
	"sessiondesk/session"
)

// recount compares the counters the triggers keep with a count of the
// messages themselves, for every session and conversation.
func recount(ctx context.Context, s *Store) error {
	var bad []string
	rows, err := s.read.QueryContext(ctx, `
		SELECT s.id, s.used, s.media_used, s.last_in_id > s.last_out_id,
		       (SELECT count(*) FROM messages WHERE session_id = s.id AND direction = 'out' AND counted = 1),
		       (SELECT count(*) FROM messages WHERE session_id = s.id AND direction = 'out' AND counted = 1 AND kind <> 'text'),
		       coalesce((SELECT direction = 'in' FROM messages
		                  WHERE session_id = s.id AND (direction = 'in' OR counted = 1)
		                  ORDER BY id DESC LIMIT 1), 0)
		FROM sessions s`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, used, media, wantUsed, wantMedia int
		var clientLast, wantClientLast bool
		if err := rows.Scan(&id, &used, &media, &clientLast, &wantUsed, &wantMedia, &wantClientLast); err != nil {
			rows.Close()
			return err
		}
		if used != wantUsed || media != wantMedia {
			bad = append(bad, fmt.Sprintf("session %d: used %d/%d media %d/%d (kept/counted)", id, used, wantUsed, media, wantMedia))
		}
		if clientLast != wantClientLast {
			bad = append(bad, fmt.Sprintf("session %d: client wrote last %v, the messages say %v", id, clientLast, wantClientLast))
		}
	}
	rows.Close()
	rows, err = s.read.QueryContext(ctx, `
		SELECT c.id, c.last_in_id, c.unanswered, c.unread, c.session_ends_at, c.latest_session_id,
		       coalesce((SELECT ends_at FROM sessions WHERE conversation_id = c.id ORDER BY number DESC LIMIT 1), 0),
		       coalesce((SELECT id FROM sessions WHERE conversation_id = c.id ORDER BY number DESC LIMIT 1), 0),
		       coalesce((SELECT max(id) FROM messages WHERE conversation_id = c.id AND direction = 'in'), 0),
		       (SELECT count(*) FROM messages WHERE conversation_id = c.id AND direction = 'out' AND counted = 1
		          AND id > (SELECT coalesce(max(id), 0) FROM messages WHERE conversation_id = c.id AND direction = 'in')),
		       (SELECT count(*) FROM messages WHERE conversation_id = c.id AND direction = 'in' AND id > c.last_read_message_id)
		FROM conversations c`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, lastIn, unanswered, unread, wantLastIn, wantUnanswered, wantUnread int
		var ends, wantEnds, latest, wantLatest int64
		if err := rows.Scan(&id, &lastIn, &unanswered, &unread, &ends, &latest, &wantEnds, &wantLatest, &wantLastIn, &wantUnanswered, &wantUnread); err != nil {
			return err
		}
		if ends != wantEnds {
			bad = append(bad, fmt.Sprintf("conversation %d: session_ends_at %d, latest session ends %d", id, ends, wantEnds))
		}
		if latest != wantLatest {
			bad = append(bad, fmt.Sprintf("conversation %d: latest_session_id %d, latest session %d", id, latest, wantLatest))
		}
		if lastIn != wantLastIn || unanswered != wantUnanswered || unread != wantUnread {
			bad = append(bad, fmt.Sprintf("conversation %d: last_in %d/%d unanswered %d/%d unread %d/%d (kept/counted)",
				id, lastIn, wantLastIn, unanswered, wantUnanswered, unread, wantUnread))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return rows.Err()
}

// TestCountersMatchTheMessages plays random traffic (clients writing, agents
// sending text and images, rejections, failures, retries, reads, time passing
// over windows and rollovers) with tight rules so that every limit is hit, and
// checks after every step that the counters equal a recount of the messages.
func TestCountersMatchTheMessages(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rules := session.Defaults()
			rules.Window = 2 * time.Hour
			rules.MaxPerSession = 4
			rules.MaxUnanswered = 3
			if seed%2 == 0 {
				rules.AfterCap = session.Close
			}
			clk := clock.NewManual(t0)
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"), Options{Rules: rules, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			reader, err := s.EnsureAgent(ctx, "reader", "Reader", "agent")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			rng := rand.New(rand.NewPCG(seed, 99))
			phones := []string{"+375298600001", "+375298600002", "+375298600003"}
			convs := map[string]int64{}
			var sent []int64 // business messages, to reject, fail or retry
			img := NewAttachment{Hash: strings.Repeat("ab", 32), Size: 10, MIME: "image/png", Name: "a.png", Width: 1, Height: 1}
			for step := 0; step < 400; step++ {
				phone := phones[rng.IntN(len(phones))]
				var op string
				switch k := rng.IntN(100); {
				case k < 25:
					op = "receive"
					r, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: phone, Kind: session.Text, Text: "hi"})
					if err != nil {
						t.Fatalf("step %d receive: %v", step, err)
					}
					convs[phone] = r.Message.ConversationID
				case k < 60:
					op = "send"
					conv, ok := convs[phone]
					if !ok {
						continue
					}
					send := BusinessSend{ConversationID: conv, ConfirmNewSession: rng.IntN(2) == 0,
						Parts: []session.Part{{Kind: session.Text, Text: "reply"}}}
					if rng.IntN(3) == 0 {
						a := img
						send.Parts = append(send.Parts, session.Part{Kind: session.Image})
						send.Attachments = []*NewAttachment{nil, &a}
					}
					msgs, err := s.AcceptBusinessMessages(ctx, send)
					var refusal *session.Refusal
					if err != nil && !errors.As(err, &refusal) {
						t.Fatalf("step %d send: %v", step, err)
					}
					for _, m := range msgs {
						sent = append(sent, m.ID)
					}
				case k < 70 && len(sent) > 0:
					op = "reject"
					if err := s.RejectMessage(ctx, MessageRef{ID: sent[rng.IntN(len(sent))]}, "not a Viber user"); err != nil {
						t.Fatalf("step %d reject: %v", step, err)
					}
				case k < 78 && len(sent) > 0:
					op = "status"
					status := []string{StatusSent, StatusDelivered, StatusUndelivered, StatusExpired, StatusSeen}[rng.IntN(5)]
					if _, err := s.ApplyStatus(ctx, StatusUpdate{Ref: MessageRef{ID: sent[rng.IntN(len(sent))]}, Status: status}); err != nil {
						t.Fatalf("step %d status: %v", step, err)
					}
				case k < 86 && len(sent) > 0:
					op = "retry"
					m, err := s.RetryMessage(ctx, sent[rng.IntN(len(sent))], 0, true)
					var refusal *session.Refusal
					var invalid *InvalidError
					if err != nil && !errors.As(err, &refusal) && !errors.As(err, &invalid) {
						t.Fatalf("step %d retry: %v", step, err)
					}
					if err == nil {
						sent = append(sent, m.ID)
					}
				case k < 92:
					op = "read"
					if conv, ok := convs[phone]; ok {
						if err := s.MarkRead(ctx, reader.ID, conv); err != nil {
							t.Fatalf("step %d read: %v", step, err)
						}
					}
				default:
					op = "time"
					clk.Add(time.Duration(rng.IntN(90)) * time.Minute)
				}
				if err := recount(ctx, s); err != nil {
					t.Fatalf("step %d (%s): %v", step, op, err)
				}
			}
		})
	}
}

// The migration that introduced the counters fills them in for data stored
// before it: a database taken back to the schema before it, with messages
// stored meanwhile, gets the right counts when it migrates up again.
func TestCountersBackfilledByTheMigration(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	r := receive(t, s, "+375298603938", "hello")
	conv := r.Message.ConversationID
	for range 3 {
		if _, err := sendText(s, conv, "reply", false); err != nil {
			t.Fatal(err)
		}
	}
	receive(t, s, "+375298603938", "again")
	if _, err := sendText(s, conv, "one more", false); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	// Forget the counters, as a database from before the migration has none.
	if _, err := s.write.ExecContext(ctx, `UPDATE sessions SET used = 0, media_used = 0;
		UPDATE conversations SET last_in_id = 0, unanswered = 0, unread = 0`); err != nil {
		t.Fatal(err)
	}
	if err := recount(ctx, s); err == nil {
		t.Fatal("zeroed counters still match: the check cannot fail")
	}
	// The migrations after 00010 go first, by their own Down.
	if err := migrateDownTo(ctx, s.write, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(ctx, `DELETE FROM goose_db_version WHERE version_id = 10;
		DROP TRIGGER conversations_count_unread; DROP TRIGGER messages_count_delete;
		DROP TRIGGER messages_count_update; DROP TRIGGER messages_count_insert;
		ALTER TABLE conversations DROP COLUMN unread; ALTER TABLE conversations DROP COLUMN unanswered;
		ALTER TABLE conversations DROP COLUMN last_in_id; ALTER TABLE sessions DROP COLUMN media_used;
		ALTER TABLE sessions DROP COLUMN used`); err != nil {
		t.Fatal(err)
	}
	// The later migrations stay applied: 00010 alone runs again.
	p, err := migrationProvider(s.write, goose.WithAllowOutofOrder(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if err := recount(ctx, s); err != nil {
		t.Fatal(err)
	}
	st := state(t, s, conv)
	if st.Current == nil || st.Current.Used != 4 || st.Unanswered != 1 {
		t.Errorf("after the migration: %+v, want 4 used and 1 unanswered", st)
	}
}

// A contact's number is formatted once, when it is stored, and contacts
// stored before that (migration 00016) get theirs when the store opens.
func TestPhoneDisplayStoredOnceAndFilledIn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	ctx := context.Background()
	s, err := Open(ctx, path, Options{Rules: session.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	r := receive(t, s, "+375298603938", "hello")
	display := func(s *Store) string {
		var c Conversation
		if err := s.Read(ctx, func(rd *Reader) (err error) {
			c, err = rd.Conversation(ctx, r.Message.ConversationID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return c.Contact.PhoneDisplay
	}
	if got := display(s); got != "+375 29 860-39-38" {
		t.Errorf("stored display %q", got)
	}
	if _, err := s.write.ExecContext(ctx, `UPDATE contacts SET phone_display = ''`); err != nil {
		t.Fatal(err)
	}
	if err := migrateDownTo(ctx, s.write, 47); err != nil { // before 00048 recorded the upgrade
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path, Options{Rules: session.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }() // the last one opened
	if got := display(s); got != "+375 29 860-39-38" {
		t.Errorf("display after reopening %q, want it filled in", got)
	}
	// Done once: a later start does not read every contact again.
	if _, err := s.write.ExecContext(ctx, `UPDATE contacts SET phone_display = ''`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(ctx, path, Options{Rules: session.Defaults()}); err != nil {
		t.Fatal(err)
	}
	if got := display(s); got != "" {
		t.Errorf("a start after the upgrade was done formatted again: %q", got)
	}
}

// migrationProvider is goose over the store's migrations on db, for the tests
// that move a database down and up.
func migrationProvider(db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectSQLite3, db, dir, append(opts, goose.WithDisableGlobalRegistry(true))...)
}

// migrateDownTo runs the Down of every migration above version.
func migrateDownTo(ctx context.Context, db *sql.DB, version int64) error {
	p, err := migrationProvider(db)
	if err != nil {
		return err
	}
	_, err = p.DownTo(ctx, version)
	return err
}

// Migration 00055 fills in each conversation's latest session (the one with
// the highest number, none for a contact who never wrote), and its Down
// leaves the schema that reads it out.
func TestLatestSessionBackfilledByTheMigration(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	twice := receive(t, s, "+375298603938", "hello").Message.ConversationID
	clk.Add(25 * time.Hour)
	receive(t, s, "+375298603938", "again, a day later")
	once := receive(t, s, "+375298600000", "hi").Message.ConversationID
	if _, err := s.write.ExecContext(ctx, `INSERT INTO contacts (phone, name, created_at) VALUES ('+375298611111', '', 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(ctx, `INSERT INTO conversations (contact_id, created_at)
		SELECT id, 0 FROM contacts WHERE phone = '+375298611111'`); err != nil {
		t.Fatal(err)
	}
	if err := migrateDownTo(ctx, s.write, 54); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(ctx, `SELECT latest_session_id FROM conversations`); err == nil {
		t.Fatal("latest_session_id is still there after the Down")
	}
	if err := migrateUp(ctx, s.write); err != nil {
		t.Fatal(err)
	}
	if err := recount(ctx, s); err != nil {
		t.Fatal(err)
	}
	if st := state(t, s, twice); st.Current == nil || st.Current.Number != 2 {
		t.Errorf("after the migration the conversation's session is %+v, want number 2", st.Current)
	}
	if st := state(t, s, once); st.Current == nil || st.Current.Number != 1 {
		t.Errorf("after the migration the other conversation's session is %+v, want number 1", st.Current)
	}
	var never int64
	if err := s.read.QueryRowContext(ctx, `SELECT latest_session_id FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
		WHERE ct.phone = '+375298611111'`).Scan(&never); err != nil || never != 0 {
		t.Errorf("a conversation without a session has latest session %d (%v), want 0", never, err)
	}
}

// migrateUp applies every migration not applied yet.
func migrateUp(ctx context.Context, db *sql.DB) error {
	p, err := migrationProvider(db)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

package routee_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"sessiondesk/channel"
	"sessiondesk/channel/routee"
	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/clock"
	"sessiondesk/session"
	"sessiondesk/store"
)

// The outbox, the real Routee client and the fake Routee over real HTTP, with
// the store on a SQLite file: what happens to a message whose send may or may
// not have reached Routee.

type sendEnv struct {
	clock  *clock.Manual
	fake   *fakeroutee.Server
	store  *store.Store
	dbPath string
	client *routee.Client
	opts   channel.OutboxOptions
	outbox *channel.Outbox
	convID int64
}

func newSendEnv(t *testing.T) *sendEnv {
	t.Helper()
	e := &sendEnv{clock: clock.NewManual(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))}
	e.fake = fakeroutee.New(fakeroutee.Options{AppID: appID, AppSecret: appSecret, Now: e.clock.Now})
	srv := httptest.NewServer(e.fake.Handler())
	t.Cleanup(srv.Close)
	e.dbPath = filepath.Join(t.TempDir(), "inbox.db")
	st, err := store.Open(context.Background(), e.dbPath, store.Options{Rules: session.Defaults(), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.store = st
	e.client, err = routee.New(routee.Config{
		AppID: appID, AppSecret: appSecret, SenderID: sender, APIURL: srv.URL, AuthURL: srv.URL,
		CallbackURL: "http://127.0.0.1:9/webhooks/routee/s/status", InboundURL: "http://127.0.0.1:9/webhooks/routee/s/inbound",
		// Short, so that a hanging Routee ends the try soon.
		HTTPClient: &http.Client{Timeout: 500 * time.Millisecond}, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.opts = channel.OutboxOptions{Now: e.clock.Now, CheckAfter: 15 * time.Second, Settle: time.Minute, MaxChecks: 3}
	e.outbox = channel.NewOutbox(st, e.client, slog.New(slog.NewTextHandler(io.Discard, nil)), e.opts)
	rec, err := st.ReceiveClientMessage(context.Background(), store.ClientMessage{Phone: phone, Kind: session.Text, Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	e.convID = rec.Message.ConversationID
	t.Cleanup(func() {
		if v := e.fake.Violations(); len(v) > 0 {
			t.Errorf("malformed requests: %q", v)
		}
	})
	return e
}

// accept queues a business message and returns its id.
func (e *sendEnv) accept(t *testing.T, text string) int64 {
	t.Helper()
	msgs, err := e.store.AcceptBusinessMessages(context.Background(), store.BusinessSend{
		ConversationID: e.convID, Parts: []session.Part{{Kind: session.Text, Text: text}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return msgs[0].ID
}

func (e *sendEnv) pass(t *testing.T) {
	t.Helper()
	if _, err := e.outbox.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (e *sendEnv) message(t *testing.T, id int64) store.Message {
	t.Helper()
	var m store.Message
	err := e.store.Read(context.Background(), func(r *store.Reader) error {
		var err error
		m, err = r.Message(context.Background(), id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *sendEnv) used(t *testing.T) int {
	t.Helper()
	var used int
	err := e.store.Read(context.Background(), func(r *store.Reader) error {
		cv, err := r.Conversation(context.Background(), e.convID)
		used = session.StatusAt(cv.State, e.store.Rules(), r.Now()).Used
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return used
}

func label(id int64) string { return strconv.FormatInt(id, 10) }

// Routee takes the message and the answer is lost (no answer until the client
// times out, a 500 or 502, a dropped connection): the message is unconfirmed,
// counts, and is not sent again; the lookup finds it (by content, as Routee
// lists no label; or by the label when it does) and records Routee's id.
func TestAnswerLostAfterAcceptIsFoundNotResent(t *testing.T) {
	cases := []struct {
		name   string
		mode   fakeroutee.AfterAccept
		status int
		labels bool
	}{
		{"hang past the timeout", fakeroutee.Hang, 0, false},
		{"500 after recording", fakeroutee.ServerError, http.StatusInternalServerError, false},
		{"502 after recording", fakeroutee.ServerError, http.StatusBadGateway, true},
		{"connection dropped after recording", fakeroutee.Drop, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newSendEnv(t)
			e.fake.ListLabels(tc.labels)
			e.fake.AcceptThen(1, tc.mode, tc.status)
			id := e.accept(t, "Your order ships today")
			e.pass(t)
			if m := e.message(t, id); m.Status != store.StatusUnconfirmed || !m.Counted || m.StatusReason == "" {
				t.Fatalf("after the lost answer: %s counted=%v reason=%q, want unconfirmed and counted", m.Status, m.Counted, m.StatusReason)
			}
			if n := e.used(t); n != 1 {
				t.Errorf("the unconfirmed message: %d used in the session, want 1 (it may have arrived)", n)
			}
			e.pass(t) // the lookup is not due yet: nothing happens, nothing is sent
			if n := e.fake.Count(label(id)); n != 1 {
				t.Fatalf("Routee got the message %d times before the lookup", n)
			}
			e.clock.Add(e.opts.CheckAfter)
			e.pass(t)
			m := e.message(t, id)
			want := e.fake.Messages()[0].TrackingID
			if m.Status != store.StatusSent || m.ProviderID != want {
				t.Errorf("after the lookup: %s with tracking id %q, want sent with %q", m.Status, m.ProviderID, want)
			}
			for range 3 {
				e.clock.Add(time.Minute)
				e.pass(t)
			}
			if n := e.fake.Count(label(id)); n != 1 {
				t.Errorf("Routee got the message %d times, want once", n)
			}
		})
	}
}

// A request Routee read and dropped without taking it: after the lookup shows
// it absent, and only once Settle has passed since the try, it is sent again.
func TestDroppedRequestIsResentOnceRouteeShowsItAbsent(t *testing.T) {
	e := newSendEnv(t)
	e.fake.DropNext(1)
	id := e.accept(t, "Your order ships today")
	e.pass(t)
	if m := e.message(t, id); m.Status != store.StatusUnconfirmed {
		t.Fatalf("after the dropped request: %s, want unconfirmed", m.Status)
	}
	e.clock.Add(e.opts.CheckAfter)
	e.pass(t) // absent, but too soon to believe it
	if m := e.message(t, id); m.Status != store.StatusUnconfirmed || len(e.fake.Messages()) != 0 {
		t.Fatalf("absent %s after the try: %s, %d sent; want still unconfirmed, none sent",
			e.opts.CheckAfter, m.Status, len(e.fake.Messages()))
	}
	e.clock.Add(e.opts.Settle)
	e.pass(t) // absent, settled: queued again
	e.pass(t) // sent
	m := e.message(t, id)
	if m.Status != store.StatusSent || e.fake.Count(label(id)) != 1 || m.Attempts != 1 {
		t.Errorf("after Routee showed it absent: %s, Routee got it %d times, %d attempts; want sent once after 1 failed try",
			m.Status, e.fake.Count(label(id)), m.Attempts)
	}
	// An identical text sent earlier to the client is not taken for this one.
	e.fake.DropNext(1)
	id2 := e.accept(t, "Your order ships today")
	e.pass(t)
	e.clock.Add(e.opts.Settle + e.opts.CheckAfter)
	e.pass(t)
	e.pass(t)
	if m := e.message(t, id2); m.Status != store.StatusSent || m.ProviderID == e.message(t, id).ProviderID || e.fake.Count(label(id2)) != 1 {
		t.Errorf("the same text again: %s as %q (the first is %q), sent %d times", m.Status, m.ProviderID,
			e.message(t, id).ProviderID, e.fake.Count(label(id2)))
	}
}

// When the lookups fail too, the message stays unconfirmed after MaxChecks,
// visible and counted, waiting for an agent; nothing is sent again by itself.
// "Send again" sends the same message row; "It arrived" marks it sent.
func TestUnconfirmedWaitsForTheAgent(t *testing.T) {
	e := newSendEnv(t)
	e.fake.AcceptThen(2, fakeroutee.Hang, 0)
	e.fake.FailLookups(1000, http.StatusInternalServerError)
	resend, arrived := e.accept(t, "first"), e.accept(t, "second")
	for range 10 {
		e.pass(t)
		e.clock.Add(10 * time.Minute)
	}
	for _, id := range []int64{resend, arrived} {
		m := e.message(t, id)
		if m.Status != store.StatusUnconfirmed || !m.Counted || e.fake.Count(label(id)) != 1 {
			t.Fatalf("message %d after failing lookups: %s counted=%v, Routee got it %d times", id, m.Status, m.Counted, e.fake.Count(label(id)))
		}
	}
	if q, _ := e.store.Queued(context.Background(), 10); len(q) != 0 {
		t.Fatalf("%d messages still in the outbox, want none: they wait for the agent", len(q))
	}
	if n := e.used(t); n != 2 {
		t.Errorf("session used %d, want 2: unconfirmed messages count", n)
	}

	ctx := context.Background()
	m, err := e.store.ResolveUnconfirmed(ctx, e.convID, resend, 0, store.ResolveResend)
	if err != nil || m.Status != store.StatusQueued || m.ID != resend {
		t.Fatalf("send again: %+v, %v", m, err)
	}
	if _, err := e.store.ResolveUnconfirmed(ctx, e.convID, resend, 0, store.ResolveArrived); !errorsIs(err, store.ErrNotUnconfirmed) {
		t.Errorf("a second resolution: %v, want ErrNotUnconfirmed", err)
	}
	if m, err := e.store.ResolveUnconfirmed(ctx, e.convID, arrived, 0, store.ResolveArrived); err != nil || m.Status != store.StatusSent || !m.Counted {
		t.Fatalf("it arrived: %+v, %v", m, err)
	}
	e.pass(t)
	if n := e.fake.Count(label(resend)); n != 2 {
		t.Errorf("after Send again Routee got it %d times, want 2", n)
	}
	if n := e.fake.Count(label(arrived)); n != 1 {
		t.Errorf("after It arrived Routee got it %d times, want 1", n)
	}
	if m := e.message(t, resend); m.Status != store.StatusSent {
		t.Errorf("sent again: %s", m.Status)
	}
	if n := e.used(t); n != 2 {
		t.Errorf("session used %d, want still 2: the same rows, no new messages", n)
	}
}

// Routee takes the message but recording "sent" fails: it is not sent again,
// neither by the same outbox (which remembers the tracking id) nor after a
// restart (the open try leads to a lookup).
func TestRecordingSentFailsDoesNotResend(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run("restart="+strconv.FormatBool(restart), func(t *testing.T) {
			e := newSendEnv(t)
			db, err := sql.Open("sqlite3", e.dbPath)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TRIGGER fail_sent BEFORE UPDATE OF status ON messages WHEN NEW.status = 'sent'
				BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END`); err != nil {
				t.Fatal(err)
			}
			id := e.accept(t, "Your order ships today")
			e.pass(t)
			if m := e.message(t, id); m.Status != store.StatusQueued || e.fake.Count(label(id)) != 1 {
				t.Fatalf("after the failed record: %s, Routee got it %d times", m.Status, e.fake.Count(label(id)))
			}
			e.pass(t) // still failing: nothing is sent
			if _, err := db.Exec(`DROP TRIGGER fail_sent`); err != nil {
				t.Fatal(err)
			}
			ob := e.outbox
			if restart {
				ob = channel.NewOutbox(e.store, e.client, slog.New(slog.NewTextHandler(io.Discard, nil)), e.opts)
			}
			for range 3 {
				if _, err := ob.Pass(context.Background()); err != nil {
					t.Fatal(err)
				}
				e.clock.Add(time.Minute)
			}
			m := e.message(t, id)
			if m.Status != store.StatusSent || m.ProviderID != e.fake.Messages()[0].TrackingID || e.fake.Count(label(id)) != 1 {
				t.Errorf("after recording works again: %s as %q, Routee got it %d times; want sent once as %q",
					m.Status, m.ProviderID, e.fake.Count(label(id)), e.fake.Messages()[0].TrackingID)
			}
		})
	}
}

// Failures that say Routee did not take the message are retried as before,
// with no lookup: a 503, 429, or no connection at all.
func TestKnownFailuresAreRetried(t *testing.T) {
	e := newSendEnv(t)
	e.fake.FailNext(1, http.StatusServiceUnavailable)
	id := e.accept(t, "one")
	e.pass(t)
	if m := e.message(t, id); m.Status != store.StatusQueued || m.Attempts != 1 {
		t.Fatalf("after a 503: %s after %d attempts, want queued for a retry", m.Status, m.Attempts)
	}
	e.clock.Add(time.Minute)
	e.pass(t)
	if m := e.message(t, id); m.Status != store.StatusSent || e.fake.Count(label(id)) != 1 {
		t.Errorf("the retry: %s, sent %d times", m.Status, e.fake.Count(label(id)))
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }

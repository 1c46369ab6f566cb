package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sessiondesk/clock"
	"sessiondesk/session"
)

// capTwo is the default rules with a cap of 2, so a rollover takes three sends.
func capTwo() session.Settings {
	r := session.Defaults()
	r.MaxPerSession = 2
	return r
}

// sessionsOf reads a conversation's session history, the latest first.
func sessionsOf(t testing.TB, s *Store, convID int64) []session.Session {
	t.Helper()
	var out []session.Session
	err := s.Read(context.Background(), func(r *Reader) error {
		var err error
		out, err = r.Sessions(context.Background(), convID, 100)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func message(t testing.TB, s *Store, id int64) Message {
	t.Helper()
	var m Message
	err := s.Read(context.Background(), func(r *Reader) error {
		var err error
		m, err = r.Message(context.Background(), id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// rollToSessionTwo fills session 1 (cap 2) and sends the confirmed third, which
// begins session 2 at now; it returns that message.
func rollToSessionTwo(t *testing.T, s *Store, clk *clock.Manual, conv int64) Message {
	t.Helper()
	for _, text := range []string{"one", "two"} {
		if _, err := sendText(s, conv, text, false); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(time.Minute)
	if _, err := sendText(s, conv, "three", false); refusalCode(err) != session.NeedsConfirmation {
		t.Fatalf("third without confirmation: %v, want needs_confirmation", err)
	}
	msgs, err := sendText(s, conv, "three", true)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].SessionNumber != 2 || !msgs[0].FirstOfSession {
		t.Fatalf("the confirmed third is in session %d (first %v), want it to begin session 2", msgs[0].SessionNumber, msgs[0].FirstOfSession)
	}
	return msgs[0]
}

// Case 18: the confirmed 61st (which began session 2) is rejected by the
// provider at once → its slot is released and session 2 never happened: the
// next send asks for confirmation again and starts its own window.
func TestCase18_RejectedRolloverNeverHappened(t *testing.T) {
	s, clk := newStore(t, capTwo())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	third := rollToSessionTwo(t, s, clk, conv)

	clk.Add(10 * time.Second)
	if err := s.RejectMessage(ctx, MessageRef{ID: third.ID}, "Not Viber User"); err != nil {
		t.Fatal(err)
	}
	st := state(t, s, conv)
	if st.Current.Number != 1 || st.Current.Used != 2 || !st.Current.StartedAt.Equal(t0) {
		t.Fatalf("after the rejection the current session is %+v, want session 1 with its 2 messages", *st.Current)
	}
	if got := sessionsOf(t, s, conv); len(got) != 1 {
		t.Fatalf("sessions after the rejection: %+v, want only session 1", got)
	}
	if err := recount(ctx, s); err != nil { // the conversation's latest session and its end went back too
		t.Fatal(err)
	}
	// The released message stays in the thread, failed, now in session 1.
	m := message(t, s, third.ID)
	if m.Status != StatusFailed || m.Counted || m.SessionNumber != 1 || m.FirstOfSession {
		t.Fatalf("released message = status %s counted %v session %d first %v", m.Status, m.Counted, m.SessionNumber, m.FirstOfSession)
	}

	// The next send asks again, then begins session 2 with its own window.
	clk.Add(time.Hour)
	if _, err := sendText(s, conv, "again", false); refusalCode(err) != session.NeedsConfirmation {
		t.Fatalf("next send without confirmation: %v, want needs_confirmation", err)
	}
	msgs, err := sendText(s, conv, "again", true)
	if err != nil {
		t.Fatal(err)
	}
	st = state(t, s, conv)
	now := clk.Now()
	if msgs[0].SessionNumber != 2 || st.Current.Number != 2 || !st.Current.StartedAt.Equal(now) ||
		!st.Current.EndsAt.Equal(now.Add(24*time.Hour)) || st.Current.Used != 1 {
		t.Fatalf("session 2 = %+v, want it to start now (%s) with 1 used", *st.Current, now)
	}
}

// The outbox giving up releases the slot the same way (it calls RejectMessage).
func TestCase18_GivenUpRolloverNeverHappened(t *testing.T) {
	s, clk := newStore(t, capTwo())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	third := rollToSessionTwo(t, s, clk, conv)
	clk.Add(time.Hour)
	if err := s.SendFailed(ctx, third.ID, "provider unreachable", clk.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.RejectMessage(ctx, MessageRef{ID: third.ID}, "gave up after 1h"); err != nil {
		t.Fatal(err)
	}
	if st := state(t, s, conv); st.Current.Number != 1 {
		t.Fatalf("after giving up, current session %d, want 1", st.Current.Number)
	}
	d := session.StatusAt(state(t, s, conv), s.Rules(), clk.Now())
	if d.Refusal == nil || d.Refusal.Code != session.NeedsConfirmation {
		t.Fatalf("status after giving up: %+v, want needs_confirmation", d)
	}
}

// Two parts sent together begin session 2; only the first is rejected: the
// other still counts, so session 2 happened (billed) and stays as it is.
func TestCase18_RolloverWithAnotherCountedPartStays(t *testing.T) {
	s, clk := newStore(t, capTwo())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	for _, text := range []string{"one", "two"} {
		if _, err := sendText(s, conv, text, false); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(time.Minute)
	started := clk.Now()
	msgs, err := s.AcceptBusinessMessages(ctx, BusinessSend{ConversationID: conv, ConfirmNewSession: true,
		Parts: []session.Part{{Kind: session.Text, Text: "a"}, {Kind: session.Text, Text: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].SessionNumber != 2 || msgs[1].SessionNumber != 2 {
		t.Fatalf("parts in sessions %d and %d, want 2 and 2", msgs[0].SessionNumber, msgs[1].SessionNumber)
	}
	clk.Add(time.Second)
	if err := s.RejectMessage(ctx, MessageRef{ID: msgs[0].ID}, "rejected"); err != nil {
		t.Fatal(err)
	}
	st := state(t, s, conv)
	if st.Current.Number != 2 || st.Current.Used != 1 || !st.Current.StartedAt.Equal(started) {
		t.Fatalf("session after rejecting one part: %+v, want session 2 from %s with 1 used", *st.Current, started)
	}
	// Releasing the second too leaves nothing billed in it: now it never happened.
	if err := s.RejectMessage(ctx, MessageRef{ID: msgs[1].ID}, "rejected"); err != nil {
		t.Fatal(err)
	}
	if st := state(t, s, conv); st.Current.Number != 1 || len(sessionsOf(t, s, conv)) != 1 {
		t.Fatalf("after both parts were rejected: current %d, sessions %d; want session 1 only", st.Current.Number, len(sessionsOf(t, s, conv)))
	}
}

// A later message already accepted into the rollover session keeps it.
func TestCase18_LaterAcceptedMessageKeepsRollover(t *testing.T) {
	s, clk := newStore(t, capTwo())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	third := rollToSessionTwo(t, s, clk, conv)
	clk.Add(time.Second)
	fourth, err := sendText(s, conv, "four", false) // session 2 is open: no confirmation
	if err != nil || fourth[0].SessionNumber != 2 {
		t.Fatalf("fourth: %v, %+v", err, fourth)
	}
	if err := s.RejectMessage(ctx, MessageRef{ID: third.ID}, "rejected"); err != nil {
		t.Fatal(err)
	}
	st := state(t, s, conv)
	if st.Current.Number != 2 || st.Current.Used != 1 {
		t.Fatalf("session after rejecting the third: %+v, want session 2 with the fourth", *st.Current)
	}
	if c := sessionsOf(t, s, conv)[0]; c.Rates.Currency != "" || c.Cost() != 0 {
		// newStore opens without rates: zero rates, frozen as such.
		t.Fatalf("session 2 rates %+v cost %v", c.Rates, c.Cost())
	}
}

// A client message that arrived in the rollover session before it was undone
// is placed as if the rollover never happened: in session 1 while that was
// open at its time, otherwise in a session it opens.
func TestCase18_ClientMessageInVoidSession(t *testing.T) {
	t.Run("session 1 still open", func(t *testing.T) {
		s, clk := newStore(t, capTwo())
		ctx := context.Background()
		conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
		third := rollToSessionTwo(t, s, clk, conv)
		clk.Add(time.Minute)
		in := receive(t, s, "+375298603938", "did you write?")
		if in.Message.SessionNumber != 2 {
			t.Fatalf("client message in session %d, want 2", in.Message.SessionNumber)
		}
		if err := s.RejectMessage(ctx, MessageRef{ID: third.ID}, "rejected"); err != nil {
			t.Fatal(err)
		}
		if m := message(t, s, in.Message.ID); m.SessionNumber != 1 {
			t.Fatalf("client message moved to session %d, want 1", m.SessionNumber)
		}
		st := state(t, s, conv)
		if st.Current.Number != 1 || st.Unanswered != 0 {
			t.Fatalf("state %+v unanswered %d, want session 1 with the client's reply counted", *st.Current, st.Unanswered)
		}
	})
	t.Run("client writes into the rollover after session 1 ended", func(t *testing.T) {
		rules := capTwo()
		rules.Window = time.Hour
		s, clk := newStore(t, rules)
		ctx := context.Background()
		conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
		clk.Set(t0.Add(50 * time.Minute))
		third := rollToSessionTwo(t, s, clk, conv) // session 2 from 10:51 to 11:51
		clk.Set(t0.Add(70 * time.Minute))
		in := receive(t, s, "+375298603938", "hello again") // 11:10: in session 2, session 1 is over
		if in.SessionOpened || in.Message.SessionNumber != 2 {
			t.Fatalf("client message: opened %v session %d, want it in session 2", in.SessionOpened, in.Message.SessionNumber)
		}
		clk.Add(time.Minute)
		if err := s.RejectMessage(ctx, MessageRef{ID: third.ID}, "rejected"); err != nil {
			t.Fatal(err)
		}
		// Without the rollover, the client's message at 11:10 opened session 2 itself.
		got := sessionsOf(t, s, conv)
		if len(got) != 2 || !got[0].StartedAt.Equal(t0.Add(70*time.Minute)) || got[0].Used != 0 {
			t.Fatalf("sessions %+v, want session 2 opened by the client at 11:10", got)
		}
		if m := message(t, s, in.Message.ID); m.SessionNumber != 2 || !m.FirstOfSession {
			t.Fatalf("client message in session %d (first %v), want it to open session 2", m.SessionNumber, m.FirstOfSession)
		}
		if m := message(t, s, third.ID); m.SessionNumber != 1 {
			t.Fatalf("the released message is in session %d, want 1", m.SessionNumber)
		}
		// Session 2 is the client's: a reply needs no confirmation.
		if _, err := sendText(s, conv, "hi", false); err != nil {
			t.Fatalf("reply in the client's session 2: %v", err)
		}
	})
}

// A session opened by the client whose only business message is released was
// never billed: its cost goes back to 0 and it is billed anew later, at the
// rates then in force.
func TestReleasedOnlyMessageUnbillsTheSession(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	saveRates(t, s, session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"})
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	msgs, err := sendText(s, conv, "hi", false)
	if err != nil {
		t.Fatal(err)
	}
	if c := state(t, s, conv).Current.Cost(); c != 0.05 {
		t.Fatalf("cost %v, want 0.05", c)
	}
	if err := s.RejectMessage(ctx, MessageRef{ID: msgs[0].ID}, "rejected"); err != nil {
		t.Fatal(err)
	}
	if cur := state(t, s, conv).Current; cur.Cost() != 0 || cur.Rates != (session.Rates{}) || cur.Number != 1 {
		t.Fatalf("after the release: %+v, want session 1 unbilled", *cur)
	}
	saveRates(t, s, session.Rates{Text: 0.07, Media: 0.2, Currency: "USD"})
	if _, err := sendText(s, conv, "hi again", false); err != nil {
		t.Fatal(err)
	}
	if cur := state(t, s, conv).Current; cur.Cost() != 0.07 || cur.Rates.Currency != "USD" {
		t.Fatalf("billed anew: %+v, want the new rates", cur.Rates)
	}
}

func saveRates(t testing.TB, s *Store, r session.Rates) {
	t.Helper()
	set := s.Settings()
	set.Rates = r
	if err := s.SaveSettings(context.Background(), 0, set); err != nil {
		t.Fatal(err)
	}
}

// Case 19: "send again" on one failed message, twice at once → one new
// message; the other try is refused (already retried). Many at once here.
func TestCase19_SendAgainTwiceAtOnce(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	msgs, err := sendText(s, conv, "are you there?", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RejectMessage(ctx, MessageRef{ID: msgs[0].ID}, "Not Viber User"); err != nil {
		t.Fatal(err)
	}
	before := message(t, s, msgs[0].ID)
	if !Retryable(before) {
		t.Fatal("a failed message that was never sent again is not retryable")
	}
	var lastEvent int64
	_ = s.Read(ctx, func(r *Reader) error { lastEvent, err = r.LastEventID(ctx); return err })

	const tries = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created []Message
		refused int
		other   []error
	)
	start := make(chan struct{})
	for range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			m, err := s.RetryMessage(ctx, msgs[0].ID, 0, false)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created = append(created, m)
			case refusalCode(err) == session.AlreadyRetried:
				refused++
			default:
				other = append(other, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(created) != 1 || refused != tries-1 || len(other) != 0 {
		t.Fatalf("%d tries: %d created, %d refused as already retried, others %v; want 1 and %d", tries, len(created), refused, other, tries-1)
	}
	if st := state(t, s, conv); st.Current.Used != 1 || st.Unanswered != 1 {
		t.Fatalf("after the retries: used %d unanswered %d, want 1 and 1 (one new message)", st.Current.Used, st.Unanswered)
	}
	after := message(t, s, msgs[0].ID)
	if after.RetriedBy != created[0].ID || Retryable(after) {
		t.Fatalf("the original: retried by %d (retryable %v), want %d and no more retries", after.RetriedBy, Retryable(after), created[0].ID)
	}
	// The original is redrawn on every open page: an event names it.
	var named bool
	_ = s.Read(ctx, func(r *Reader) error {
		evs, err := r.EventsAfter(ctx, lastEvent, 100)
		for _, e := range evs {
			named = named || (e.MessageID == msgs[0].ID && e.Kind == EventStatus)
		}
		return err
	})
	if !named {
		t.Fatal("no event redraws the original message")
	}
	// The new message may itself be sent again once when it fails.
	if err := s.RejectMessage(ctx, MessageRef{ID: created[0].ID}, "Not Viber User"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RetryMessage(ctx, created[0].ID, 0, false); err != nil {
		t.Fatalf("retry of the retry: %v", err)
	}
	if _, err := s.RetryMessage(ctx, msgs[0].ID, 0, false); refusalCode(err) != session.AlreadyRetried {
		t.Fatalf("a later retry of the original: %v, want already_retried", err)
	}
}

// Case 20: a client message stamped 2 min ahead of the server's clock, agent
// replies at once → allowed; the session ends 24 h after the client's stamp.
func TestCase20_ClientClockAheadAgentRepliesAtOnce(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	stamp := t0.Add(2 * time.Minute)
	r, err := s.ReceiveClientMessage(context.Background(), ClientMessage{
		Phone: "+375298603938", Kind: session.Text, Text: "Hello", SentAt: stamp})
	if err != nil {
		t.Fatal(err)
	}
	conv := r.Message.ConversationID
	st := state(t, s, conv)
	if !st.Current.StartedAt.Equal(stamp) || !st.Current.EndsAt.Equal(stamp.Add(24*time.Hour)) || !st.Current.ReceivedAt.Equal(t0) {
		t.Fatalf("session %+v, want it to start at the client's stamp, received now", *st.Current)
	}
	if status := session.StatusAt(st, s.Rules(), clk.Now()); !status.Open || !status.CanSend {
		t.Fatalf("status at receipt: %+v, want open", status)
	}
	if _, err := sendText(s, conv, "Hi!", false); err != nil {
		t.Fatalf("reply at once: %v", err)
	}
	// Its end stays the client's stamp + 24 h.
	clk.Set(stamp.Add(24*time.Hour - time.Second))
	if _, err := sendText(s, conv, "last call", false); err != nil {
		t.Fatalf("reply a second before the end: %v", err)
	}
	clk.Set(stamp.Add(24 * time.Hour))
	if _, err := sendText(s, conv, "too late", false); refusalCode(err) != session.WindowClosed {
		t.Fatalf("reply at the end: %v, want window_closed", err)
	}
}

// Case 21: a text of only spaces and line breaks is refused like an empty
// text, and nothing is stored.
func TestCase21_BlankTextStoresNothing(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	for _, blank := range []string{" ", "   \n\n  ", "\t\r\n", "\u00a0\u2003\u3000", "\u200b\u200d\ufeff", " \u2060 \n"} {
		_, err := sendText(s, conv, blank, false)
		if refusalCode(err) != session.InvalidType {
			t.Errorf("text %q: %v, want invalid_type", blank, err)
		}
	}
	var n int
	_ = s.Read(ctx, func(r *Reader) error {
		msgs, err := r.Messages(ctx, conv, 100)
		n = len(msgs)
		return err
	})
	if n != 1 {
		t.Fatalf("%d messages stored, want only the client's", n)
	}
	if st := state(t, s, conv); st.Current.Used != 0 || st.Unanswered != 0 {
		t.Fatalf("state %+v after blank sends", st)
	}
}

// Case 9 at the store: the session history reports a session that ended with
// the client's message unanswered, and only such a session.
func TestCase09_SessionHistoryReportsUnanswered(t *testing.T) {
	rules := session.Defaults()
	rules.MaxPerSession = 1
	s, clk := newStore(t, rules)
	phone := "+375298603938"
	conv := receive(t, s, phone, "Hello").Message.ConversationID // session 1: never answered
	clk.Set(t0.Add(25 * time.Hour))
	receive(t, s, phone, "Anyone?") // session 2: answered, then a rollover with no client message
	if _, err := sendText(s, conv, "Sorry, yes", false); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if _, err := sendText(s, conv, "Here is more", true); err != nil { // session 3 (rollover)
		t.Fatal(err)
	}
	clk.Set(t0.Add(60 * time.Hour))
	receive(t, s, phone, "one more question") // session 4: answered, then the client wrote last
	if _, err := sendText(s, conv, "go on", false); err != nil {
		t.Fatal(err)
	}
	receive(t, s, phone, "thanks, bye")

	now := t0.Add(60*time.Hour + time.Minute)
	got := sessionsOf(t, s, conv)
	if len(got) != 4 {
		t.Fatalf("%d sessions, want 4", len(got))
	}
	want := map[int]bool{4: false, 3: false, 2: false, 1: true} // session 4 has not ended yet
	for _, ss := range got {
		if ss.Unanswered(now) != want[ss.Number] {
			t.Errorf("session %d unanswered = %v at %s, want %v", ss.Number, ss.Unanswered(now), now, want[ss.Number])
		}
	}
	// Once session 4 is over, the client's "thanks, bye" is what was left unanswered.
	if s4 := got[0]; !s4.Unanswered(s4.EndsAt) {
		t.Error("session 4 ended with the client's message: not reported unanswered")
	}
	if s1 := got[3]; s1.Used != 0 || s1.Cost() != 0 {
		t.Errorf("session 1 used %d cost %v, want 0 and 0", s1.Used, s1.Cost())
	}
}

// Rates are frozen when a session is first billed: a rate change later does
// not reprice it; a session billed after the change uses the new rates.
func TestRatesFrozenPerSession(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	saveRates(t, s, session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"})
	phone := "+375298603938"
	conv := receive(t, s, phone, "Hello").Message.ConversationID
	if c := state(t, s, conv).Current.Cost(); c != 0 {
		t.Fatalf("a client message alone costs %v", c)
	}
	if _, err := sendText(s, conv, "hi", false); err != nil {
		t.Fatal(err)
	}
	saveRates(t, s, session.Rates{Text: 0.07, Media: 0.2, Currency: "USD"})
	cur := state(t, s, conv).Current
	if cur.Cost() != 0.05 || cur.Rates.Currency != "EUR" {
		t.Fatalf("after the rate change session 1 costs %v %s, want 0.05 EUR", cur.Cost(), cur.Rates.Currency)
	}
	// An image sent after the change: the media rate frozen with the session.
	img := &NewAttachment{Hash: strings.Repeat("a", 64), Size: 1, MIME: "image/png", Name: "a.png"}
	if _, err := s.AcceptBusinessMessages(context.Background(), BusinessSend{ConversationID: conv,
		Parts: []session.Part{{Kind: session.Image}}, Attachments: []*NewAttachment{img}}); err != nil {
		t.Fatal(err)
	}
	if c := state(t, s, conv).Current.Cost(); c != 0.1 {
		t.Fatalf("session 1 with an image costs %v, want its own media rate 0.1", c)
	}
	// Session 2, billed after the change, uses the new rates.
	clk.Set(t0.Add(25 * time.Hour))
	receive(t, s, phone, "again")
	if _, err := sendText(s, conv, "hi again", false); err != nil {
		t.Fatal(err)
	}
	got := sessionsOf(t, s, conv)
	if got[0].Cost() != 0.07 || got[0].Rates.Currency != "USD" || got[1].Cost() != 0.1 || got[1].Rates.Currency != "EUR" {
		t.Fatalf("sessions cost %v %s and %v %s, want 0.07 USD and 0.1 EUR",
			got[0].Cost(), got[0].Rates.Currency, got[1].Cost(), got[1].Rates.Currency)
	}
}

// Sessions billed before rates were frozen per session get the rates in force
// when the store opens, once; the ones already frozen are left alone.
func TestLegacyBilledSessionsGetTodaysRates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "legacy.db")
	clk := clock.NewManual(t0)
	ctx := context.Background()
	open := func(r session.Rates) *Store {
		s, err := Open(ctx, path, Options{Rules: session.Defaults(), Rates: r, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"})
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	other := receive(t, s, "+375298600000", "Hi").Message.ConversationID
	for _, c := range []int64{conv, other} {
		if _, err := sendText(s, c, "hi", false); err != nil {
			t.Fatal(err)
		}
	}
	// As the database was before 00005: no rates on the first conversation's
	// session, and (before 00048) no record that the upgrade ran.
	if _, err := s.write.ExecContext(ctx, `UPDATE sessions SET rate_text = NULL, rate_media = NULL, currency = NULL
		WHERE conversation_id = ?`, conv); err != nil {
		t.Fatal(err)
	}
	if err := migrateDownTo(ctx, s.write, 47); err != nil {
		t.Fatal(err)
	}
	// Read directly: the store's own reads need the columns of later migrations.
	var legacyRate *float64
	if err := s.write.QueryRowContext(ctx, `SELECT rate_text FROM sessions WHERE conversation_id = ?`, conv).Scan(&legacyRate); err != nil {
		t.Fatal(err)
	}
	if legacyRate != nil {
		t.Fatalf("setup: legacy session has a text rate %v", *legacyRate)
	}
	s.Close()
	s = open(session.Rates{Text: 0.06, Media: 0.12, Currency: "GBP"})
	defer func() { s.Close() }() // the last one opened
	if cur := state(t, s, conv).Current; cur.Cost() != 0.06 || cur.Rates.Currency != "GBP" {
		t.Fatalf("legacy session after reopening: %+v, want today's rates", cur.Rates)
	}
	if cur := state(t, s, other).Current; cur.Cost() != 0.05 || cur.Rates.Currency != "EUR" {
		t.Fatalf("frozen session after reopening: %+v, want its own rates", cur.Rates)
	}
	// Done once: a later start no longer looks, so a session without rates
	// (which only a database from before 00005 has) stays as it is.
	if _, err := s.write.ExecContext(ctx, `UPDATE sessions SET rate_text = NULL WHERE conversation_id = ?`, other); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(session.Rates{Text: 0.07, Media: 0.14, Currency: "USD"})
	var rate *float64
	if err := s.write.QueryRowContext(ctx, `SELECT rate_text FROM sessions WHERE conversation_id = ?`, other).Scan(&rate); err != nil {
		t.Fatal(err)
	}
	if rate != nil {
		t.Fatalf("a start after the upgrade was done froze rates again: %v", *rate)
	}
}

// Admin settings outside what Viber allows are refused, naming the range.
func TestSettingsOutsideVibersRangesRefused(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	for _, tc := range []struct {
		f    func(*session.Settings)
		want string
	}{
		{func(r *session.Settings) { r.Window = 25 * time.Hour }, "at most 24h"},
		{func(r *session.Settings) { r.Window = 0 }, "more than 0"},
		{func(r *session.Settings) { r.MaxTextLen = 1001 }, "1 to 1000"},
		{func(r *session.Settings) { r.MaxUnanswered = 11 }, "1 to 10"},
		{func(r *session.Settings) { r.MaxUnanswered = 0 }, "1 to 10"},
		{func(r *session.Settings) { r.MaxPerSession = 61 }, "1 to 60"},
		{func(r *session.Settings) { r.MaxPerSession = 0 }, "1 to 60"},
	} {
		set := s.Settings()
		set.Rates.Currency = "EUR"
		tc.f(&set.Rules)
		err := s.SaveSettings(context.Background(), 0, set)
		var invalid *InvalidError
		if !errors.As(err, &invalid) || !strings.Contains(invalid.Message, tc.want) {
			t.Errorf("%+v: %v, want a refusal naming %q", set.Rules, err, tc.want)
		}
	}
	if r := s.Rules(); r != session.Defaults() {
		t.Fatalf("a refused save changed the rules: %+v", r)
	}
	// The edges are allowed.
	set := s.Settings()
	set.Rates.Currency = "EUR"
	set.Rules.Window, set.Rules.MaxTextLen, set.Rules.MaxUnanswered, set.Rules.MaxPerSession = 24*time.Hour, 1000, 10, 60
	if err := s.SaveSettings(context.Background(), 0, set); err != nil {
		t.Fatalf("the edges of the ranges: %v", err)
	}
}

// Case 3 (S4) in the provider's order: a client message the inbox learns of late (its
// webhook retried) but that the client sent before the agent's five replies
// is not a reply to them. The sixth stays refused, as Viber would refuse it;
// a message the client sends after them unlocks the conversation.
func TestCase3_LateDeliveredClientMessageAnswersOnlyEarlierReplies(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	const phone = "+375298603938"
	conv := receive(t, s, phone, "hello").Message.ConversationID
	// One reply, then the client writes again (its webhook fails; Routee
	// retries later), then four more replies.
	clk.Add(30 * time.Second)
	if _, err := sendText(s, conv, "reply 0", false); err != nil {
		t.Fatal(err)
	}
	clk.Add(30 * time.Second)
	sentLate := clk.Now()
	for i := range 4 {
		clk.Add(70 * time.Second)
		if _, err := sendText(s, conv, fmt.Sprintf("reply %d", i+1), false); err != nil {
			t.Fatalf("reply %d: %v", i+1, err)
		}
	}
	if _, err := sendText(s, conv, "sixth", false); refusalCode(err) != session.AwaitingClient {
		t.Fatalf("the sixth before the retry: %v, want awaiting_client", err)
	}
	clk.Add(15 * time.Minute)
	if _, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: phone, Kind: session.Text, Text: "and another thing",
		SentAt: sentLate, DedupeKey: "routee:late"}); err != nil {
		t.Fatal(err)
	}
	if got := state(t, s, conv).Unanswered; got != 4 {
		t.Errorf("unanswered after the late message: %d, want 4 (the replies accepted after it was sent)", got)
	}
	if _, err := sendText(s, conv, "fifth after it", false); err != nil {
		t.Fatalf("the fifth reply after the late message's time: %v", err)
	}
	if _, err := sendText(s, conv, "sixth", false); refusalCode(err) != session.AwaitingClient {
		t.Errorf("a sixth in a row after the late message: %v, want awaiting_client", err)
	}
	// The client writes now: every reply is answered.
	if _, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: phone, Kind: session.Text, Text: "thanks",
		SentAt: clk.Now(), DedupeKey: "routee:now"}); err != nil {
		t.Fatal(err)
	}
	if got := state(t, s, conv).Unanswered; got != 0 {
		t.Errorf("unanswered after the client wrote: %d, want 0", got)
	}
}

// The same race within seconds: the client writes, the agent's reply (to an
// earlier message) is accepted before the client's message arrives. For the
// provider the reply came after the client's message: one unanswered.
func TestCase3_ReplyAcceptedWhileTheClientMessageWasOnItsWay(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	const phone = "+375298603938"
	conv := receive(t, s, phone, "hello").Message.ConversationID
	clk.Add(time.Minute)
	sent := clk.Now()
	clk.Add(time.Second)
	if _, err := sendText(s, conv, "on it", false); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	if _, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: phone, Kind: session.Text, Text: "any news?",
		SentAt: sent, DedupeKey: "routee:race"}); err != nil {
		t.Fatal(err)
	}
	if got := state(t, s, conv).Unanswered; got != 1 {
		t.Errorf("unanswered: %d, want 1 (the reply came after the client's message)", got)
	}
	// Without a provider time the message counts from its receipt: after the reply.
	if _, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: phone, Kind: session.Text, Text: "hello?"}); err != nil {
		t.Fatal(err)
	}
	if got := state(t, s, conv).Unanswered; got != 0 {
		t.Errorf("unanswered after a message without a provider time: %d, want 0", got)
	}
}

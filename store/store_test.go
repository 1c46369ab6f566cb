package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sessiondesk/clock"
	"sessiondesk/session"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func newStore(t testing.TB, rules session.Settings) (*Store, *clock.Manual) {
	t.Helper()
	clk := clock.NewManual(t0)
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "test.db"), Options{Rules: rules, Now: clk.Now})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, clk
}

func receive(t testing.TB, s *Store, phone, text string) Received {
	t.Helper()
	r, err := s.ReceiveClientMessage(context.Background(), ClientMessage{Phone: phone, Name: "Olga", Kind: session.Text, Text: text})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return r
}

func sendText(s *Store, convID int64, text string, confirm bool) ([]Message, error) {
	return s.AcceptBusinessMessages(context.Background(), BusinessSend{
		ConversationID: convID, Parts: []session.Part{{Kind: session.Text, Text: text}}, ConfirmNewSession: confirm,
	})
}

func state(t testing.TB, s *Store, convID int64) session.State {
	t.Helper()
	var st session.State
	err := s.Read(context.Background(), func(r *Reader) error {
		c, err := r.Conversation(context.Background(), convID)
		st = c.State
		return err
	})
	if err != nil {
		t.Fatalf("read conversation: %v", err)
	}
	return st
}

func refusalCode(err error) session.Code {
	var r *session.Refusal
	if errors.As(err, &r) {
		return r.Code
	}
	return ""
}

// fill counts n business messages into the conversation's session, with a
// client message after every few so the unanswered limit never stops them.
func fill(t testing.TB, s *Store, convID int64, phone string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if i > 0 && i%4 == 0 {
			receive(t, s, phone, "ok")
		}
		if _, err := sendText(s, convID, fmt.Sprintf("reply %d", i), false); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	receive(t, s, phone, "thanks") // leave the unanswered count at zero
}

func TestReceiveOpensSessionOnce(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	first := receive(t, s, "+375298603938", "Hello")
	if !first.SessionOpened || first.Message.SessionNumber != 1 {
		t.Fatalf("first message: opened=%v session=%d, want a new session 1", first.SessionOpened, first.Message.SessionNumber)
	}
	clk.Add(time.Hour)
	second := receive(t, s, "+375298603938", "Still there?")
	if second.SessionOpened || second.Message.SessionNumber != 1 {
		t.Fatalf("second message: opened=%v session=%d, want session 1 reused", second.SessionOpened, second.Message.SessionNumber)
	}
	st := state(t, s, first.Message.ConversationID)
	if want := t0.Add(24 * time.Hour); !st.Current.EndsAt.Equal(want) {
		t.Errorf("ends at %v, want %v (a client message does not extend the window)", st.Current.EndsAt, want)
	}
}

func TestReceiveDeduplicates(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	in := ClientMessage{Phone: "+375298603938", Kind: session.Text, Text: "Hello", DedupeKey: "routee:abc"}
	var ids []int64
	for i := 0; i < 3; i++ {
		r, err := s.ReceiveClientMessage(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if r.Duplicate != (i > 0) {
			t.Errorf("delivery %d: duplicate=%v", i, r.Duplicate)
		}
		ids = append(ids, r.Message.ID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("ids %v: the same delivery must map to one message", ids)
	}
	var n, events int
	_ = s.Read(ctx, func(r *Reader) error {
		msgs, err := r.Messages(ctx, 1, 10)
		n = len(msgs)
		evs, _ := r.EventsAfter(ctx, 0, 10)
		events = len(evs)
		return err
	})
	if n != 1 || events != 1 {
		t.Errorf("stored %d messages and %d events, want 1 and 1", n, events)
	}
}

func TestReceiveRejectsBadInputAndStoresNothing(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	for _, in := range []ClientMessage{
		{Kind: session.Text, Text: "no phone"},
		{Phone: "+375298603938", Kind: session.Text, Text: "   "},
		{Phone: "+375298603938", Kind: "button", Text: "x"},
	} {
		var invalid *InvalidError
		if _, err := s.ReceiveClientMessage(ctx, in); !errors.As(err, &invalid) {
			t.Errorf("%+v: got %v, want an InvalidError", in, err)
		}
	}
	_ = s.Read(ctx, func(r *Reader) error {
		cs, _ := r.Contacts(ctx, 10)
		if len(cs) != 0 {
			t.Errorf("stored %d contacts from bad input", len(cs))
		}
		return nil
	})
}

func TestAcceptCountsAndQueues(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	r := receive(t, s, "+375298603938", "Hello")
	clk.Add(5 * time.Minute)
	msgs, err := sendText(s, r.Message.ConversationID, "We are on it", false)
	if err != nil {
		t.Fatal(err)
	}
	if m := msgs[0]; m.Status != StatusQueued || !m.Counted || m.SessionNumber != 1 || m.Direction != Outbound {
		t.Errorf("accepted message = %+v", m)
	}
	st := state(t, s, r.Message.ConversationID)
	if st.Current.Used != 1 || st.Unanswered != 1 {
		t.Errorf("used %d unanswered %d, want 1 and 1", st.Current.Used, st.Unanswered)
	}
	q, err := s.Queued(context.Background(), 10)
	if err != nil || len(q) != 1 || q[0].Phone != "+375298603938" {
		t.Fatalf("queue = %+v, %v", q, err)
	}
}

func TestRefusalStoresNothing(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	r := receive(t, s, "+375298603938", "Hello")
	long := make([]rune, 1001)
	for i := range long {
		long[i] = 'ж'
	}
	if _, err := sendText(s, r.Message.ConversationID, string(long), false); refusalCode(err) != session.TextTooLong {
		t.Fatalf("1001 characters: got %v, want text_too_long", err)
	}
	if _, err := sendText(s, 999, "hi", false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown conversation: got %v, want ErrNotFound", err)
	}
	_ = s.Read(ctx, func(r *Reader) error {
		msgs, _ := r.Messages(ctx, 1, 10)
		evs, _ := r.EventsAfter(ctx, 0, 10)
		if len(msgs) != 1 || len(evs) != 1 {
			t.Errorf("after refusals: %d messages, %d events; want only the client's", len(msgs), len(evs))
		}
		return nil
	})
}

func TestRolloverOpensBilledSession(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	r := receive(t, s, "+375298603938", "Hello")
	conv := r.Message.ConversationID
	fill(t, s, conv, "+375298603938", 60)
	clk.Add(time.Hour)
	if _, err := sendText(s, conv, "61st", false); refusalCode(err) != session.NeedsConfirmation {
		t.Fatalf("61st without confirmation: got %v, want needs_confirmation", err)
	}
	msgs, err := sendText(s, conv, "61st", true)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].SessionNumber != 2 || !msgs[0].FirstOfSession {
		t.Errorf("61st message: session %d first=%v, want the first of session 2", msgs[0].SessionNumber, msgs[0].FirstOfSession)
	}
	st := state(t, s, conv)
	if st.Current.Number != 2 || !st.Current.StartedAt.Equal(clk.Now()) || st.Current.Used != 1 {
		t.Errorf("after rollover: %+v, want session 2 starting now with 1 used", st.Current)
	}
}

// Case 10 and S9: many agents race for the 60th message; exactly one gets it.
func TestCase10_LastSlotRace(t *testing.T) {
	for _, mode := range []session.AfterCap{session.Rollover, session.Close} {
		t.Run(string(mode), func(t *testing.T) {
			rules := session.Defaults()
			rules.AfterCap = mode
			s, _ := newStore(t, rules)
			r := receive(t, s, "+375298603938", "Hello")
			conv := r.Message.ConversationID
			fill(t, s, conv, "+375298603938", 59)

			const senders = 24
			var wins atomic.Int32
			codes := make(chan session.Code, senders)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < senders; i++ {
				wg.Go(func() {
					<-start
					_, err := sendText(s, conv, fmt.Sprintf("agent %d", i), false)
					if err == nil {
						wins.Add(1)
						return
					}
					codes <- refusalCode(err)
				})
			}
			close(start)
			wg.Wait()
			close(codes)
			if wins.Load() != 1 {
				t.Fatalf("%d senders got the 60th slot, want exactly 1", wins.Load())
			}
			want := session.NeedsConfirmation
			if mode == session.Close {
				want = session.CapReached
			}
			for c := range codes {
				if c != want {
					t.Errorf("a losing sender got %q, want %q", c, want)
				}
			}
			if st := state(t, s, conv); st.Current.Used != 60 || st.Current.Number != 1 {
				t.Errorf("session %d counts %d, want session 1 with 60", st.Current.Number, st.Current.Used)
			}
		})
	}
}

// S4 and S9: with 5 unanswered allowed, 25 concurrent senders get exactly 5 out.
func TestUnansweredRace(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	r := receive(t, s, "+375298603938", "Hello")
	conv := r.Message.ConversationID
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 25; i++ {
		wg.Go(func() {
			_, err := sendText(s, conv, "hi", false)
			switch {
			case err == nil:
				wins.Add(1)
			case refusalCode(err) != session.AwaitingClient:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 5 {
		t.Fatalf("%d went out, want 5", wins.Load())
	}
	if st := state(t, s, conv); st.Unanswered != 5 || st.Current.Used != 5 {
		t.Errorf("state %+v / %+v, want 5 used and 5 unanswered", st, st.Current)
	}
}

// Case 14: a synchronous rejection releases the slot.
func TestCase14_RejectionReleasesTheSlot(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	r := receive(t, s, "+375298603938", "Hello")
	conv := r.Message.ConversationID
	sendText(s, conv, "one", false)
	msgs, err := sendText(s, conv, "two", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RejectMessage(ctx, MessageRef{ID: msgs[0].ID}, "Not Viber User"); err != nil {
		t.Fatal(err)
	}
	st := state(t, s, conv)
	if st.Current.Used != 1 || st.Unanswered != 1 {
		t.Errorf("after rejection: used %d unanswered %d, want 1 and 1", st.Current.Used, st.Unanswered)
	}
	_ = s.Read(ctx, func(rd *Reader) error {
		m, err := rd.Message(ctx, msgs[0].ID)
		if err != nil || m.Status != StatusFailed || m.StatusReason != "Not Viber User" || m.Counted {
			t.Errorf("rejected message = %+v, %v", m, err)
		}
		return nil
	})
	if q, _ := s.Queued(ctx, 10); len(q) != 1 || q[0].Body != "one" {
		t.Errorf("queue after rejection = %+v, want only %q", q, "one")
	}
}

// Case 15 at the store: an image makes the session a media session.
func TestCase15_ImageMakesSessionMedia(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	r := receive(t, s, "+375298603938", "Hello")
	conv := r.Message.ConversationID
	sendText(s, conv, "text first", false)
	rates := session.Rates{Text: 0.045, Media: 0.06}
	if got := rates.Cost(*state(t, s, conv).Current); got != 0.045 {
		t.Fatalf("text-only session costs %v, want the text rate", got)
	}
	msgs, err := s.AcceptBusinessMessages(context.Background(), BusinessSend{
		ConversationID: conv, Parts: []session.Part{{Kind: session.Image}},
		Attachments: []*NewAttachment{{Hash: strings.Repeat("ab", 32), Size: 1234, MIME: "image/png", Name: "shot.png", Width: 10, Height: 5}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a := msgs[0].Attachment; a == nil || a.Name != "shot.png" || len(a.Token) < 32 || !a.TokenExpiresAt.After(t0) {
		t.Errorf("attachment = %+v, want the image with a public token", a)
	}
	if got := rates.Cost(*state(t, s, conv).Current); got != 0.06 {
		t.Errorf("session with an image costs %v, want the media rate", got)
	}
}

func TestApplyStatusNeverMovesBackwards(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	r := receive(t, s, "+375298603938", "Hello")
	msgs, _ := sendText(s, r.Message.ConversationID, "hi", false)
	ref := MessageRef{ID: msgs[0].ID}
	steps := []struct {
		status  string
		changed bool
	}{
		{StatusSent, true}, {StatusSeen, true}, {StatusDelivered, false}, {StatusSent, false}, {StatusFailed, false}, {StatusSeen, false},
	}
	for _, st := range steps {
		changed, err := s.ApplyStatus(ctx, StatusUpdate{Ref: ref, Status: st.status, ProviderID: "trk-1"})
		if err != nil || changed != st.changed {
			t.Errorf("apply %s: changed=%v err=%v, want changed=%v", st.status, changed, err, st.changed)
		}
	}
	if _, err := s.ApplyStatus(ctx, StatusUpdate{Ref: MessageRef{ProviderID: "unknown"}, Status: StatusSeen}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown provider id: %v, want ErrNotFound", err)
	}
	if _, err := s.ApplyStatus(ctx, StatusUpdate{Ref: MessageRef{ProviderID: "trk-1"}, Status: "bogus"}); err == nil {
		t.Error("an unknown status was accepted")
	}
	_ = s.Read(ctx, func(rd *Reader) error {
		m, _ := rd.Message(ctx, msgs[0].ID)
		if m.Status != StatusSeen || m.ProviderID != "trk-1" {
			t.Errorf("final message = %s / %q, want seen / trk-1", m.Status, m.ProviderID)
		}
		return nil
	})
}

func TestEventsAndReadMarker(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	olga, err := s.EnsureAgent(ctx, "olga", "Olga", "agent")
	if err != nil {
		t.Fatal(err)
	}
	ivan, err := s.EnsureAgent(ctx, "ivan", "Ivan", "agent")
	if err != nil {
		t.Fatal(err)
	}
	var woken atomic.Int32
	s.opts.Committed = func() { woken.Add(1) }
	r := receive(t, s, "+375298603938", "one")
	second := receive(t, s, "+375298603938", "two")
	conv := r.Message.ConversationID
	counts := func(agent int64) int {
		var n map[int64]int
		_ = s.Read(ctx, func(rd *Reader) (err error) {
			n, err = rd.UnreadCounts(ctx, agent, []int64{conv})
			return err
		})
		return n[conv]
	}
	if counts(olga.ID) != 2 || counts(ivan.ID) != 2 {
		t.Errorf("unread = %d and %d, want 2 for each agent", counts(olga.ID), counts(ivan.ID))
	}
	if err := s.MarkRead(ctx, olga.ID, conv); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRead(ctx, olga.ID, conv); err != nil { // nothing new
		t.Fatal(err)
	}
	// Unread is per agent: Olga read it, Ivan did not.
	if counts(olga.ID) != 0 || counts(ivan.ID) != 2 {
		t.Errorf("after Olga read: unread = %d (Olga) and %d (Ivan), want 0 and 2", counts(olga.ID), counts(ivan.ID))
	}
	// Mark as unread: the client's newest message only, for Olga only.
	if err := s.MarkUnread(ctx, olga.ID, conv); err != nil {
		t.Fatal(err)
	}
	if counts(olga.ID) != 1 || counts(ivan.ID) != 2 {
		t.Errorf("after Olga marked unread: unread = %d and %d, want 1 and 2", counts(olga.ID), counts(ivan.ID))
	}
	var marks map[int64]int64
	_ = s.Read(ctx, func(rd *Reader) (err error) {
		marks, err = rd.readMarks(ctx, olga.ID, []int64{conv})
		return err
	})
	if marks[conv] != r.Message.ID || marks[conv] >= second.Message.ID {
		t.Errorf("Olga's mark = %d, want %d (the message before the newest)", marks[conv], r.Message.ID)
	}
	if err := s.MarkUnread(ctx, olga.ID, 1<<40); !errors.Is(err, ErrNotFound) {
		t.Errorf("mark unread of no conversation: %v, want ErrNotFound", err)
	}
	if err := s.MarkRead(ctx, olga.ID, 1<<40); !errors.Is(err, ErrNotFound) {
		t.Errorf("mark read of no conversation: %v, want ErrNotFound", err)
	}
	_ = s.Read(ctx, func(rd *Reader) error {
		evs, _ := rd.EventsAfter(ctx, 0, 10)
		var kinds []string
		for i, e := range evs {
			kinds = append(kinds, e.Kind)
			if i > 0 && e.ID <= evs[i-1].ID {
				t.Errorf("event ids not increasing: %v", evs)
			}
		}
		// What one agent read changes nobody else's list: no event.
		if fmt.Sprint(kinds) != "[message message]" {
			t.Errorf("events = %v", kinds)
		}
		last, _ := rd.LastEventID(ctx)
		after, _ := rd.EventsAfter(ctx, last-1, 10)
		if len(after) != 1 || after[0].ID != last {
			t.Errorf("EventsAfter(last-1) = %v", after)
		}
		return nil
	})
	if woken.Load() != 2 {
		t.Errorf("Committed called %d times, want 2 (one per write with events)", woken.Load())
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reopen.db")
	ctx := context.Background()
	s, err := Open(ctx, path, Options{Rules: session.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	receive(t, s, "+375298603938", "kept")
	s.Close()
	s, err = Open(ctx, path, Options{Rules: session.Defaults()})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	_ = s.Read(ctx, func(r *Reader) error {
		msgs, err := r.Messages(ctx, 1, 10)
		if err != nil || len(msgs) != 1 || msgs[0].Body != "kept" {
			t.Errorf("after reopen: %+v, %v", msgs, err)
		}
		return nil
	})
}

func TestOpenRefusesBadRules(t *testing.T) {
	rules := session.Defaults()
	rules.MaxPerSession = 0
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), Options{Rules: rules}); err == nil {
		t.Fatal("opened with a cap of 0")
	}
}

// BenchmarkReceiveClientMessage measures the inbound transaction on a real file.
func BenchmarkReceiveClientMessage(b *testing.B) {
	s, _ := newStore(b, session.Defaults())
	ctx := context.Background()
	phones := make([]string, 50)
	for i := range phones {
		phones[i] = fmt.Sprintf("+37529%07d", 1000000+i)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: phones[i%len(phones)], Kind: session.Text, Text: "hello"})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAcceptBusinessMessage measures the rule-checked send transaction in
// a realistic conversation: the client answers every few replies and sessions
// roll over at the cap, so the counts stay within the rules' bounds.
func BenchmarkAcceptBusinessMessage(b *testing.B) {
	s, _ := newStore(b, session.Defaults())
	r := receive(b, s, "+375298603938", "Hello")
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%4 == 3 {
			b.StopTimer()
			receive(b, s, "+375298603938", "ok")
			b.StartTimer()
		}
		if _, err := sendText(s, r.Message.ConversationID, "reply", true); err != nil {
			b.Fatal(err)
		}
	}
}

func TestClientMediaIsPendingUntilDownloaded(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	r, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: "+375298603938", Kind: session.File, Text: "the invoice",
		MediaURL: "https://media.example/1", FileName: "invoice.pdf"})
	if err != nil {
		t.Fatal(err)
	}
	due, err := s.PendingDownloads(ctx, clk.Now(), 10)
	if err != nil || len(due) != 1 || due[0].URL != "https://media.example/1" || due[0].Name != "invoice.pdf" {
		t.Fatalf("pending = %+v, %v", due, err)
	}
	id := due[0].ID
	if err := s.DownloadFailed(ctx, id, "503", clk.Now().Add(time.Minute), false); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.PendingDownloads(ctx, clk.Now(), 10); len(due) != 0 {
		t.Errorf("a download is due before its retry time")
	}
	clk.Add(time.Minute)
	hash := strings.Repeat("cd", 32)
	if err := s.DownloadDone(ctx, id, NewAttachment{Hash: hash, Size: 99, MIME: "application/pdf"}); err != nil {
		t.Fatal(err)
	}
	_ = s.Read(ctx, func(rd *Reader) error {
		m, _ := rd.Message(ctx, r.Message.ID)
		if a := m.Attachment; a == nil || a.DownloadState != DownloadDone || a.Hash != hash || a.Name != "invoice.pdf" || a.Attempts != 1 {
			t.Errorf("after download: %+v", a)
		}
		return nil
	})
	if used, _ := s.HashInUse(ctx, hash); !used {
		t.Error("the downloaded blob is not in use")
	}
}

// An unusable data folder is named, with the system's reason, instead of
// SQLite's "unable to open database file".
func TestOpenNamesUnwritableDataFolder(t *testing.T) {
	type variant struct {
		name, dir, want string
	}
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	variants := []variant{
		// Fails for root too: a folder inside a regular file.
		{"parent is a file", filepath.Join(file, "data"), "data folder " + filepath.Join(file, "data") + " cannot be created: not a directory"},
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(t.TempDir(), "read-only")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		variants = append(variants, variant{"read-only folder", ro, "data folder " + ro + " is not writable: permission denied"})
	} else if f, err := os.CreateTemp("/sys/fs", "x"); err != nil && errors.Is(err, fs.ErrPermission) {
		// Root may write anywhere a mode forbids, but sysfs takes no new files.
		variants = append(variants, variant{"existing folder refusing files", "/sys/fs", "data folder /sys/fs is not writable: permission denied"})
	} else if err == nil {
		f.Close()
		os.Remove(f.Name())
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			s, err := Open(context.Background(), filepath.Join(v.dir, "sessiondesk.db"), Options{Rules: session.Defaults()})
			if err == nil {
				s.Close()
				t.Fatal("opened a store in an unusable folder")
			}
			if !strings.Contains(err.Error(), v.want) {
				t.Fatalf("error %q does not say %q", err, v.want)
			}
		})
	}
	t.Logf("%d variants (running as uid %d)", len(variants), os.Geteuid())
}

// CheckBusinessSend gives the rules' answer without storing anything.
func TestCheckBusinessSendStoresNothing(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	send := BusinessSend{ConversationID: conv, Parts: []session.Part{{Kind: session.Text, Text: "hi"}}}
	if err := s.CheckBusinessSend(ctx, send); err != nil {
		t.Fatalf("allowed send: %v", err)
	}
	for range 5 {
		if _, err := sendText(s, conv, "hi", false); err != nil {
			t.Fatal(err)
		}
	}
	before := state(t, s, conv)
	var refusal *session.Refusal
	if err := s.CheckBusinessSend(ctx, send); !errors.As(err, &refusal) || refusal.Code != session.AwaitingClient {
		t.Fatalf("after five unanswered: %v, want awaiting_client", err)
	}
	if after := state(t, s, conv); after.Unanswered != before.Unanswered || after.Current.Used != before.Current.Used {
		t.Errorf("a check changed the state: %+v, then %+v", before, after)
	}
	if err := s.CheckBusinessSend(ctx, BusinessSend{ConversationID: 9999, Parts: send.Parts}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown conversation: %v", err)
	}
}

package session_test

import (
	"strings"
	"testing"
	"time"

	"sessiondesk/session"
)

// The spec's cases use one conversation whose client first writes at 10:00 UTC on
// 24 November 2026. Times are written out so that every expected figure can be
// checked against the table in shared/spec/session-rules.md.
var (
	day1 = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	day2 = day1.AddDate(0, 0, 1)
)

// at returns hh:mm:ss on 24 November 2026 (UTC); hours of 24 and more run into the next days.
func at(h, m, s int) time.Time {
	return day1.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
}

func text(s string) session.Part { return session.Part{Kind: session.Text, Text: s} }

var (
	hello = text("Hello, how can I help?")
	img   = session.Part{Kind: session.Image}
	file  = session.Part{Kind: session.File}
)

// clientWrites applies a client message stamped at t and checks whether it opened a session.
func clientWrites(t *testing.T, st session.State, set session.Settings, ts time.Time, wantOpened bool) session.State {
	t.Helper()
	next, opened := session.ClientWrote(st, set, ts, ts)
	if opened != wantOpened {
		t.Fatalf("client message at %s: opened = %v, want %v", ts.Format(time.DateTime), opened, wantOpened)
	}
	if next.Unanswered != 0 {
		t.Fatalf("client message at %s: unanswered = %d, want 0", ts.Format(time.DateTime), next.Unanswered)
	}
	return next
}

// send decides parts at now, requires them to be allowed, and returns the next state.
func send(t *testing.T, st session.State, set session.Settings, now time.Time, confirm bool, parts ...session.Part) (session.State, session.Decision) {
	t.Helper()
	d := session.Decide(st, set, now, parts, confirm)
	if !d.Allowed() {
		t.Fatalf("send of %d part(s) at %s refused: %v", len(parts), now.Format(time.DateTime), d.Err)
	}
	if len(d.Placements) != len(parts) {
		t.Fatalf("send of %d part(s): %d placements", len(parts), len(d.Placements))
	}
	if d.Next.Current == nil {
		t.Fatal("allowed decision has no current session in Next")
	}
	return d.Next, d
}

// refused decides parts at now and requires a refusal with code.
func refused(t *testing.T, st session.State, set session.Settings, now time.Time, confirm bool, code session.Code, parts ...session.Part) *session.Refusal {
	t.Helper()
	d := session.Decide(st, set, now, parts, confirm)
	if d.Allowed() {
		t.Fatalf("send of %d part(s) at %s allowed (placements %+v), want refusal %s", len(parts), now.Format(time.DateTime), d.Placements, code)
	}
	if d.Err.Code != code {
		t.Fatalf("send at %s refused with %s (%q), want %s", now.Format(time.DateTime), d.Err.Code, d.Err.Message, code)
	}
	if d.Err.Message == "" {
		t.Fatal("refusal without a message")
	}
	if len(d.Placements) != 0 || d.Next.Current != nil || d.Next.Unanswered != 0 || d.StartsNewSession {
		t.Fatalf("refused decision carries a result: %+v", d)
	}
	return d.Err
}

// wantSession checks every figure of a session.
func wantSession(t *testing.T, got *session.Session, want session.Session) {
	t.Helper()
	if got == nil {
		t.Fatalf("no session, want %+v", want)
	}
	if got.Number != want.Number || !got.StartedAt.Equal(want.StartedAt) || !got.EndsAt.Equal(want.EndsAt) ||
		got.Used != want.Used || got.Media != want.Media {
		t.Fatalf("session = {n%d %s → %s used %d media %v}, want {n%d %s → %s used %d media %v}",
			got.Number, got.StartedAt.Format(time.DateTime), got.EndsAt.Format(time.DateTime), got.Used, got.Media,
			want.Number, want.StartedAt.Format(time.DateTime), want.EndsAt.Format(time.DateTime), want.Used, want.Media)
	}
}

func wantStatus(t *testing.T, got, want session.Status) {
	t.Helper()
	var gotCode, wantCode session.Code
	if got.Refusal != nil {
		gotCode = got.Refusal.Code
	}
	if want.Refusal != nil {
		wantCode = want.Refusal.Code
	}
	if got.Open != want.Open || got.Number != want.Number || !got.StartedAt.Equal(want.StartedAt) ||
		!got.EndsAt.Equal(want.EndsAt) || got.Used != want.Used || got.Remaining != want.Remaining ||
		got.Unanswered != want.Unanswered || got.UnansweredLeft != want.UnansweredLeft ||
		got.Media != want.Media || got.CanSend != want.CanSend || gotCode != wantCode {
		t.Fatalf("status =\n\t%+v (code %q)\nwant\n\t%+v (code %q)", got, gotCode, want, wantCode)
	}
	if got.CanSend != (got.Refusal == nil) {
		t.Fatalf("status CanSend %v but refusal %v", got.CanSend, got.Refusal)
	}
}

func code(c session.Code) *session.Refusal { return &session.Refusal{Code: c} }

// openedAt10 is the conversation after the client's first message at 10:00.
func openedAt10(t *testing.T, set session.Settings) session.State {
	t.Helper()
	st := clientWrites(t, session.State{}, set, at(10, 0, 0), true)
	wantSession(t, st.Current, session.Session{Number: 1, StartedAt: at(10, 0, 0), EndsAt: day2.Add(10 * time.Hour)})
	return st
}

func TestCase01_ReplyInsideSession(t *testing.T) {
	set := session.Defaults()
	st := openedAt10(t, set)
	next, d := send(t, st, set, at(10, 5, 0), false, hello)

	if d.StartsNewSession || d.Placements[0] != (session.Placement{Session: 1}) {
		t.Fatalf("placement %+v, StartsNewSession %v; want session 1, not new", d.Placements, d.StartsNewSession)
	}
	// Session 1 runs 10:00 to 10:00 the next day.
	wantSession(t, next.Current, session.Session{Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 1})
	if next.Unanswered != 1 {
		t.Fatalf("unanswered = %d, want 1", next.Unanswered)
	}
	// Used 1 of 60; unanswered 1 of 5.
	wantStatus(t, session.StatusAt(next, set, at(10, 5, 0)), session.Status{
		Open: true, Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0),
		Used: 1, Remaining: 59, Unanswered: 1, UnansweredLeft: 4, CanSend: true,
	})
	// The decision did not change the state it was given.
	if st.Current.Used != 0 || st.Unanswered != 0 {
		t.Fatalf("Decide mutated its input: %+v, %+v", st, *st.Current)
	}
}

func TestCase02_SixthUnansweredRefused(t *testing.T) {
	set := session.Defaults()
	st := openedAt10(t, set)
	for i := range 5 {
		st, _ = send(t, st, set, at(10, 5+i, 0), false, hello)
	}
	if st.Unanswered != 5 || st.Current.Used != 5 {
		t.Fatalf("after 5 sends: unanswered %d used %d, want 5 and 5", st.Unanswered, st.Current.Used)
	}
	r := refused(t, st, set, at(10, 10, 0), false, session.AwaitingClient, hello)
	if !strings.Contains(r.Message, "Waiting for the client's reply") || !strings.Contains(r.Message, "5 messages") {
		t.Fatalf("message %q does not say it waits for the client after 5 messages", r.Message)
	}
	// Confirmation does not help: it is about the client, not billing.
	refused(t, st, set, at(10, 10, 0), true, session.AwaitingClient, hello)
	wantStatus(t, session.StatusAt(st, set, at(10, 10, 0)), session.Status{
		Open: true, Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0),
		Used: 5, Remaining: 55, Unanswered: 5, UnansweredLeft: 0, Refusal: code(session.AwaitingClient),
	})
}

func TestCase03_ClientReplyResetsUnanswered(t *testing.T) {
	set := session.Defaults()
	st := openedAt10(t, set)
	for i := range 5 {
		st, _ = send(t, st, set, at(10, 5+i, 0), false, hello)
	}
	st = clientWrites(t, st, set, at(10, 30, 0), false)
	wantSession(t, st.Current, session.Session{Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 5})
	wantStatus(t, session.StatusAt(st, set, at(10, 31, 0)), session.Status{
		Open: true, Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0),
		Used: 5, Remaining: 55, Unanswered: 0, UnansweredLeft: 5, CanSend: true,
	})
	// 5 more may be sent, as one send of five parts ...
	five := []session.Part{hello, img, file, hello, img}
	next, d := send(t, st, set, at(10, 31, 0), false, five...)
	for i, p := range d.Placements {
		if p != (session.Placement{Session: 1}) {
			t.Fatalf("placement %d = %+v, want session 1", i, p)
		}
	}
	wantSession(t, next.Current, session.Session{Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 10, Media: true})
	refused(t, next, set, at(10, 32, 0), false, session.AwaitingClient, hello)
	// ... or one by one, and not a sixth.
	for i := range 5 {
		st, _ = send(t, st, set, at(10, 31+i, 0), false, hello)
	}
	refused(t, st, set, at(10, 40, 0), false, session.AwaitingClient, hello)
}

func TestCase04_SendAtExactEndRefused(t *testing.T) {
	set := session.Defaults()
	st := openedAt10(t, set)
	st, _ = send(t, st, set, at(10, 5, 0), false, hello)
	end := at(34, 0, 0) // 10:00 on 25 November: start + 24 h
	r := refused(t, st, set, end, false, session.WindowClosed, hello)
	if !strings.Contains(r.Message, "25 Nov 10:00 UTC") || !strings.Contains(r.Message, "24-hour") {
		t.Fatalf("message %q does not give the end time and the window", r.Message)
	}
	refused(t, st, set, end, true, session.WindowClosed, hello)
	wantStatus(t, session.StatusAt(st, set, end), session.Status{
		Open: false, Number: 1, StartedAt: at(10, 0, 0), EndsAt: end,
		Used: 1, Remaining: 0, Unanswered: 1, UnansweredLeft: 4, Refusal: code(session.WindowClosed),
	})
}

func TestCase04_WindowClosedNamesTheChannelsWindow(t *testing.T) {
	set := session.Defaults()
	set.Window = 12 * time.Hour // older contracts
	st := clientWrites(t, session.State{}, set, at(10, 0, 0), true)
	wantSession(t, st.Current, session.Session{Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(22, 0, 0)})
	r := refused(t, st, set, at(22, 0, 0), false, session.WindowClosed, hello)
	if !strings.Contains(r.Message, "12-hour window") || strings.Contains(r.Message, "24-hour") {
		t.Fatalf("message %q should name the 12-hour window", r.Message)
	}
	set.Window = 90 * time.Minute
	st = clientWrites(t, session.State{}, set, at(10, 0, 0), true)
	if r := refused(t, st, set, at(11, 30, 0), false, session.WindowClosed, hello); !strings.Contains(r.Message, "90-minute window") {
		t.Fatalf("message %q should name the 90-minute window", r.Message)
	}
}

func TestCase05_SendOneSecondBeforeEndAllowed(t *testing.T) {
	set := session.Defaults()
	st := openedAt10(t, set)
	last := at(33, 59, 59) // 09:59:59 on 25 November
	next, d := send(t, st, set, last, false, hello)
	if d.Placements[0] != (session.Placement{Session: 1}) {
		t.Fatalf("placement %+v, want session 1", d.Placements[0])
	}
	wantSession(t, next.Current, session.Session{Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 1})
	wantStatus(t, session.StatusAt(next, set, last), session.Status{
		Open: true, Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0),
		Used: 1, Remaining: 59, Unanswered: 1, UnansweredLeft: 4, CanSend: true,
	})
}

func TestCase06_ClientWritingDoesNotExtendWindow(t *testing.T) {
	set := session.Defaults()
	st := openedAt10(t, set)
	st, _ = send(t, st, set, at(10, 5, 0), false, hello)
	for _, ts := range []time.Time{at(10, 6, 0), at(18, 0, 0), at(33, 59, 59)} {
		st = clientWrites(t, st, set, ts, false)
		wantSession(t, st.Current, session.Session{Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 1})
	}
	refused(t, st, set, at(34, 0, 0), false, session.WindowClosed, hello)
}

func TestCase07_ClientAfterEndOpensSession2(t *testing.T) {
	set := session.Defaults()
	st := openedAt10(t, set)
	st, _ = send(t, st, set, at(10, 5, 0), false, hello, img)

	// At exactly the end, the session is over: the message opens session 2 there.
	s2 := clientWrites(t, st, set, at(34, 0, 0), true)
	wantSession(t, s2.Current, session.Session{Number: 2, StartedAt: at(34, 0, 0), EndsAt: at(58, 0, 0)})

	// Later the same: session 2 starts at the client's message, not before.
	st = clientWrites(t, st, set, at(36, 30, 0), true)
	wantSession(t, st.Current, session.Session{Number: 2, StartedAt: at(36, 30, 0), EndsAt: at(60, 30, 0)})
	wantStatus(t, session.StatusAt(st, set, at(36, 30, 0)), session.Status{
		Open: true, Number: 2, StartedAt: at(36, 30, 0), EndsAt: at(60, 30, 0),
		Remaining: 60, UnansweredLeft: 5, CanSend: true,
	})
	st, d := send(t, st, set, at(36, 31, 0), false, hello)
	if d.Placements[0] != (session.Placement{Session: 2}) || d.StartsNewSession {
		t.Fatalf("placement %+v new %v, want session 2 opened by the client", d.Placements[0], d.StartsNewSession)
	}
	wantSession(t, st.Current, session.Session{Number: 2, StartedAt: at(36, 30, 0), EndsAt: at(60, 30, 0), Used: 1})
}

// sixtyWithReplies sends 60 single texts from 10:01, one a minute, the client writing
// before every `every` of them. It returns the state after the 60th (at 11:00).
func sixtyWithReplies(t *testing.T, set session.Settings, every int) session.State {
	t.Helper()
	st := openedAt10(t, set)
	for i := range 60 {
		now := at(10, 1+i, 0)
		if i > 0 && i%every == 0 {
			st = clientWrites(t, st, set, now.Add(-30*time.Second), false)
		}
		st, _ = send(t, st, set, now, false, hello)
	}
	wantSession(t, st.Current, session.Session{Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 60})
	return st
}

func TestCase08_Cap_Rollover_NeedsConfirmationThenSession2(t *testing.T) {
	set := session.Defaults()
	st := sixtyWithReplies(t, set, 5)
	st = clientWrites(t, st, set, at(14, 59, 0), false)
	wantStatus(t, session.StatusAt(st, set, at(15, 0, 0)), session.Status{
		Open: true, Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0),
		Used: 60, Remaining: 0, UnansweredLeft: 5, Refusal: code(session.NeedsConfirmation),
	})

	r := refused(t, st, set, at(15, 0, 0), false, session.NeedsConfirmation, hello)
	if !strings.Contains(r.Message, "session 2") || !strings.Contains(r.Message, "60") {
		t.Fatalf("message %q should say that session 2 begins after 60", r.Message)
	}

	next, d := send(t, st, set, at(15, 0, 0), true, hello)
	if !d.StartsNewSession || d.Placements[0] != (session.Placement{Session: 2, NewSession: true}) {
		t.Fatalf("placement %+v StartsNewSession %v, want a new session 2", d.Placements, d.StartsNewSession)
	}
	// Session 2 starts now, with a fresh window, billed (it has a message).
	wantSession(t, next.Current, session.Session{Number: 2, StartedAt: at(15, 0, 0), EndsAt: at(39, 0, 0), Used: 1})
	if next.Unanswered != 1 {
		t.Fatalf("unanswered = %d, want 1", next.Unanswered)
	}
	rates := session.Rates{Text: 0.01, Media: 0.03, Currency: "EUR"}
	if c := rates.Cost(*next.Current); c != 0.01 {
		t.Fatalf("session 2 costs %v, want the text rate", c)
	}
	wantStatus(t, session.StatusAt(next, set, at(15, 0, 0)), session.Status{
		Open: true, Number: 2, StartedAt: at(15, 0, 0), EndsAt: at(39, 0, 0),
		Used: 1, Remaining: 59, Unanswered: 1, UnansweredLeft: 4, CanSend: true,
	})
}

func TestCase08_Cap_Close_Refused(t *testing.T) {
	set := session.Defaults()
	set.AfterCap = session.Close
	st := sixtyWithReplies(t, set, 5)
	for _, confirm := range []bool{false, true} {
		r := refused(t, st, set, at(11, 1, 0), confirm, session.CapReached, hello)
		if !strings.Contains(r.Message, "client must write") {
			t.Fatalf("message %q should say the client must write", r.Message)
		}
	}
	wantStatus(t, session.StatusAt(st, set, at(11, 1, 0)), session.Status{
		Open: false, Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0),
		Used: 60, Remaining: 0, Unanswered: 5, UnansweredLeft: 0, Refusal: code(session.CapReached),
	})
}

func TestCloseMode_ClientAfterCapOpensNewSession(t *testing.T) {
	set := session.Defaults()
	set.AfterCap = session.Close
	st := sixtyWithReplies(t, set, 5)
	// The window of session 1 still runs to 10:00 tomorrow, but it is closed by the cap.
	st = clientWrites(t, st, set, at(12, 0, 0), true)
	wantSession(t, st.Current, session.Session{Number: 2, StartedAt: at(12, 0, 0), EndsAt: at(36, 0, 0)})
	st, d := send(t, st, set, at(12, 1, 0), false, hello)
	if d.StartsNewSession || d.Placements[0] != (session.Placement{Session: 2}) {
		t.Fatalf("placement %+v new %v, want session 2 opened by the client", d.Placements[0], d.StartsNewSession)
	}
	wantSession(t, st.Current, session.Session{Number: 2, StartedAt: at(12, 0, 0), EndsAt: at(36, 0, 0), Used: 1})
}

func TestCloseMode_MultiPartOverCapRefusedWhole(t *testing.T) {
	set := session.Defaults()
	set.AfterCap = session.Close
	st := session.State{Current: &session.Session{Number: 3, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 58}}
	r := refused(t, st, set, at(15, 0, 0), true, session.CapReached, hello, img, img)
	if !strings.Contains(r.Message, "3 messages") || !strings.Contains(r.Message, "only 2") {
		t.Fatalf("message %q should give 3 needed and 2 left", r.Message)
	}
	next, _ := send(t, st, set, at(15, 0, 0), false, hello, img)
	wantSession(t, next.Current, session.Session{Number: 3, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 60, Media: true})
}

func TestRollover_CarriesUnansweredCount(t *testing.T) {
	set := session.Defaults()
	st := sixtyWithReplies(t, set, 4) // the client wrote before the 57th: 4 unanswered after the 60th
	if st.Unanswered != 4 {
		t.Fatalf("unanswered = %d, want 4", st.Unanswered)
	}
	next, d := send(t, st, set, at(11, 5, 0), true, hello)
	if d.Placements[0] != (session.Placement{Session: 2, NewSession: true}) {
		t.Fatalf("placement %+v, want new session 2", d.Placements[0])
	}
	if next.Unanswered != 5 {
		t.Fatalf("unanswered after rollover = %d, want 5 (it carries over)", next.Unanswered)
	}
	refused(t, next, set, at(11, 6, 0), true, session.AwaitingClient, hello)
	// Four unanswered and a two-part rollover: the unanswered limit comes first.
	refused(t, st, set, at(11, 5, 0), true, session.AwaitingClient, hello, img)
}

func TestRollover_InTheMiddleOfAMultiPartSend(t *testing.T) {
	set := session.Defaults()
	st := session.State{
		Current:    &session.Session{Number: 4, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 58},
		Unanswered: 1,
	}
	parts := []session.Part{hello, img, file}
	r := refused(t, st, set, at(15, 0, 0), false, session.NeedsConfirmation, parts...)
	if !strings.Contains(r.Message, "session 5") {
		t.Fatalf("message %q should name session 5", r.Message)
	}
	next, d := send(t, st, set, at(15, 0, 0), true, parts...)
	want := []session.Placement{{Session: 4}, {Session: 4}, {Session: 5, NewSession: true}}
	for i := range want {
		if d.Placements[i] != want[i] {
			t.Fatalf("placements %+v, want %+v", d.Placements, want)
		}
	}
	if !d.StartsNewSession {
		t.Fatal("StartsNewSession false")
	}
	// Session 5 holds only the file, from now; the image counted in session 4.
	wantSession(t, next.Current, session.Session{Number: 5, StartedAt: at(15, 0, 0), EndsAt: at(39, 0, 0), Used: 1, Media: true})
	if next.Unanswered != 4 {
		t.Fatalf("unanswered = %d, want 1+3", next.Unanswered)
	}
	// The old session in the input is untouched.
	wantSession(t, st.Current, session.Session{Number: 4, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 58})

	// Exactly filling the session needs no confirmation.
	next, d = send(t, st, set, at(15, 0, 0), false, hello, hello)
	if d.StartsNewSession {
		t.Fatal("filling the session to 60 began a new one")
	}
	wantSession(t, next.Current, session.Session{Number: 4, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 60})
}

func TestCase09_UnansweredSessionCostsNothing(t *testing.T) {
	set := session.Defaults()
	st := openedAt10(t, set)
	rates := session.Rates{Text: 0.0125, Media: 0.0375, Currency: "EUR"}
	s := *st.Current
	if s.Unanswered(at(33, 59, 59)) {
		t.Fatal("reported unanswered before its end: an agent could still answer")
	}
	if !s.Unanswered(at(34, 0, 0)) || !s.Unanswered(at(40, 0, 0)) {
		t.Fatal("not reported unanswered once over")
	}
	if c := rates.Cost(s); c != 0 {
		t.Fatalf("costs %v, want 0", c)
	}
	// The client writing again opens session 2; session 1 still cost nothing.
	st = clientWrites(t, st, set, at(35, 0, 0), true)
	if st.Current.Number != 2 || rates.Cost(s) != 0 {
		t.Fatalf("session %d, cost %v", st.Current.Number, rates.Cost(s))
	}
	// An answered session is not "unanswered".
	answered, _ := send(t, openedAt10(t, set), set, at(10, 5, 0), false, hello)
	if answered.Current.Unanswered(at(40, 0, 0)) {
		t.Fatal("a session with a business message reported unanswered")
	}
}

func TestCase11_TextLength(t *testing.T) {
	set := session.Defaults()
	st := openedAt10(t, set)
	now := at(10, 5, 0)

	for _, unit := range []string{"a", "я", "😀", "中"} {
		ok := strings.Repeat(unit, 1000)
		if _, d := send(t, st, set, now, false, text(ok)); d.Next.Current.Used != 1 {
			t.Fatalf("1000 × %q: used %d", unit, d.Next.Current.Used)
		}
		r := refused(t, st, set, now, false, session.TextTooLong, text(ok+unit))
		if !strings.Contains(r.Message, "1001 characters") || !strings.Contains(r.Message, "1000") || !strings.Contains(r.Message, "by 1") {
			t.Fatalf("1001 × %q: message %q should give the count, the limit and the excess", unit, r.Message)
		}
	}
	// Code points, not bytes or graphemes: "e" + combining acute is two.
	r := refused(t, st, set, now, false, session.TextTooLong, text(strings.Repeat("e\u0301", 501)))
	if !strings.Contains(r.Message, "1002 characters") {
		t.Fatalf("message %q should count 1002 code points", r.Message)
	}
	// A too-long text refuses the whole send, even with parts before it.
	refused(t, st, set, now, false, session.TextTooLong, img, text(strings.Repeat("x", 1001)))
	// The channel's limit is used.
	set.MaxTextLen = 10
	refused(t, st, set, now, false, session.TextTooLong, text("12345678901"))
	send(t, st, set, now, false, text("1234567890"))
	// Attachments carry no text to count.
	send(t, st, set, now, false, session.Part{Kind: session.Image, Text: strings.Repeat("x", 5000)})
}

func TestCase15_ImageMakesSessionMedia(t *testing.T) {
	set := session.Defaults()
	rates := session.Rates{Text: 0.0125, Media: 0.0375, Currency: "EUR"}
	st := openedAt10(t, set)
	st, _ = send(t, st, set, at(10, 5, 0), false, hello)
	st, _ = send(t, st, set, at(10, 6, 0), false, text("Here is the form"))
	wantSession(t, st.Current, session.Session{Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 2})
	if c := rates.Cost(*st.Current); c != 0.0125 {
		t.Fatalf("text-only session costs %v, want 0.0125", c)
	}
	st, _ = send(t, st, set, at(10, 7, 0), false, img)
	wantSession(t, st.Current, session.Session{Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 3, Media: true})
	if c := rates.Cost(*st.Current); c != 0.0375 {
		t.Fatalf("session with an image costs %v, want 0.0375", c)
	}
	if s := session.StatusAt(st, set, at(10, 7, 0)); !s.Media {
		t.Fatal("status does not show the media rate")
	}
	// Once media, always media: more text does not bring it back.
	st = clientWrites(t, st, set, at(10, 8, 0), false)
	st, _ = send(t, st, set, at(10, 9, 0), false, hello)
	if c := rates.Cost(*st.Current); c != 0.0375 || !st.Current.Media {
		t.Fatalf("after more text: cost %v media %v", c, st.Current.Media)
	}
	// A file counts as media too.
	st2 := openedAt10(t, set)
	st2, _ = send(t, st2, set, at(10, 5, 0), false, file)
	if rates.Cost(*st2.Current) != 0.0375 {
		t.Fatal("a file did not make the session media")
	}
}

func TestCase16_TextPlusTwoImagesWithTwoLeftRefused(t *testing.T) {
	set := session.Defaults()
	st := openedAt10(t, set)
	for i := range 3 {
		st, _ = send(t, st, set, at(10, 1+i, 0), false, hello)
	}
	if left := session.StatusAt(st, set, at(10, 5, 0)).UnansweredLeft; left != 2 {
		t.Fatalf("unanswered left = %d, want 2", left)
	}
	r := refused(t, st, set, at(10, 5, 0), false, session.AwaitingClient, text("See the photos"), img, img)
	if !strings.Contains(r.Message, "needs 3") || !strings.Contains(r.Message, "only 2") {
		t.Fatalf("message %q should say it needs 3 and 2 are left", r.Message)
	}
	refused(t, st, set, at(10, 5, 0), true, session.AwaitingClient, text("See the photos"), img, img)
	// Nothing was placed: the state is as before, and two parts still fit.
	wantSession(t, st.Current, session.Session{Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 3})
	next, d := send(t, st, set, at(10, 5, 0), false, text("See the photo"), img)
	if len(d.Placements) != 2 || next.Unanswered != 5 {
		t.Fatalf("placements %+v unanswered %d", d.Placements, next.Unanswered)
	}
}

func TestCase17_NoSessionComposerDisabled(t *testing.T) {
	set := session.Defaults()
	s := session.StatusAt(session.State{}, set, at(9, 0, 0))
	wantStatus(t, s, session.Status{UnansweredLeft: 5, Refusal: code(session.NoSession)})
	if !s.StartedAt.IsZero() || !s.EndsAt.IsZero() {
		t.Fatal("times set without a session")
	}
	if !strings.Contains(s.Refusal.Message, "opened by the client") {
		t.Fatalf("message %q should say sessions are opened by the client", s.Refusal.Message)
	}
	// No confirmation lets an agent open a session.
	refused(t, session.State{}, set, at(9, 0, 0), true, session.NoSession, hello)
	if (session.State{}).IsOpen(set, at(9, 0, 0)) {
		t.Fatal("an empty state is open")
	}
}

func TestNotStartedYetIsNoSession(t *testing.T) {
	set := session.Defaults()
	st := clientWrites(t, session.State{}, set, at(10, 4, 0), true) // stamped 4 min ahead of our clock
	r := refused(t, st, set, at(10, 0, 0), false, session.NoSession, hello)
	if !strings.Contains(r.Message, "not started") {
		t.Fatalf("message %q", r.Message)
	}
	send(t, st, set, at(10, 4, 0), false, hello)
}

func TestClientTime(t *testing.T) {
	set := session.Defaults()
	received := at(10, 0, 0)
	cases := []struct {
		name   string
		sentAt time.Time
		want   time.Time
	}{
		{"missing", time.Time{}, received},
		{"unparsable parsed as zero", time.Time{}, received},
		{"in the past", at(9, 58, 30), at(9, 58, 30)},
		{"equal", received, received},
		{"4 min in the future", at(10, 4, 0), at(10, 4, 0)},
		{"exactly 5 min in the future", at(10, 5, 0), at(10, 5, 0)},
		{"5 min 1 s in the future", at(10, 5, 1), received},
		{"an hour in the future", at(11, 0, 0), received},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := session.ClientTime(set, c.sentAt, received); !got.Equal(c.want) {
				t.Fatalf("ClientTime(%s) = %s, want %s", c.sentAt, got, c.want)
			}
		})
	}
	// The skew is a setting.
	set.FutureSkew = 0
	if got := session.ClientTime(set, at(10, 0, 1), received); !got.Equal(received) {
		t.Fatalf("with no skew allowed, a future stamp is used: %s", got)
	}
	// The whole path: a stamp 10 minutes ahead opens the session at receipt.
	st := clientWrites(t, session.State{}, session.Defaults(), session.ClientTime(session.Defaults(), at(10, 10, 0), received), true)
	wantSession(t, st.Current, session.Session{Number: 1, StartedAt: received, EndsAt: at(34, 0, 0)})
}

func TestClientWrote_LateMessageBeforeSessionStartOpensNothing(t *testing.T) {
	set := session.Defaults()
	st := sixtyWithReplies(t, set, 5)
	st, _ = send(t, clientWrites(t, st, set, at(11, 1, 0), false), set, at(15, 0, 0), true, hello) // session 2 from 15:00
	before := *st.Current
	// A message stamped 14:00 arrives late: it resets the count but opens nothing.
	next := clientWrites(t, st, set, at(14, 0, 0), false)
	wantSession(t, next.Current, before)
}

func TestInvalidKindsRefused(t *testing.T) {
	set := session.Defaults()
	st := openedAt10(t, set)
	now := at(10, 5, 0)
	for _, k := range []session.Kind{"button", "rich", "", "TEXT", "video"} {
		r := refused(t, st, set, now, false, session.InvalidType, session.Part{Kind: k, Text: "Buy"})
		if k == "button" && !strings.Contains(r.Message, `"button"`) {
			t.Fatalf("message %q should name the kind", r.Message)
		}
		// Anywhere in the send: nothing goes.
		refused(t, st, set, now, false, session.InvalidType, hello, img, session.Part{Kind: k})
	}
	for _, k := range []session.Kind{session.Text, session.Image, session.File} {
		if !k.Valid() {
			t.Fatalf("%s not valid", k)
		}
	}
	// Validation comes before the session checks: the agent fixes what is composed first.
	refused(t, session.State{}, set, now, false, session.InvalidType, session.Part{Kind: "button"})
}

func TestEmptyPartsRefused(t *testing.T) {
	set := session.Defaults()
	st := openedAt10(t, set)
	now := at(10, 5, 0)
	refused(t, st, set, now, false, session.InvalidType)
	refused(t, st, set, now, false, session.InvalidType, []session.Part{}...)
	r := refused(t, st, set, now, false, session.InvalidType, text(""))
	if !strings.Contains(r.Message, "empty") {
		t.Fatalf("message %q", r.Message)
	}
	refused(t, st, set, now, false, session.InvalidType, img, text(""))
}

func TestSettingsValidate(t *testing.T) {
	if err := session.Defaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	d := session.Defaults()
	if d.Window != 24*time.Hour || d.MaxPerSession != 60 || d.MaxUnanswered != 5 || d.AfterCap != session.Rollover ||
		d.MaxTextLen != 1000 || d.FutureSkew != 5*time.Minute {
		t.Fatalf("defaults differ from the spec: %+v", d)
	}
	ok := []func(*session.Settings){
		func(s *session.Settings) { s.Window = 12 * time.Hour },
		func(s *session.Settings) { s.MaxUnanswered = 10 },
		func(s *session.Settings) { s.AfterCap = session.Close },
		func(s *session.Settings) { s.FutureSkew = 0 },
		func(s *session.Settings) { s.MaxPerSession = 1 },
		func(s *session.Settings) { s.Window = 24 * time.Hour },
		func(s *session.Settings) { s.MaxTextLen = 1 },
	}
	for i, f := range ok {
		s := session.Defaults()
		f(&s)
		if err := s.Validate(); err != nil {
			t.Errorf("ok case %d: %v", i, err)
		}
	}
	bad := []struct {
		mention string
		f       func(*session.Settings)
	}{
		{"window", func(s *session.Settings) { s.Window = 0 }},
		{"window", func(s *session.Settings) { s.Window = -time.Hour }},
		{"per session", func(s *session.Settings) { s.MaxPerSession = 0 }},
		{"unanswered", func(s *session.Settings) { s.MaxUnanswered = 0 }},
		{"after-cap", func(s *session.Settings) { s.AfterCap = "" }},
		{"after-cap", func(s *session.Settings) { s.AfterCap = "wait" }},
		{"text length", func(s *session.Settings) { s.MaxTextLen = 0 }},
		{"skew", func(s *session.Settings) { s.FutureSkew = -time.Second }},
		// What Viber allows, with the range named.
		{"at most 24h", func(s *session.Settings) { s.Window = 24*time.Hour + time.Second }},
		{"1 to 60", func(s *session.Settings) { s.MaxPerSession = 61 }},
		{"1 to 10", func(s *session.Settings) { s.MaxUnanswered = 11 }},
		{"1 to 1000", func(s *session.Settings) { s.MaxTextLen = 1001 }},
	}
	for _, b := range bad {
		s := session.Defaults()
		b.f(&s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), b.mention) {
			t.Errorf("%+v: error %v, want one about %s", s, err, b.mention)
		}
	}
}

func TestRefusalError(t *testing.T) {
	r := session.Refuse(session.FileRejected, "Too big.")
	if r.Error() != "file_rejected: Too big." {
		t.Fatalf("Error() = %q", r.Error())
	}
	var err error = r
	if err.Error() == "" {
		t.Fatal("empty")
	}
}

func TestStatusUnansweredOverLoweredLimit(t *testing.T) {
	// The channel lowered its limit from 10 to 5 while 7 were unanswered.
	set := session.Defaults()
	st := session.State{Current: &session.Session{Number: 1, StartedAt: at(10, 0, 0), EndsAt: at(34, 0, 0), Used: 7}, Unanswered: 7}
	s := session.StatusAt(st, set, at(11, 0, 0))
	if s.UnansweredLeft != 0 || s.CanSend || s.Refusal.Code != session.AwaitingClient {
		t.Fatalf("status %+v", s)
	}
}

// Case 20: a client message stamped 2 min ahead of the server's clock, agent
// replies at once → allowed; the session ends 24 h after the client's stamp.
func TestCase20_ClientClockAheadAgentRepliesAtOnce(t *testing.T) {
	set := session.Defaults()
	received := at(10, 0, 0)
	stamp := received.Add(2 * time.Minute)
	at0 := session.ClientTime(set, stamp, received)
	if !at0.Equal(stamp) {
		t.Fatalf("ClientTime = %s, want the client's stamp (within the skew)", at0)
	}
	st, opened := session.ClientWrote(session.State{}, set, at0, received)
	if !opened {
		t.Fatal("the first message opened nothing")
	}
	wantSession(t, st.Current, session.Session{Number: 1, StartedAt: stamp, EndsAt: stamp.Add(24 * time.Hour)})
	if !st.Current.OpensAt().Equal(received) {
		t.Fatalf("opens at %s, want the receipt %s", st.Current.OpensAt(), received)
	}
	// At once, before the stamp: allowed.
	next, d := send(t, st, set, received, false, hello)
	if d.Placements[0] != (session.Placement{Session: 1}) {
		t.Fatalf("placement %+v", d.Placements[0])
	}
	wantStatus(t, session.StatusAt(st, set, received), session.Status{
		Open: true, Number: 1, StartedAt: stamp, EndsAt: stamp.Add(24 * time.Hour),
		Remaining: 60, UnansweredLeft: 5, CanSend: true,
	})
	// The end stays start + window.
	send(t, next, set, stamp.Add(24*time.Hour-time.Second), false, hello)
	refused(t, next, set, stamp.Add(24*time.Hour), false, session.WindowClosed, hello)
	// Before the receipt nothing was open (a clock wrong the other way).
	refused(t, st, set, received.Add(-time.Second), false, session.NoSession, hello)
	// A message that used the receipt time (stamp too far ahead) opens at it.
	far, _ := session.ClientWrote(session.State{}, set, session.ClientTime(set, received.Add(time.Hour), received), received)
	wantSession(t, far.Current, session.Session{Number: 1, StartedAt: received, EndsAt: received.Add(24 * time.Hour)})
}

// Case 21: a text of only spaces and line breaks is refused like an empty text.
func TestCase21_BlankTextRefused(t *testing.T) {
	set := session.Defaults()
	st := openedAt10(t, set)
	for _, blank := range []string{
		" ", "   ", "\n", " \n\n ", "\t", "\r\n", // ASCII white space
		"\u00a0", "\u2003", "\u3000", "\u2028\u2029", "\u0085", "\u1680", // Unicode spaces
		"\u200b", "\u200c\u200d", "\u2060", "\ufeff", "\u00ad", " \u200b\n", // invisible ones
	} {
		r := refused(t, st, set, at(10, 5, 0), false, session.InvalidType, text(blank))
		if !strings.Contains(r.Message, "write something") {
			t.Errorf("text %q: message %q does not say what to do", blank, r.Message)
		}
		if !session.Blank(blank) {
			t.Errorf("Blank(%q) = false", blank)
		}
		// A blank part refuses the whole send.
		refused(t, st, set, at(10, 5, 0), false, session.InvalidType, img, text(blank))
	}
	// Anything visible goes, surrounded by blanks or not.
	for _, ok := range []string{".", " ok ", "\u00a0hi\u3000", "😀", "\u200d😀", "ـ"} {
		if session.Blank(ok) {
			t.Errorf("Blank(%q) = true", ok)
		}
		send(t, st, set, at(10, 5, 0), false, text(ok))
	}
}

// Case 9: "unanswered" means the session is over and the client wrote after
// the last business message in it, or wrote and got none at all.
func TestCase09_UnansweredMeansTheClientWroteLast(t *testing.T) {
	set := session.Defaults()
	st := openedAt10(t, set)
	end := at(34, 0, 0)
	if !st.Current.Unanswered(end) {
		t.Fatal("a session with only the client's message is not unanswered at its end")
	}
	st, _ = send(t, st, set, at(10, 5, 0), false, hello)
	if st.Current.Unanswered(end) {
		t.Fatal("an answered session is unanswered")
	}
	st = clientWrites(t, st, set, at(11, 0, 0), false)
	if st.Current.Unanswered(at(33, 59, 59)) || !st.Current.Unanswered(end) {
		t.Fatal("the client wrote last: want unanswered at the end, not before")
	}
	// A rollover session in which the client never wrote: nobody was waiting.
	set.MaxPerSession = 1
	st = openedAt10(t, set)
	st, _ = send(t, st, set, at(10, 5, 0), false, hello)
	st, _ = send(t, st, set, at(10, 6, 0), true, hello)
	if st.Current.Number != 2 || st.Current.Unanswered(at(40, 0, 0)) {
		t.Fatalf("rollover session %d reported unanswered", st.Current.Number)
	}
}

// S7: a session costs the rates frozen on it, not anyone else's.
func TestSessionCostUsesItsOwnRates(t *testing.T) {
	s := session.Session{Number: 1, Used: 2, Rates: session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"}}
	if s.Cost() != 0.05 {
		t.Fatalf("text session costs %v, want 0.05", s.Cost())
	}
	s.Media = true
	if s.Cost() != 0.1 {
		t.Fatalf("media session costs %v, want 0.1", s.Cost())
	}
	s.Used = 0
	if s.Cost() != 0 {
		t.Fatalf("a session with nothing counted costs %v", s.Cost())
	}
}

package session_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"sessiondesk/session"
)

// The property test drives one conversation through random operations, only
// through ClientWrote and Decide (applying Decision.Next when allowed), and checks
// the rules against a ground truth kept independently from what was accepted.

// chooser is where the sequence's choices come from: a seeded math/rand/v2
// generator, or the bytes of a fuzz input.
type chooser interface {
	IntN(n int) int
}

// byteChooser reads choices from fuzz input; exhausted says the input is used up.
type byteChooser struct {
	data      []byte
	exhausted bool
}

func (b *byteChooser) IntN(n int) int {
	if len(b.data) < 2 {
		b.exhausted = true
		return 0
	}
	v := int(b.data[0])<<8 | int(b.data[1])
	b.data = b.data[2:]
	return v % n
}

type propConfig struct {
	name string
	set  session.Settings
}

func propConfigs() []propConfig {
	small := session.Settings{
		Window: 2 * time.Hour, MaxPerSession: 7, MaxUnanswered: 3,
		AfterCap: session.Rollover, MaxTextLen: 20, FutureSkew: 5 * time.Minute,
	}
	smallClose := small
	smallClose.AfterCap = session.Close
	tiny := session.Settings{ // cap below the unanswered limit: several rollovers per send
		Window: 30 * time.Minute, MaxPerSession: 1, MaxUnanswered: 4,
		AfterCap: session.Rollover, MaxTextLen: 5, FutureSkew: time.Minute,
	}
	defClose := session.Defaults()
	defClose.AfterCap = session.Close
	old := session.Defaults() // older contracts: 12 h, 10 unanswered
	old.Window, old.MaxUnanswered = 12*time.Hour, 10
	return []propConfig{
		{"small-rollover", small},
		{"small-close", smallClose},
		{"tiny-rollover", tiny},
		{"defaults-rollover", session.Defaults()},
		{"defaults-close", defClose},
		{"12h-10-rollover", old},
	}
}

// truth is what the test knows from the operations it applied, independently of State.
type truth struct {
	windows map[int][2]time.Time // session number → [start, end)
	// opens is when each session takes replies from: its start, or the receipt
	// of its first message when the client's clock ran ahead (S1).
	opens    map[int]time.Time
	counts   map[int]int // business messages counted per session
	media    map[int]bool
	current  int // the latest session number, 0 before the first
	run      int // business messages since the client last wrote
	lastSent time.Time
}

type sim struct {
	tb    testing.TB
	label string
	set   session.Settings
	c     chooser
	now   time.Time
	st    session.State
	tr    truth
	log   []string
	// calm makes long clock moves rarer, so that sequences under the default
	// settings reach the cap of 60 inside one window.
	calm int
}

func (s *sim) fail(format string, args ...any) {
	s.tb.Helper()
	tail := s.log
	if len(tail) > 25 {
		tail = tail[len(tail)-25:]
	}
	s.tb.Fatalf("%s: %s\nlast operations:\n\t%s", s.label, fmt.Sprintf(format, args...), strings.Join(tail, "\n\t"))
}

func (s *sim) logf(format string, args ...any) {
	s.log = append(s.log, s.now.Format("01-02 15:04:05")+" "+fmt.Sprintf(format, args...))
}

func newSim(tb testing.TB, label string, set session.Settings, c chooser) *sim {
	calm := 0
	if set.MaxPerSession >= 30 {
		calm = 64
	}
	return &sim{
		tb: tb, label: label, set: set, c: c, calm: calm,
		now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC),
		tr:  truth{windows: map[int][2]time.Time{}, opens: map[int]time.Time{}, counts: map[int]int{}, media: map[int]bool{}},
	}
}

func (s *sim) step() {
	switch op := s.c.IntN(10); {
	case op < 3:
		s.moveClock()
	case op < 5:
		s.clientMessage()
	case op < 9:
		s.agentSend()
	default:
		s.checkStatus()
	}
	s.checkState()
}

func (s *sim) moveClock() {
	var d time.Duration
	switch r := s.c.IntN(16 + s.calm); {
	case r < 9 || r >= 16:
		d = time.Duration(s.c.IntN(60)) * time.Second
	case r < 13:
		d = time.Duration(1+s.c.IntN(120)) * time.Minute
	case r == 13:
		d = time.Duration(1+s.c.IntN(30)) * time.Hour
	case r == 14:
		d = s.set.Window + time.Duration(s.c.IntN(3600))*time.Second // more than a window
	case r == 15: // to the edge of the current window: 1 s before, at, 1 s after its end
		if cur := s.st.Current; cur != nil && cur.EndsAt.After(s.now) {
			d = cur.EndsAt.Sub(s.now) + time.Duration(s.c.IntN(3)-1)*time.Second
		}
	}
	if d < 0 {
		d = 0
	}
	s.now = s.now.Add(d)
	s.logf("clock +%s", d)
}

func (s *sim) clientMessage() {
	var sentAt time.Time
	switch s.c.IntN(6) {
	case 0: // missing timestamp
	case 1, 2:
		sentAt = s.now
	case 3: // a little in the past (delivery delay)
		sentAt = s.now.Add(-time.Duration(s.c.IntN(1800)) * time.Second)
	case 4: // a little in the future, sometimes beyond the skew
		sentAt = s.now.Add(time.Duration(s.c.IntN(int(2*s.set.FutureSkew/time.Second)+2)) * time.Second)
	case 5: // far in the future (a wrong clock)
		sentAt = s.now.Add(time.Duration(1+s.c.IntN(48)) * time.Hour)
	}
	at := session.ClientTime(s.set, sentAt, s.now)
	switch {
	case sentAt.IsZero() || sentAt.After(s.now.Add(s.set.FutureSkew)):
		if !at.Equal(s.now) {
			s.fail("ClientTime(%s) = %s, want receipt time %s", sentAt, at, s.now)
		}
	case !at.Equal(sentAt):
		s.fail("ClientTime(%s) = %s, want the provider's time", sentAt, at)
	}

	prev := s.st
	var prevCopy session.Session
	if prev.Current != nil {
		prevCopy = *prev.Current
	}
	next, opened := session.ClientWrote(prev, s.set, at, s.now)
	s.logf("client writes, stamped %s → at %s: opened %v", sentAt.Format("01-02 15:04:05"), at.Format("01-02 15:04:05"), opened)

	if next.Unanswered != 0 {
		s.fail("client message left unanswered at %d", next.Unanswered)
	}
	if prev.Current != nil && *prev.Current != prevCopy {
		s.fail("ClientWrote mutated its input session")
	}
	// Spec: a session opens only when none is open at the client's time (S1, S2);
	// a late message stamped before the current session began belongs to the past.
	wantOpen := true
	if n := s.tr.current; n > 0 {
		w := s.tr.windows[n]
		capped := s.set.AfterCap == session.Close && s.tr.counts[n] >= s.set.MaxPerSession
		wantOpen = !at.Before(w[0]) && (!at.Before(w[1]) || capped)
	}
	if opened != wantOpen {
		s.fail("opened = %v, want %v", opened, wantOpen)
	}
	if opened {
		n := s.tr.current + 1
		if _, seen := s.tr.windows[n]; seen {
			s.fail("session %d opened twice", n)
		}
		if next.Current == nil || next.Current.Number != n || !next.Current.StartedAt.Equal(at) ||
			!next.Current.EndsAt.Equal(at.Add(s.set.Window)) || next.Current.Used != 0 || next.Current.Media {
			s.fail("opened session %+v, want number %d from %s for one window, empty", next.Current, n, at)
		}
		s.tr.windows[n] = [2]time.Time{at, at.Add(s.set.Window)}
		s.tr.opens[n] = at
		if s.now.Before(at) {
			s.tr.opens[n] = s.now
		}
		s.tr.current = n
	} else if prev.Current != nil {
		// A client message never moves an open session's end, nor changes it at
		// all, but for noting that the client wrote last.
		got := *next.Current
		got.ClientLast = prevCopy.ClientLast
		if got != prevCopy || !next.Current.ClientLast {
			s.fail("client message changed the session from %+v to %+v", prevCopy, *next.Current)
		}
	}
	s.tr.run = 0
	s.st = next
}

var kinds = []session.Kind{session.Text, session.Text, session.Image, session.File}

func (s *sim) randomParts() []session.Part {
	parts := make([]session.Part, 1+s.c.IntN(3))
	for i := range parts {
		switch r := s.c.IntN(40); {
		case r == 0:
			parts[i] = session.Part{Kind: "button", Text: "Buy"}
		case r == 1:
			parts[i] = session.Part{Kind: session.Text}
		case r < 4: // around the text limit
			parts[i] = session.Part{Kind: session.Text, Text: strings.Repeat("ж", s.set.MaxTextLen-1+s.c.IntN(3))}
		default:
			k := kinds[s.c.IntN(len(kinds))]
			parts[i] = session.Part{Kind: k}
			if k == session.Text {
				parts[i].Text = "ok"
			}
		}
	}
	return parts
}

// expect is the spec's answer for a send, from the ground truth alone.
func (s *sim) expect(parts []session.Part, confirm bool) session.Code {
	for _, p := range parts {
		switch {
		case !p.Kind.Valid():
			return session.InvalidType
		case p.Kind == session.Text && p.Text == "":
			return session.InvalidType
		case p.Kind == session.Text && len([]rune(p.Text)) > s.set.MaxTextLen:
			return session.TextTooLong
		}
	}
	n := s.tr.current
	if n == 0 {
		return session.NoSession
	}
	w, used := s.tr.windows[n], s.tr.counts[n]
	switch {
	case s.now.Before(s.tr.opens[n]):
		return session.NoSession
	case !s.now.Before(w[1]):
		return session.WindowClosed
	case s.set.AfterCap == session.Close && used >= s.set.MaxPerSession:
		return session.CapReached
	case s.tr.run+len(parts) > s.set.MaxUnanswered:
		return session.AwaitingClient
	case used+len(parts) > s.set.MaxPerSession && s.set.AfterCap == session.Close:
		return session.CapReached
	case used+len(parts) > s.set.MaxPerSession && !confirm:
		return session.NeedsConfirmation
	}
	return ""
}

func (s *sim) agentSend() {
	parts := s.randomParts()
	confirm := s.c.IntN(2) == 0
	want := s.expect(parts, confirm)
	before := s.st
	var beforeCopy session.Session
	if before.Current != nil {
		beforeCopy = *before.Current
	}
	d := session.Decide(s.st, s.set, s.now, parts, confirm)
	var got session.Code
	if d.Err != nil {
		got = d.Err.Code
	}
	kindsSent := make([]string, len(parts))
	for i, p := range parts {
		kindsSent[i] = string(p.Kind)
	}
	s.logf("send %v confirm=%v → %q %v", kindsSent, confirm, got, d.Placements)
	if got != want {
		s.fail("decision %q (%v), want %q", got, d.Err, want)
	}
	if before.Current != nil && *before.Current != beforeCopy {
		s.fail("Decide mutated its input session")
	}
	if !d.Allowed() {
		if d.Err.Message == "" || len(d.Placements) != 0 || d.Next.Current != nil || d.StartsNewSession {
			s.fail("refusal carries a result: %+v", d)
		}
		return
	}
	if len(d.Placements) != len(parts) {
		s.fail("%d placements for %d parts", len(d.Placements), len(parts))
	}
	newSession := false
	for i, p := range d.Placements {
		if p.NewSession {
			// Rollover: the next number, a window from now.
			if p.Session != s.tr.current+1 {
				s.fail("placement %d begins session %d after %d", i, p.Session, s.tr.current)
			}
			if _, seen := s.tr.windows[p.Session]; seen {
				s.fail("session %d begun twice", p.Session)
			}
			if s.set.AfterCap != session.Rollover || !confirm {
				s.fail("a new session began without rollover and confirmation")
			}
			if s.tr.counts[s.tr.current] < s.set.MaxPerSession {
				s.fail("rolled over from session %d with %d of %d used", s.tr.current, s.tr.counts[s.tr.current], s.set.MaxPerSession)
			}
			s.tr.windows[p.Session] = [2]time.Time{s.now, s.now.Add(s.set.Window)}
			s.tr.opens[p.Session] = s.now
			s.tr.current = p.Session
			newSession = true
		} else if p.Session != s.tr.current {
			s.fail("placement %d counts in session %d, the current is %d", i, p.Session, s.tr.current)
		}
		n := p.Session
		s.tr.counts[n]++
		if parts[i].Kind != session.Text {
			s.tr.media[n] = true
		}
		s.tr.run++
		// Invariants.
		if s.tr.counts[n] > s.set.MaxPerSession {
			s.fail("session %d counts %d messages, max %d", n, s.tr.counts[n], s.set.MaxPerSession)
		}
		if s.tr.run > s.set.MaxUnanswered {
			s.fail("%d business messages in a row without a client message, max %d", s.tr.run, s.set.MaxUnanswered)
		}
		if w := s.tr.windows[n]; s.now.Before(s.tr.opens[n]) || !s.now.Before(w[1]) {
			s.fail("accepted at %s in session %d, whose window is [%s, %s)", s.now, n, w[0], w[1])
		}
	}
	if newSession != d.StartsNewSession {
		s.fail("StartsNewSession %v, placements %v", d.StartsNewSession, d.Placements)
	}
	if d.Next.Unanswered != s.tr.run {
		s.fail("Next.Unanswered %d, want %d", d.Next.Unanswered, s.tr.run)
	}
	s.tr.lastSent = s.now
	s.st = d.Next
}

// checkStatus compares the panel's summary with the ground truth.
func (s *sim) checkStatus() {
	st := session.StatusAt(s.st, s.set, s.now)
	one := s.expect([]session.Part{{Kind: session.Text, Text: "x"}}, false)
	if st.CanSend != (one == "") || (st.Refusal == nil) != st.CanSend || (st.Refusal != nil && st.Refusal.Code != one) {
		s.fail("status CanSend %v refusal %v, want code %q", st.CanSend, st.Refusal, one)
	}
	if st.Unanswered != s.tr.run || st.UnansweredLeft != max(s.set.MaxUnanswered-s.tr.run, 0) {
		s.fail("status unanswered %d left %d, truth %d", st.Unanswered, st.UnansweredLeft, s.tr.run)
	}
	if st.Number != s.tr.current || st.Used != s.tr.counts[s.tr.current] || st.Media != s.tr.media[s.tr.current] {
		s.fail("status session %d used %d media %v, truth %d %d %v", st.Number, st.Used, st.Media,
			s.tr.current, s.tr.counts[s.tr.current], s.tr.media[s.tr.current])
	}
	if st.Remaining < 0 || st.Remaining > s.set.MaxPerSession || (!st.Open && st.Remaining != 0) {
		s.fail("status remaining %d open %v", st.Remaining, st.Open)
	}
	if st.Open && st.Remaining != s.set.MaxPerSession-st.Used {
		s.fail("status remaining %d, used %d of %d", st.Remaining, st.Used, s.set.MaxPerSession)
	}
	// The list's summary is the panel's without the decision.
	w := session.WindowAt(s.st, s.set, s.now)
	if w.CanSend || w.Refusal != nil {
		s.fail("WindowAt decided: CanSend %v, refusal %v", w.CanSend, w.Refusal)
	}
	w.CanSend, w.Refusal = st.CanSend, st.Refusal
	if w != st {
		s.fail("WindowAt %+v, StatusAt %+v", w, st)
	}
}

// checkState compares State with the ground truth after every operation.
func (s *sim) checkState() {
	cur := s.st.Current
	if s.tr.current == 0 {
		if cur != nil {
			s.fail("a session %+v without a client message", *cur)
		}
		return
	}
	w := s.tr.windows[s.tr.current]
	if cur == nil || cur.Number != s.tr.current || !cur.StartedAt.Equal(w[0]) || !cur.EndsAt.Equal(w[1]) ||
		cur.Used != s.tr.counts[s.tr.current] || cur.Media != s.tr.media[s.tr.current] {
		s.fail("state %+v, truth session %d window %v used %d media %v", cur, s.tr.current, w,
			s.tr.counts[s.tr.current], s.tr.media[s.tr.current])
	}
	if s.st.Unanswered != s.tr.run {
		s.fail("state unanswered %d, truth %d", s.st.Unanswered, s.tr.run)
	}
}

func TestPropertySessionSequences(t *testing.T) {
	iterations, steps := 150, 250
	if testing.Short() {
		iterations = 30
	}
	for _, cfg := range propConfigs() {
		t.Run(cfg.name, func(t *testing.T) {
			if err := cfg.set.Validate(); err != nil {
				t.Fatal(err)
			}
			sent, rolled := 0, 0
			for i := range iterations {
				seed := uint64(i)*0x9E3779B97F4A7C15 + 1
				r := rand.New(rand.NewPCG(seed, seed^0x5DEECE66D))
				s := newSim(t, fmt.Sprintf("%s seed=%d", cfg.name, seed), cfg.set, r)
				for range steps {
					s.step()
				}
				for _, c := range s.tr.counts {
					sent += c
				}
				rolled += s.rollovers()
			}
			// The generator must reach the interesting states, or the test proves little.
			if sent == 0 {
				t.Fatal("no business message was ever accepted")
			}
			if cfg.set.AfterCap == session.Rollover && cfg.set.MaxPerSession < 10 && rolled == 0 {
				t.Fatal("no rollover happened")
			}
		})
	}
}

// rollovers counts the sessions that began with a business message rather than a client's.
func (s *sim) rollovers() int {
	n := 0
	for num := 2; num <= s.tr.current; num++ {
		if s.tr.counts[num-1] >= s.set.MaxPerSession && s.tr.windows[num][0].Before(s.tr.windows[num-1][1]) {
			n++
		}
	}
	return n
}

func FuzzSessionSequence(f *testing.F) {
	for i := range 12 {
		r := rand.New(rand.NewPCG(uint64(i), 42))
		data := make([]byte, 200+r.IntN(1200))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		f.Add(uint8(i), data)
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), []byte{0, 4, 0, 4, 0, 9, 0, 0, 0, 0})
	cfgs := propConfigs()
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		cfg := cfgs[int(which)%len(cfgs)]
		c := &byteChooser{data: data}
		s := newSim(t, fmt.Sprintf("%s fuzz input of %d bytes", cfg.name, len(data)), cfg.set, c)
		for !c.exhausted {
			s.step()
		}
	})
}

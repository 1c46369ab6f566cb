// Package session holds the Viber session rules (../shared/spec/session-rules.md).
//
// It is pure: every function takes the conversation's state, the channel's
// settings and a time, and returns a decision. It reads no clock, stores
// nothing and imports nothing of the project, so that the store can apply a
// decision inside the same write transaction that read the state (S9) and the
// rules can be tested case by case and property by property.
package session

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// AfterCap says what happens once a session has counted its maximum of business messages.
type AfterCap string

const (
	// Rollover: the next business message begins a new billed session (the seed's rule).
	Rollover AfterCap = "rollover"
	// Close: the session ends at the cap and waits for the client to write again.
	Close AfterCap = "close"
)

// Kind is the type of one business message. Viber sessions carry only these three.
type Kind string

// The kinds a session message may have (S5).
const (
	Text  Kind = "text"
	Image Kind = "image"
	File  Kind = "file"
)

// Valid reports whether k is one of the kinds a session message may have.
func (k Kind) Valid() bool { return k == Text || k == Image || k == File }

// Settings are the per-channel rules. Defaults returns the seed's values.
type Settings struct {
	Window        time.Duration // how long a session lasts from its start (S2)
	MaxPerSession int           // business messages counted in one session (S3)
	MaxUnanswered int           // business messages in a row without a client message (S4)
	AfterCap      AfterCap      // what the message after the cap does (S3)
	MaxTextLen    int           // in Unicode code points
	// FutureSkew is how far in the future a client's timestamp may be before the
	// time of receipt is used instead (S1).
	FutureSkew time.Duration
}

// Defaults returns the rules of the seed: 24 h, 60 messages, 5 unanswered, rollover, 1000 characters.
func Defaults() Settings {
	return Settings{
		Window:        24 * time.Hour,
		MaxPerSession: 60,
		MaxUnanswered: 5,
		AfterCap:      Rollover,
		MaxTextLen:    1000,
		FutureSkew:    5 * time.Minute,
	}
}

// The largest values Viber allows for the settings (spec "Settings"): a
// channel may be stricter, never looser, or the provider refuses what the
// inbox accepted.
const (
	MaxWindow        = 24 * time.Hour // a session lasts at most a day
	MaxPerSessionCap = 60             // business messages counted in one session
	MaxUnansweredCap = 10             // the loosest contract seen (older tyntec table)
	MaxTextLenCap    = 1000           // code points in one text message
)

// Validate reports settings that could not be enforced or that Viber does not
// allow; each message names the allowed range.
func (s Settings) Validate() error {
	switch {
	case s.Window <= 0 || s.Window > MaxWindow:
		return fmt.Errorf("session window must be more than 0 and at most %dh, got %s", MaxWindow/time.Hour, s.Window)
	case s.MaxPerSession < 1 || s.MaxPerSession > MaxPerSessionCap:
		return fmt.Errorf("max messages per session must be 1 to %d, got %d", MaxPerSessionCap, s.MaxPerSession)
	case s.MaxUnanswered < 1 || s.MaxUnanswered > MaxUnansweredCap:
		return fmt.Errorf("max unanswered messages must be 1 to %d, got %d", MaxUnansweredCap, s.MaxUnanswered)
	case s.AfterCap != Rollover && s.AfterCap != Close:
		return fmt.Errorf("after-cap must be %q or %q, got %q", Rollover, Close, s.AfterCap)
	case s.MaxTextLen < 1 || s.MaxTextLen > MaxTextLenCap:
		return fmt.Errorf("max text length must be 1 to %d characters, got %d", MaxTextLenCap, s.MaxTextLen)
	case s.FutureSkew < 0:
		return fmt.Errorf("future skew must not be negative, got %s", s.FutureSkew)
	}
	return nil
}

// Session is one billed window of a conversation.
type Session struct {
	Number    int       // 1 for the conversation's first session, then increasing
	StartedAt time.Time // inclusive
	EndsAt    time.Time // exclusive (S2)
	// ReceivedAt is when the inbox received the client message that opened
	// the session; zero for a rollover. When the client's clock runs ahead it
	// is before StartedAt, and replies are allowed from it (S1).
	ReceivedAt time.Time
	Used       int  // business messages counted in it (S6)
	Media      bool // an image or file was counted in it (S7)
	// Rates are what the session is billed at: frozen when its first business
	// message counted, zero before (S7). Later rate changes do not touch it.
	Rates Rates
	// Country is the client's country (ISO 3166) when the session was first
	// billed, "" before or when unknown; BilledAt is that moment.
	Country  string
	BilledAt time.Time
	// Reported is what the provider reported its messages cost so far.
	Reported Reported
	// ClientLast reports that the client wrote after the last business message
	// counted in it, or wrote and nobody answered at all (case 9).
	ClientLast bool
}

// OpensAt is the moment business messages may start to count in the session:
// its start, or the receipt of its first message when the client's clock ran
// ahead (S1). Its end stays StartedAt + window.
func (s Session) OpensAt() time.Time {
	if !s.ReceivedAt.IsZero() && s.ReceivedAt.Before(s.StartedAt) {
		return s.ReceivedAt
	}
	return s.StartedAt
}

// State is what the rules need to know about one conversation.
type State struct {
	// Current is the conversation's latest session, open or not; nil before the
	// client's first message.
	Current *Session
	// Unanswered counts the business messages since the client's last message. It
	// carries across a rollover (S4).
	Unanswered int
}

// IsOpen reports whether business messages may count in the current session at now:
// inside its window, and, with AfterCap Close, not yet at the cap.
func (st State) IsOpen(set Settings, now time.Time) bool {
	c := st.Current
	if c == nil || !now.Before(c.EndsAt) || now.Before(c.OpensAt()) {
		return false
	}
	return set.AfterCap != Close || c.Used < set.MaxPerSession
}

// ClientTime returns the time a client message counts from (S1): the provider's
// timestamp, unless it is missing (zero) or more than FutureSkew after receipt.
func ClientTime(set Settings, sentAt, receivedAt time.Time) time.Time {
	if sentAt.IsZero() || sentAt.After(receivedAt.Add(set.FutureSkew)) {
		return receivedAt
	}
	return sentAt
}

// ClientWrote applies a client message sent at `at` (see ClientTime) and
// received at receivedAt. It resets the unanswered count (the store then
// keeps the business messages accepted after `at`, which for a message
// delivered late are still unanswered: its messages_count_insert trigger),
// and opens a new
// session when none is open at that moment (S1, S2); a message inside an open
// session never moves its end (case 6). opened reports whether a new session began.
func ClientWrote(st State, set Settings, at, receivedAt time.Time) (next State, opened bool) {
	next = State{Current: st.Current, Unanswered: 0}
	if st.Current != nil {
		// A message stamped before the current session began (a late delivery) belongs
		// to the past: it resets the count but opens nothing.
		if at.Before(st.Current.StartedAt) || st.IsOpen(set, at) {
			cur := *st.Current
			cur.ClientLast = true
			next.Current = &cur
			return next, false
		}
	}
	number := 1
	if st.Current != nil {
		number = st.Current.Number + 1
	}
	next.Current = &Session{Number: number, StartedAt: at, EndsAt: at.Add(set.Window), ReceivedAt: receivedAt, ClientLast: true}
	return next, true
}

// Part is one business message an agent wants to send.
type Part struct {
	Kind Kind
	Text string // the text of a Text part; ignored for the others
}

// Placement says in which session one accepted part counts.
type Placement struct {
	Session    int  // the session number it counts in
	NewSession bool // it begins that session (a rollover, S3)
}

// Decision is the answer to "may these parts go out now?".
type Decision struct {
	// Err is nil when the parts may go; otherwise a *Refusal with a stable code.
	Err *Refusal
	// Placements has one entry per part, in order, when Err is nil.
	Placements []Placement
	// Next is the state once the parts are counted, when Err is nil.
	Next State
	// StartsNewSession reports that the send begins a new billed session.
	StartsNewSession bool
}

// Allowed reports whether the parts may go.
func (d Decision) Allowed() bool { return d.Err == nil }

// Decide says whether parts may go out at now as one send, and how they count.
// confirmNewSession is the agent's confirmation that a rollover may begin a new
// billed session (S3); without it such a send is refused with NeedsConfirmation.
// Checks come in the order an agent can act on: what is composed, then whether a
// session is open, then the unanswered limit, then the cap.
func Decide(st State, set Settings, now time.Time, parts []Part, confirmNewSession bool) Decision {
	if r := checkParts(set, parts); r != nil {
		return Decision{Err: r}
	}
	if r := checkOpen(st, set, now); r != nil {
		return Decision{Err: r}
	}
	n := len(parts)
	if left := set.MaxUnanswered - st.Unanswered; n > left {
		return Decision{Err: awaitingClient(set, st.Unanswered, n)}
	}

	cur := *st.Current
	left := set.MaxPerSession - cur.Used
	if n > left && set.AfterCap == Close {
		return Decision{Err: refusef(CapReached,
			"This would take %d messages but only %d are left in this session; it closes at %d and the client must write to open a new one.",
			n, left, set.MaxPerSession)}
	}
	if n > left && !confirmNewSession {
		return Decision{Err: refusef(NeedsConfirmation,
			"Session %d has used its %d messages: sending this begins session %d, billed again. Confirm to send.",
			cur.Number, set.MaxPerSession, cur.Number+1)}
	}

	d := Decision{Placements: make([]Placement, 0, n)}
	for _, p := range parts {
		if cur.Used >= set.MaxPerSession {
			cur = Session{Number: cur.Number + 1, StartedAt: now, EndsAt: now.Add(set.Window)}
			d.StartsNewSession = true
			d.Placements = append(d.Placements, Placement{Session: cur.Number, NewSession: true})
		} else {
			d.Placements = append(d.Placements, Placement{Session: cur.Number})
		}
		cur.Used++
		cur.ClientLast = false
		if p.Kind != Text {
			cur.Media = true
		}
	}
	d.Next = State{Current: &cur, Unanswered: st.Unanswered + n}
	return d
}

func checkParts(set Settings, parts []Part) *Refusal {
	if len(parts) == 0 {
		return refusef(InvalidType, "Nothing to send: write a text or attach an image or a file.")
	}
	for _, p := range parts {
		if !p.Kind.Valid() {
			return refusef(InvalidType,
				"Viber session messages can only be text, image or file; %q is not supported (no buttons or rich layouts).", string(p.Kind))
		}
		if p.Kind != Text {
			continue
		}
		switch n := utf8.RuneCountInString(p.Text); {
		case n == 0:
			return refusef(InvalidType, "The text is empty: write something first.")
		case Blank(p.Text):
			return refusef(InvalidType, "The text is only spaces or line breaks: write something first.")
		case n > set.MaxTextLen:
			return refusef(TextTooLong, "The text has %d characters; Viber allows at most %d. Shorten it by %d.",
				n, set.MaxTextLen, n-set.MaxTextLen)
		}
	}
	return nil
}

// checkOpen refuses when no session can take a business message at now.
func checkOpen(st State, set Settings, now time.Time) *Refusal {
	c := st.Current
	switch {
	case c == nil:
		return refusef(NoSession, "No session is open: sessions are opened by the client. You can reply once the client writes.")
	case now.Before(c.OpensAt()):
		return refusef(NoSession, "Session %d has not started yet; check the server clock.", c.Number)
	case !now.Before(c.EndsAt):
		return refusef(WindowClosed, "Session %d closed at %s: the %s window is over. The client must write to open a new session.",
			c.Number, c.EndsAt.UTC().Format("2 Jan 15:04 MST"), windowWords(set.Window))
	case set.AfterCap == Close && c.Used >= set.MaxPerSession:
		return refusef(CapReached, "Session %d has used all %d messages and is closed: the client must write to open a new one.",
			c.Number, set.MaxPerSession)
	}
	return nil
}

// windowWords names a window length for a sentence: "24-hour", "90-minute", or the
// duration itself when it is not a whole number of minutes.
func windowWords(w time.Duration) string {
	switch {
	case w > 0 && w%time.Hour == 0:
		return fmt.Sprintf("%d-hour", w/time.Hour)
	case w > 0 && w%time.Minute == 0:
		return fmt.Sprintf("%d-minute", w/time.Minute)
	}
	return w.String()
}

func awaitingClient(set Settings, unanswered, n int) *Refusal {
	left := set.MaxUnanswered - unanswered
	if left <= 0 {
		return refusef(AwaitingClient, "Waiting for the client's reply: %d messages in a row went unanswered, and Viber allows no more until the client writes.",
			unanswered)
	}
	return refusef(AwaitingClient, "This send needs %d messages but only %d more may go before the client must reply. Send fewer parts.",
		n, left)
}

// Blank reports a text with nothing to read: only white space (Unicode's,
// such as no-break and ideographic spaces) and invisible zero-width characters.
// Viber shows such a message as an empty bubble, so it is refused like an
// empty text (case 21).
func Blank(s string) bool {
	return strings.TrimFunc(s, invisible) == ""
}

// invisible reports white space and the format characters that take no room.
func invisible(r rune) bool {
	switch r {
	case '\u200B', // zero width space
		'\u200C', // zero width non-joiner
		'\u200D', // zero width joiner
		'\u2060', // word joiner
		'\uFEFF', // zero width no-break space (BOM)
		'\u180E', // Mongolian vowel separator, once a space
		'\u00AD': // soft hyphen: shown only at a line break
		return true
	}
	return unicode.IsSpace(r)
}

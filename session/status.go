package session

import "time"

// Status is what the session panel and the API show about a conversation at a moment.
type Status struct {
	Open           bool      // a business message could count in the current session now
	Number         int       // the current session's number; 0 before the first client message
	StartedAt      time.Time // zero when Number is 0
	EndsAt         time.Time // zero when Number is 0
	Used           int       // business messages counted in the current session
	Remaining      int       // messages left in the current session (0 when not open)
	Unanswered     int       // business messages since the client last wrote
	UnansweredLeft int       // how many more may go before the client must reply
	Media          bool      // the current session is billed at the media rate
	// CanSend reports that one text message could go now without confirmation;
	// otherwise Refusal says why not (NeedsConfirmation when it would roll over).
	CanSend bool
	Refusal *Refusal
}

// StatusAt summarises st at now for the session panel.
func StatusAt(st State, set Settings, now time.Time) Status {
	s := Status{
		Unanswered:     st.Unanswered,
		UnansweredLeft: max(set.MaxUnanswered-st.Unanswered, 0),
	}
	if c := st.Current; c != nil {
		s.Number, s.StartedAt, s.EndsAt, s.Used, s.Media = c.Number, c.StartedAt, c.EndsAt, c.Used, c.Media
	}
	s.Open = st.IsOpen(set, now)
	if s.Open {
		s.Remaining = max(set.MaxPerSession-s.Used, 0)
	}
	d := Decide(st, set, now, []Part{{Kind: Text, Text: "x"}}, false)
	s.CanSend, s.Refusal = d.Allowed(), d.Err
	return s
}

// Rates are what a session costs, by the kinds sent in it (S7).
type Rates struct {
	Text     float64 // a session in which only text was sent
	Media    float64 // a session in which any image or file was sent
	Currency string
}

// Cost returns what a session costs: nothing until its first business message,
// then the text rate, or the media rate once any image or file was sent (S7).
func (r Rates) Cost(s Session) float64 {
	switch {
	case s.Used == 0:
		return 0
	case s.Media:
		return r.Media
	default:
		return r.Text
	}
}

// Cost returns what the session costs at the rates frozen on it when it was
// first billed (S7), whatever the rates are today.
func (s Session) Cost() float64 { return s.Rates.Cost(s) }

// Unanswered reports a session that ended with the client's message unanswered
// (case 9): it is over (now at or after its end) and the client wrote after the
// last business message counted in it, or wrote and got no business message at
// all. A session opened by a rollover in which the client never wrote is not
// unanswered: nobody was waiting.
func (s Session) Unanswered(now time.Time) bool {
	return s.ClientLast && !now.Before(s.EndsAt)
}

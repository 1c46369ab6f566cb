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
	s := WindowAt(st, set, now)
	d := Decide(st, set, now, []Part{{Kind: Text, Text: "x"}}, false)
	s.CanSend, s.Refusal = d.Allowed(), d.Err
	return s
}

// WindowAt is StatusAt without CanSend and Refusal: where the session stands,
// for the list's rows, which do not say whether a reply could go (deciding
// that costs a refusal's words for every closed row).
func WindowAt(st State, set Settings, now time.Time) Status {
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
	return s
}

// Rates are what a session costs, by the kinds sent in it (S7).
type Rates struct {
	Text     float64 // a session in which only text was sent
	Media    float64 // a session in which any image or file was sent
	Currency string
	// PerMessage, when above 0, bills every business message counted in the
	// session at this rate instead of Text or Media: how some providers bill
	// clients in another country than the sender's (see RateCard).
	PerMessage float64
}

// Cost returns what a session costs: nothing until its first business message,
// then the text rate, or the media rate once any image or file was sent (S7);
// or, with a per-message rate, that rate for each counted business message.
func (r Rates) Cost(s Session) float64 {
	switch {
	case s.Used == 0:
		return 0
	case r.PerMessage > 0:
		return float64(s.Used) * r.PerMessage
	case s.Media:
		return r.Media
	default:
		return r.Text
	}
}

// CountryRates are the session rates for clients of one country, in the
// currency of the RateCard that holds them.
type CountryRates struct {
	Text  float64 `json:"text"`
	Media float64 `json:"media"`
}

// RateCard is every rate in force: the default session rates, rates per
// client country, and the per-message rate for international clients.
type RateCard struct {
	Default   Rates                   // PerMessage is ignored here
	Countries map[string]CountryRates // by ISO 3166 code, upper case
	// SenderCountry is the business sender's country (ISO 3166). A client
	// whose known country differs is international; "" makes nobody so.
	SenderCountry string
	// International, when above 0, is the per-message rate of international
	// clients; 0 bills them per session like everyone else.
	International float64
}

// For returns the rates a session with a client of country (ISO 3166, ""
// when unknown) is billed at: the country's own rates, else the default;
// per message when the client is international and a per-message rate is set.
func (c RateCard) For(country string) Rates {
	r := Rates{Text: c.Default.Text, Media: c.Default.Media, Currency: c.Default.Currency}
	if cr, ok := c.Countries[country]; ok && country != "" {
		r.Text, r.Media = cr.Text, cr.Media
	}
	if c.International > 0 && c.SenderCountry != "" && country != "" && country != c.SenderCountry {
		r.PerMessage = c.International
	}
	return r
}

// Reported is what the provider reported a session's business messages cost.
type Reported struct {
	Amount float64 // the sum of the prices in the session's currency
	Priced int     // business messages with a reported price
	// Foreign counts prices in another currency than the session's: kept on
	// their messages, never added to Amount.
	Foreign int
}

// RoundingTolerance is how far apart an estimate and a reported cost may be
// and still be the same figure: half a cent, the rounding of a price shown
// with two decimals.
const RoundingTolerance = 0.005

// CostDifference returns the reported cost minus the estimate, and whether
// they differ by more than a rounding. Until the provider priced any message
// there is nothing to compare.
func (s Session) CostDifference() (float64, bool) {
	if s.Reported.Priced == 0 {
		return 0, false
	}
	d := s.Reported.Amount - s.Cost()
	return d, d > RoundingTolerance || d < -RoundingTolerance
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

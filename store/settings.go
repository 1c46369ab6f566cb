package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"sessiondesk/session"
)

// CannedReply is a prepared answer agents can insert in the composer.
type CannedReply struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// AdminSettings are the settings admins change at run time: the session rules,
// the rates and the canned replies. The flags give the defaults; what an admin
// saved overrides them, from the next send on and after a restart.
type AdminSettings struct {
	// Rules are the session limits. FutureSkew is not a runtime setting: it
	// always stays what the store was opened with.
	Rules         session.Settings
	Rates         session.Rates
	CannedReplies []CannedReply
	// CountryRates override Rates for clients of a country (ISO 3166 code,
	// upper case), in the same currency. SenderCountry and InternationalRate
	// make clients of other countries billed per message (see
	// session.RateCard). All frozen on a session when it is first billed.
	CountryRates      map[string]session.CountryRates
	SenderCountry     string
	InternationalRate float64
	// MonthlyBudget is what the team means to spend on sessions in a calendar
	// month (UTC), in the rates' currency; 0 is no budget.
	MonthlyBudget float64
}

// RateCard returns every rate of a, for pricing a session when it is billed.
func (a AdminSettings) RateCard() session.RateCard {
	return session.RateCard{Default: a.Rates, Countries: a.CountryRates, SenderCountry: a.SenderCountry,
		International: a.InternationalRate}
}

// Limits of what SaveSettings accepts.
const (
	MaxCannedReplies  = 100
	MaxCannedTitleLen = 100  // code points
	MaxCannedReplyLen = 1000 // code points
	maxRate           = 1e9
)

// The keys of the settings table.
const (
	settingKeySession = "session"
	settingKeyRates   = "rates"
	settingKeyCanned  = "canned_replies"
	settingKeyBudget  = "budget"
)

// MaxCountryRates bounds the countries with their own rates.
const MaxCountryRates = 300

// The stored JSON of each key.
type (
	storedSession struct {
		Window        string `json:"window"` // a Go duration, e.g. "24h0m0s"
		MaxPerSession int    `json:"max_per_session"`
		MaxUnanswered int    `json:"max_unanswered"`
		AfterCap      string `json:"after_cap"`
		TextMax       int    `json:"text_max"`
	}
	storedRates struct {
		Text     float64 `json:"text"`
		Media    float64 `json:"media"`
		Currency string  `json:"currency"`
		// Added by issue 12; absent in rows saved before.
		Countries     map[string]session.CountryRates `json:"countries,omitempty"`
		SenderCountry string                          `json:"sender_country,omitempty"`
		International float64                         `json:"international,omitempty"`
	}
	storedBudget struct {
		Monthly float64 `json:"monthly"`
	}
)

// Rules returns the session settings this store enforces now.
func (s *Store) Rules() session.Settings { return s.settings.Load().Rules }

// Rates returns the session rates now in force.
func (s *Store) Rates() session.Rates { return s.settings.Load().Rates }

// Settings returns the runtime settings now in force.
func (s *Store) Settings() AdminSettings { return s.settings.Load().clone() }

// CannedReplies returns the canned replies, in the order the admin gave them.
func (s *Store) CannedReplies(ctx context.Context) ([]CannedReply, error) {
	return slices.Clone(s.settings.Load().CannedReplies), ctx.Err()
}

// RateCard returns every rate now in force.
func (s *Store) RateCard() session.RateCard { return s.settings.Load().RateCard() }

func (a AdminSettings) clone() AdminSettings {
	a.CannedReplies = slices.Clone(a.CannedReplies)
	a.CountryRates = maps.Clone(a.CountryRates)
	return a
}

// defaults are the settings the store was opened with (the flags).
func (s *Store) defaults() AdminSettings {
	return AdminSettings{Rules: s.opts.Rules, Rates: s.opts.Rates, CountryRates: maps.Clone(s.opts.CountryRates),
		SenderCountry: s.opts.SenderCountry, InternationalRate: s.opts.InternationalRate, MonthlyBudget: s.opts.MonthlyBudget}
}

// applyStoredSettings makes what admins saved override the flags; Open calls it.
func (s *Store) applyStoredSettings(ctx context.Context) error {
	cur, _, err := loadSettings(ctx, s.write, s.defaults())
	if err != nil {
		return err
	}
	s.settings.Store(&cur)
	return nil
}

// LoadSettings returns the stored settings over the flags' defaults, and
// whether anything is stored at all. The store applies them when it opens;
// this is for telling the operator.
func (s *Store) LoadSettings(ctx context.Context) (AdminSettings, bool, error) {
	return loadSettings(ctx, s.read, s.defaults())
}

func loadSettings(ctx context.Context, q queryer, out AdminSettings) (AdminSettings, bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT key, value FROM settings`)
	if err != nil {
		return AdminSettings{}, false, fmt.Errorf("load settings: %w", err)
	}
	defer rows.Close()
	stored := false
	for rows.Next() {
		var key, value string
		if err := rows.Scan(&key, &value); err != nil {
			return AdminSettings{}, false, fmt.Errorf("load settings: %w", err)
		}
		if err := decodeSetting(&out, key, value); err != nil {
			return AdminSettings{}, false, fmt.Errorf(
				"stored setting %q is unreadable (%w); delete its row in the settings table to fall back to the flags", key, err)
		}
		stored = true
	}
	if err := rows.Err(); err != nil {
		return AdminSettings{}, false, fmt.Errorf("load settings: %w", err)
	}
	if !stored {
		return out, false, nil
	}
	if err := validateSettings(&out); err != nil {
		return AdminSettings{}, false, fmt.Errorf(
			"stored settings are invalid (%w); fix them, or delete the rows of the settings table to fall back to the flags", err)
	}
	return out, true, nil
}

func decodeSetting(out *AdminSettings, key, value string) error {
	switch key {
	case settingKeySession:
		var v storedSession
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			return err
		}
		w, err := time.ParseDuration(v.Window)
		if err != nil {
			return err
		}
		out.Rules.Window, out.Rules.MaxPerSession, out.Rules.MaxUnanswered = w, v.MaxPerSession, v.MaxUnanswered
		out.Rules.AfterCap, out.Rules.MaxTextLen = session.AfterCap(v.AfterCap), v.TextMax
	case settingKeyRates:
		var v storedRates
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			return err
		}
		out.Rates = session.Rates{Text: v.Text, Media: v.Media, Currency: v.Currency}
		out.CountryRates, out.SenderCountry, out.InternationalRate = v.Countries, v.SenderCountry, v.International
	case settingKeyBudget:
		var v storedBudget
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			return err
		}
		out.MonthlyBudget = v.Monthly
	case settingKeyCanned:
		var v []CannedReply
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			return err
		}
		out.CannedReplies = v
	default:
		// A key from a newer version: ignored.
	}
	return nil
}

// validateSettings normalises a (trims, upper-cases the currency) and reports
// the first problem as an *InvalidError whose message is safe to show.
func validateSettings(a *AdminSettings) error {
	if err := a.Rules.Validate(); err != nil {
		return &InvalidError{Field: "rules", Message: capitalise(err.Error()) + "."}
	}
	for _, r := range []struct {
		field string
		v     float64
	}{{"rate_text", a.Rates.Text}, {"rate_media", a.Rates.Media}} {
		if math.IsNaN(r.v) || r.v < 0 || r.v > maxRate {
			return &InvalidError{Field: r.field, Message: "Rates must be numbers from 0 up."}
		}
	}
	for _, r := range []struct {
		field string
		v     float64
	}{{"rate_international", a.InternationalRate}, {"monthly_budget", a.MonthlyBudget}} {
		if math.IsNaN(r.v) || r.v < 0 || r.v > maxRate {
			return &InvalidError{Field: r.field, Message: "Rates and the budget must be numbers from 0 up."}
		}
	}
	a.SenderCountry = strings.ToUpper(strings.TrimSpace(a.SenderCountry))
	if a.SenderCountry != "" && !isCountry(a.SenderCountry) {
		return &InvalidError{Field: "sender_country", Message: "The sender country must be a two-letter ISO code, such as DE."}
	}
	if len(a.CountryRates) > MaxCountryRates {
		return &InvalidError{Field: "country_rates",
			Message: fmt.Sprintf("At most %d countries with their own rates; there are %d.", MaxCountryRates, len(a.CountryRates))}
	}
	if len(a.CountryRates) == 0 {
		a.CountryRates = nil
	} else {
		countries := make(map[string]session.CountryRates, len(a.CountryRates))
		for code, r := range a.CountryRates {
			code = strings.ToUpper(strings.TrimSpace(code))
			if !isCountry(code) {
				return &InvalidError{Field: "country_rates", Message: fmt.Sprintf("%q is not a two-letter ISO country code.", code)}
			}
			for _, v := range []float64{r.Text, r.Media} {
				if math.IsNaN(v) || v < 0 || v > maxRate {
					return &InvalidError{Field: "country_rates", Message: fmt.Sprintf("The rates of %s must be numbers from 0 up.", code)}
				}
			}
			countries[code] = r
		}
		a.CountryRates = countries
	}
	a.Rates.Currency = strings.ToUpper(strings.TrimSpace(a.Rates.Currency))
	if !isCurrency(a.Rates.Currency) {
		return &InvalidError{Field: "currency", Message: "The currency must be three letters, such as EUR or USD."}
	}
	if len(a.CannedReplies) > MaxCannedReplies {
		return &InvalidError{Field: "canned_replies",
			Message: fmt.Sprintf("At most %d canned replies; there are %d.", MaxCannedReplies, len(a.CannedReplies))}
	}
	replies := make([]CannedReply, 0, len(a.CannedReplies))
	for i, c := range a.CannedReplies {
		c.Title = strings.TrimSpace(c.Title)
		c.Text = strings.TrimRight(strings.ReplaceAll(c.Text, "\r\n", "\n"), " \t\r\n")
		n := utf8.RuneCountInString(c.Title)
		if n == 0 || n > MaxCannedTitleLen || !utf8.ValidString(c.Title) {
			return &InvalidError{Field: "canned_replies",
				Message: fmt.Sprintf("Canned reply %d needs a title of 1 to %d characters.", i+1, MaxCannedTitleLen)}
		}
		n = utf8.RuneCountInString(c.Text)
		if strings.TrimSpace(c.Text) == "" || n > MaxCannedReplyLen || !utf8.ValidString(c.Text) {
			return &InvalidError{Field: "canned_replies",
				Message: fmt.Sprintf("Canned reply %d (%q) needs a text of 1 to %d characters; it has %d.",
					i+1, c.Title, MaxCannedReplyLen, n)}
		}
		replies = append(replies, c)
	}
	a.CannedReplies = replies
	return nil
}

func isCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func isCountry(c string) bool {
	return len(c) == 2 && isUpperLetters(c)
}

func isUpperLetters(c string) bool {
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return strings.ToUpper(string(r)) + s[n:]
}

// SaveSettings validates next and makes it the settings in force, at once:
// the next send is checked against the new rules. The change and its audit row
// (every changed field, old → new) are one transaction; saving what is already
// in force changes and audits nothing. agentID 0 is the system. FutureSkew is
// kept as it is. A refusal is an *InvalidError.
func (s *Store) SaveSettings(ctx context.Context, agentID int64, next AdminSettings) error {
	next = next.clone()
	next.Rules.FutureSkew = s.opts.Rules.FutureSkew
	if err := validateSettings(&next); err != nil {
		return err
	}
	// Checked on save only: replies saved before placeholders existed still load.
	if err := checkPlaceholders(next.CannedReplies); err != nil {
		return err
	}
	var swapped *AdminSettings
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		old := s.settings.Load()
		changes := diffSettings(*old, next)
		if len(changes) == 0 {
			return false, nil
		}
		now := s.opts.Now()
		values := map[string]any{
			settingKeySession: storedSession{Window: next.Rules.Window.String(), MaxPerSession: next.Rules.MaxPerSession,
				MaxUnanswered: next.Rules.MaxUnanswered, AfterCap: string(next.Rules.AfterCap), TextMax: next.Rules.MaxTextLen},
			settingKeyRates: storedRates{Text: next.Rates.Text, Media: next.Rates.Media, Currency: next.Rates.Currency,
				Countries: next.CountryRates, SenderCountry: next.SenderCountry, International: next.InternationalRate},
			settingKeyCanned: next.CannedReplies,
			settingKeyBudget: storedBudget{Monthly: next.MonthlyBudget},
		}
		for _, key := range changedKeys(changes) {
			b, err := json.Marshal(values[key])
			if err != nil {
				return false, fmt.Errorf("save setting %q: %w", key, err)
			}
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO settings (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?)
				ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,
				                                updated_by = excluded.updated_by`,
				key, string(b), ms(now), nullID(agentID)); err != nil {
				return false, fmt.Errorf("save setting %q: %w", key, err)
			}
		}
		if err := appendAudit(ctx, tx, now, agentID, AuditSettings, 0, 0, settingsDetail{Changes: changes}); err != nil {
			return false, err
		}
		// Swapped while this transaction still holds the one write connection,
		// so the next write transaction already sees the new rules; put back
		// below if the commit fails.
		swapped = &next
		s.settings.Store(swapped)
		return false, nil
	})
	if err != nil {
		if swapped != nil {
			s.settings.CompareAndSwap(swapped, s.committedSettings(ctx))
		}
		return fmt.Errorf("save settings: %w", err)
	}
	return nil
}

// committedSettings re-reads what is stored after a failed save; when even
// that fails, the flags' defaults are the safe answer.
func (s *Store) committedSettings(ctx context.Context) *AdminSettings {
	cur, _, err := loadSettings(ctx, s.write, s.defaults())
	if err != nil {
		d := s.defaults()
		return &d
	}
	return &cur
}

// diffSettings lists the fields that differ between old and next.
func diffSettings(old, next AdminSettings) []settingChange {
	var out []settingChange
	add := func(field string, o, n any) { out = append(out, settingChange{Field: field, Old: o, New: n}) }
	o, n := old.Rules, next.Rules
	if o.Window != n.Window {
		add("window", shortDuration(o.Window), shortDuration(n.Window))
	}
	if o.MaxPerSession != n.MaxPerSession {
		add("max_per_session", o.MaxPerSession, n.MaxPerSession)
	}
	if o.MaxUnanswered != n.MaxUnanswered {
		add("max_unanswered", o.MaxUnanswered, n.MaxUnanswered)
	}
	if o.AfterCap != n.AfterCap {
		add("after_cap", string(o.AfterCap), string(n.AfterCap))
	}
	if o.MaxTextLen != n.MaxTextLen {
		add("text_max", o.MaxTextLen, n.MaxTextLen)
	}
	if old.Rates.Text != next.Rates.Text {
		add("rate_text", old.Rates.Text, next.Rates.Text)
	}
	if old.Rates.Media != next.Rates.Media {
		add("rate_media", old.Rates.Media, next.Rates.Media)
	}
	if old.Rates.Currency != next.Rates.Currency {
		add("currency", old.Rates.Currency, next.Rates.Currency)
	}
	if !maps.Equal(old.CountryRates, next.CountryRates) {
		add("country_rates", nonNilRates(old.CountryRates), nonNilRates(next.CountryRates))
	}
	if old.SenderCountry != next.SenderCountry {
		add("sender_country", old.SenderCountry, next.SenderCountry)
	}
	if old.InternationalRate != next.InternationalRate {
		add("rate_international", old.InternationalRate, next.InternationalRate)
	}
	if old.MonthlyBudget != next.MonthlyBudget {
		add("monthly_budget", old.MonthlyBudget, next.MonthlyBudget)
	}
	if !slices.Equal(old.CannedReplies, next.CannedReplies) {
		add("canned_replies", nonNil(old.CannedReplies), nonNil(next.CannedReplies))
	}
	return out
}

func nonNilRates(c map[string]session.CountryRates) map[string]session.CountryRates {
	if c == nil {
		return map[string]session.CountryRates{}
	}
	return c
}

func nonNil(c []CannedReply) []CannedReply {
	if c == nil {
		return []CannedReply{}
	}
	return c
}

// changedKeys maps changed fields to the settings rows that hold them.
func changedKeys(changes []settingChange) []string {
	var keys []string
	for _, c := range changes {
		key := settingKeySession
		switch c.Field {
		case "rate_text", "rate_media", "currency", "country_rates", "sender_country", "rate_international":
			key = settingKeyRates
		case "monthly_budget":
			key = settingKeyBudget
		case "canned_replies":
			key = settingKeyCanned
		}
		if !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
	}
	return keys
}

// shortDuration writes 24h rather than 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

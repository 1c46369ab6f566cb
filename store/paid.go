package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"sessiondesk/session"
)

// Paid messages (issue 13): a business message sent when no session can take
// a reply, billed per message. It is stored as a business message that never
// counts (counted = 0), so the session rules (S3, S4) and counters never see
// it and it never opens a session, with a paid_messages row that says how it
// goes out and what it costs.

// Routes of a paid message.
const (
	RouteViber    = "viber"    // POST /viber without isSessionMessage
	RouteFailover = "failover" // POST /failover: Viber, then SMS
	RouteSMS      = "sms"      // SMS only
)

// Refusal codes of a paid send, answered 409 like the session rules' own.
const (
	// CodeNeedsCostConfirmation: the agent has not confirmed the price yet.
	CodeNeedsCostConfirmation session.Code = "needs_cost_confirmation"
	// CodeContactOptedOut: the client opted out or blocked the business.
	CodeContactOptedOut session.Code = "contact_opted_out"
	// CodeNotViberUser: Routee said the number is not a Viber user; SMS may reach it.
	CodeNotViberUser session.Code = "not_viber_user"
)

// Limits of a paid message.
const (
	MaxPaidText       = 1000 // code points, Viber's limit for a business message
	MaxButtonCaption  = 30   // code points, Viber's limit for a button
	MaxPaidURL        = 1000 // characters, Routee's limit for imageURL
	MaxPaidTemplates  = 200
	MaxTemplateName   = 100
	maxPaidCountryKey = 2
)

// Paid is what makes a business message a paid one.
type Paid struct {
	Route         string // RouteViber, RouteFailover or RouteSMS
	Promotional   bool   // it carries an image or a button
	ImageURL      string
	ButtonCaption string
	ButtonURL     string
	SMSFrom       string // the SMS sender, for RouteFailover and RouteSMS
	QuotedPrice   float64
	Currency      string
	TemplateID    int64
	// FinalChannel is the channel that finally carried it ("viber" or "sms"),
	// and Price what the provider billed (failover: the total); "" and nil
	// until a report says.
	FinalChannel string
	Price        *float64
}

// PaidSettings are the admin's settings for paid messages, stored under the
// settings key "paid".
type PaidSettings struct {
	// Currency of the rates below (three letters).
	Currency string `json:"currency"`
	// ViberRates and SMSRates are the per-message prices by ISO country code
	// (upper case); the key "*" is the price for every other country. A
	// country with no price cannot be sent a paid message on that channel.
	ViberRates map[string]float64 `json:"viber_rates"`
	SMSRates   map[string]float64 `json:"sms_rates"`
	// Promotional allows an image and a button.
	Promotional bool `json:"promotional"`
	// SMSSender is the SMS sender (name or number); "" means no SMS.
	SMSSender string `json:"sms_sender"`
	// RequireTemplate: every paid message must be one of the templates.
	RequireTemplate bool `json:"require_template"`
}

const settingKeyPaid = "paid"

// AuditPaidSettings records an admin's change of the paid message settings.
const (
	AuditPaidSettings = "paid_settings"
	AuditPaidSend     = "paid_send"
	AuditFlagClear    = "contact_flag_clear"
	AuditTemplate     = "paid_template"
)

// SMSEnabled reports whether a fallback sender is configured.
func (p PaidSettings) SMSEnabled() bool { return strings.TrimSpace(p.SMSSender) != "" }

// Quote is the price of a paid message to a country, on a route.
type Quote struct {
	Route    string  `json:"route"`
	Country  string  `json:"country"`
	Price    float64 `json:"price"`
	Currency string  `json:"currency"`
}

// Price returns the per-message price for a route and country, and whether
// one is set. A failover message is quoted at the Viber price plus the SMS
// price: the most it can cost when both steps are billed.
func (p PaidSettings) Price(route, country string) (float64, bool) {
	rate := func(rates map[string]float64) (float64, bool) {
		if v, ok := rates[strings.ToUpper(country)]; ok && country != "" {
			return v, true
		}
		v, ok := rates["*"]
		return v, ok
	}
	switch route {
	case RouteViber:
		return rate(p.ViberRates)
	case RouteSMS:
		return rate(p.SMSRates)
	case RouteFailover:
		v, ok1 := rate(p.ViberRates)
		s, ok2 := rate(p.SMSRates)
		return v + s, ok1 && ok2
	}
	return 0, false
}

// Validate normalises p and reports the first problem as an *InvalidError.
func (p *PaidSettings) Validate() error {
	p.Currency = strings.ToUpper(strings.TrimSpace(p.Currency))
	if !isCurrency(p.Currency) {
		return &InvalidError{Field: "currency", Message: "The currency must be three letters, such as EUR or USD."}
	}
	for name, rates := range map[string]*map[string]float64{"viber_rates": &p.ViberRates, "sms_rates": &p.SMSRates} {
		clean := make(map[string]float64, len(*rates))
		for k, v := range *rates {
			k = strings.ToUpper(strings.TrimSpace(k))
			if k != "*" && (len(k) != maxPaidCountryKey || strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "") {
				return &InvalidError{Field: name, Message: fmt.Sprintf("%q is not a two-letter country code or *.", k)}
			}
			if math.IsNaN(v) || v < 0 || v > maxRate {
				return &InvalidError{Field: name, Message: "Prices must be numbers from 0 up."}
			}
			clean[k] = v
		}
		*rates = clean
	}
	p.SMSSender = strings.TrimSpace(p.SMSSender)
	if n := utf8.RuneCountInString(p.SMSSender); n > 16 {
		return &InvalidError{Field: "sms_sender", Message: "The SMS sender has at most 16 characters (11 for a name)."}
	}
	return nil
}

// PaidSettings returns the stored paid message settings; without any, paid
// messages cannot be priced and are refused with a clear reason.
func (s *Store) PaidSettings(ctx context.Context) (PaidSettings, error) {
	return loadPaidSettings(ctx, s.read)
}

func loadPaidSettings(ctx context.Context, q queryer) (PaidSettings, error) {
	var raw string
	err := q.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, settingKeyPaid).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return PaidSettings{Currency: "EUR"}, nil
	}
	if err != nil {
		return PaidSettings{}, fmt.Errorf("load paid message settings: %w", err)
	}
	var p PaidSettings
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return PaidSettings{}, fmt.Errorf("stored paid message settings are unreadable: %w", err)
	}
	return p, nil
}

// SavePaidSettings validates and stores the paid message settings, audited.
func (s *Store) SavePaidSettings(ctx context.Context, agentID int64, p PaidSettings) (PaidSettings, error) {
	if err := p.Validate(); err != nil {
		return PaidSettings{}, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return PaidSettings{}, fmt.Errorf("encode paid message settings: %w", err)
	}
	err = s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		now := s.opts.Now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,
			updated_by = excluded.updated_by`, settingKeyPaid, string(b), ms(now), nullID(agentID)); err != nil {
			return false, fmt.Errorf("save paid message settings: %w", err)
		}
		return false, appendAudit(ctx, tx, now, agentID, AuditPaidSettings, 0, 0, p)
	})
	if err != nil {
		return PaidSettings{}, err
	}
	return p, nil
}

// PaidSend is an agent's paid message.
type PaidSend struct {
	ConversationID int64
	AgentID        int64
	Text           string
	// ImageURL, ButtonCaption and ButtonURL make it promotional (where allowed).
	// The image is never fetched by the inbox: Routee fetches it, so it is
	// only checked to be an absolute https URL.
	ImageURL, ButtonCaption, ButtonURL string
	// Route is RouteViber (the default), RouteFailover or RouteSMS.
	Route      string
	TemplateID int64
	// ConfirmCost: the agent saw the price and confirmed it. Without it
	// nothing is stored and a *CostError carries the quote.
	ConfirmCost bool
	// ConfirmedPrice, when set, is the price the agent saw: if the price is
	// another now (an admin changed it meanwhile), the send is asked to be
	// confirmed again.
	ConfirmedPrice *float64
}

// CostError asks the agent to confirm a paid message's price first.
type CostError struct {
	Quote Quote
}

func (e *CostError) Error() string {
	return fmt.Sprintf("%s: a paid message costs %.4g %s; confirm the cost to send it",
		CodeNeedsCostConfirmation, e.Quote.Price, e.Quote.Currency)
}

// checkPaid validates the composed message against the settings; it returns
// the normalised send.
func checkPaid(p PaidSend, set PaidSettings, tmpl *PaidTemplate) (PaidSend, error) {
	if p.Route == "" {
		p.Route = RouteViber
	}
	invalid := func(field, format string, args ...any) error {
		return &InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
	}
	switch p.Route {
	case RouteViber:
	case RouteFailover, RouteSMS:
		if !set.SMSEnabled() {
			return p, invalid("channel", "SMS is not set up: an admin sets a fallback sender under paid message settings.")
		}
	default:
		return p, invalid("channel", "Unknown channel %q: use viber, sms, or fallback.", p.Route)
	}
	if tmpl != nil && strings.TrimSpace(p.Text) == "" {
		p.Text = tmpl.Body
	}
	if set.RequireTemplate {
		if tmpl == nil {
			return p, invalid("template_id", "Paid messages must use one of the approved templates.")
		}
		if p.Text != tmpl.Body {
			return p, invalid("text", "Paid messages must use an approved template as it is; this text differs from %q.", tmpl.Name)
		}
	}
	if strings.TrimSpace(p.Text) == "" {
		return p, invalid("text", "A paid message needs a text.")
	}
	if n := utf8.RuneCountInString(p.Text); n > MaxPaidText {
		return p, invalid("text", "The text has %d characters; a paid message has at most %d.", n, MaxPaidText)
	}
	promo := p.ImageURL != "" || p.ButtonCaption != "" || p.ButtonURL != ""
	if promo {
		if !set.Promotional {
			return p, invalid("image_url", "Images and buttons are promotional content, which the admin has not allowed.")
		}
		if p.Route == RouteSMS {
			return p, invalid("image_url", "An SMS carries text only.")
		}
		if (p.ButtonCaption == "") != (p.ButtonURL == "") {
			return p, invalid("button", "A button needs both a caption and an https link.")
		}
		if p.ImageURL != "" && p.ButtonURL == "" {
			return p, invalid("button", "An image goes with a button (Viber's promotional message is text, image and button).")
		}
		if n := utf8.RuneCountInString(p.ButtonCaption); n > MaxButtonCaption {
			return p, invalid("button", "The button caption has %d characters, at most %d.", n, MaxButtonCaption)
		}
		if p.ImageURL != "" {
			if err := httpsURL(p.ImageURL); err != nil {
				return p, invalid("image_url", "The image %s.", err)
			}
		}
		if err := httpsURL(p.ButtonURL); err != nil {
			return p, invalid("button", "The button link %s.", err)
		}
	}
	return p, nil
}

// httpsURL checks a link handed to Routee (never fetched by the inbox).
func httpsURL(raw string) error {
	if utf8.RuneCountInString(raw) > MaxPaidURL {
		return fmt.Errorf("URL is over %d characters", MaxPaidURL)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || !u.IsAbs():
		return errors.New("must be an absolute https URL")
	case u.Scheme != "https":
		return errors.New("must be https")
	case u.User != nil:
		return errors.New("must not carry a user name or password")
	case strings.ContainsAny(raw, " \t\r\n"):
		return errors.New("must not contain spaces")
	}
	return nil
}

// AcceptPaidMessage checks a paid message and queues it for the outbox. It is
// refused with a *session.Refusal (contact_opted_out, not_viber_user), an
// *InvalidError (what was composed, or no price set), or a *CostError when
// ConfirmCost is false; then nothing is stored.
func (s *Store) AcceptPaidMessage(ctx context.Context, p PaidSend) (Message, error) {
	var out Message
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		now := s.opts.Now()
		set, err := loadPaidSettings(ctx, tx)
		if err != nil {
			return false, err
		}
		var tmpl *PaidTemplate
		if p.TemplateID != 0 {
			t, err := paidTemplate(ctx, tx, p.TemplateID)
			if err != nil {
				return false, err
			}
			tmpl = &t
		}
		if p, err = checkPaid(p, set, tmpl); err != nil {
			return false, err
		}
		var contactID int64
		var country string
		if err := tx.QueryRowContext(ctx, `SELECT ct.id, ct.country FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
			WHERE c.id = ?`, p.ConversationID).Scan(&contactID, &country); errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("conversation %d: %w", p.ConversationID, ErrNotFound)
		} else if err != nil {
			return false, fmt.Errorf("contact of conversation %d: %w", p.ConversationID, err)
		}
		flags, err := contactFlags(ctx, tx, contactID)
		if err != nil {
			return false, err
		}
		for _, f := range flags {
			switch {
			case f.Flag == FlagOptedOut || f.Flag == FlagBlocked:
				return false, session.Refuse(CodeContactOptedOut, fmt.Sprintf(
					"The client %s (%s): no paid message can go to them until they write again or an admin clears the flag.",
					FlagText(f.Flag), f.SetAt.Format("2 Jan 2006")))
			case f.Flag == FlagNotViberUser && p.Route == RouteViber:
				msg := "Routee reported that this number is not a Viber user."
				if set.SMSEnabled() {
					msg += ` Send it by SMS ("channel": "sms") or with SMS fallback ("fallback": true).`
				}
				return false, session.Refuse(CodeNotViberUser, msg)
			}
		}
		price, ok := set.Price(p.Route, country)
		if !ok {
			where := country
			if where == "" {
				where = "an unknown country"
			}
			return false, &InvalidError{Field: "price", Message: fmt.Sprintf(
				"No price for a paid %s message to %s is set; an admin sets it under paid message settings.", p.Route, where)}
		}
		quote := Quote{Route: p.Route, Country: country, Price: price, Currency: set.Currency}
		if !p.ConfirmCost || (p.ConfirmedPrice != nil && math.Abs(*p.ConfirmedPrice-price) > 1e-9) {
			return false, &CostError{Quote: quote}
		}
		_, sessionID, err := loadState(ctx, tx, p.ConversationID)
		if err != nil {
			return false, err
		}
		if sessionID == 0 {
			return false, &InvalidError{Field: "conversation", Message: "The client has never written; there is no thread to send to."}
		}
		var agent any
		if p.AgentID != 0 {
			agent = p.AgentID
		}
		// counted = 0: a paid message is outside the session rules (S3, S4)
		// and its counters; it sits in the latest session only for display.
		res, err := tx.ExecContext(ctx, `
			INSERT INTO messages (conversation_id, session_id, direction, kind, body, status, status_at,
			                      counted, agent_id, sent_at, created_at)
			VALUES (?, ?, 'out', 'text', ?, 'queued', ?, 0, ?, ?, ?)`,
			p.ConversationID, sessionID, p.Text, ms(now), agent, ms(now), ms(now))
		if err != nil {
			return false, fmt.Errorf("save paid message: %w", err)
		}
		id, _ := res.LastInsertId()
		smsFrom := ""
		if p.Route != RouteViber {
			smsFrom = set.SMSSender
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO paid_messages (message_id, route, promotional, image_url, button_caption, button_url,
			                           sms_from, quoted_price, currency, template_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, p.Route, p.ButtonURL != "", p.ImageURL, p.ButtonCaption, p.ButtonURL, smsFrom, price, set.Currency,
			nullID(p.TemplateID)); err != nil {
			return false, fmt.Errorf("save paid message %d: %w", id, err)
		}
		if err := appendEvent(ctx, tx, EventMessage, p.ConversationID, id, now); err != nil {
			return false, err
		}
		if err := appendAudit(ctx, tx, now, p.AgentID, AuditPaidSend, p.ConversationID, id, quote); err != nil {
			return false, err
		}
		if err := touchConversation(ctx, tx, p.ConversationID, id, p.AgentID, now); err != nil {
			return false, err
		}
		out, err = messageByID(ctx, tx, id)
		return true, err
	})
	if err != nil {
		return Message{}, fmt.Errorf("paid message to conversation %d: %w", p.ConversationID, err)
	}
	return out, nil
}

// PaidReport is what a delivery report says about a paid message beyond its
// status: the channel that finally carried it and the price.
type PaidReport struct {
	Ref          MessageRef
	FinalChannel string   // "viber" or "sms"; "" when the report does not say
	Price        *float64 // nil when the report carries none
}

// ApplyPaidReport records a paid message's final channel and price. A report
// about a session message, or an unknown one, changes nothing.
func (s *Store) ApplyPaidReport(ctx context.Context, r PaidReport) (bool, error) {
	if r.FinalChannel == "" && r.Price == nil {
		return false, nil
	}
	// Most reports are about session messages: a read tells, so that they
	// cost no write transaction.
	q, arg := `SELECT EXISTS (SELECT 1 FROM paid_messages WHERE message_id = ?)`, any(r.Ref.ID)
	if r.Ref.ID == 0 {
		q, arg = `SELECT EXISTS (SELECT 1 FROM messages m JOIN paid_messages p ON p.message_id = m.id
			WHERE m.provider_id = ?)`, r.Ref.ProviderID
	}
	var paid bool
	if err := s.read.QueryRowContext(ctx, q, arg).Scan(&paid); err != nil {
		return false, fmt.Errorf("is message %+v paid: %w", r.Ref, err)
	}
	if !paid {
		return false, nil
	}
	var changed bool
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		changed = false
		id, convID, _, _, err := findOutbound(ctx, tx, r.Ref)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		var price any
		if r.Price != nil {
			price = *r.Price
		}
		res, err := tx.ExecContext(ctx, `UPDATE paid_messages
			SET final_channel = CASE WHEN ?1 = '' THEN final_channel ELSE ?1 END, price = coalesce(?2, price)
			WHERE message_id = ?3 AND (final_channel IS NOT (CASE WHEN ?1 = '' THEN final_channel ELSE ?1 END)
			                           OR price IS NOT coalesce(?2, price))`,
			r.FinalChannel, price, id)
		if err != nil {
			return false, fmt.Errorf("record the price of paid message %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return false, nil
		}
		changed = true
		return true, appendEvent(ctx, tx, EventStatus, convID, id, s.opts.Now())
	})
	return changed, err
}

// paidColumns are the paid_messages columns messageSelect reads (as p).
const paidColumns = `coalesce(p.route, ''), coalesce(p.promotional, 0), coalesce(p.image_url, ''),
       coalesce(p.button_caption, ''), coalesce(p.button_url, ''), coalesce(p.sms_from, ''),
       coalesce(p.quoted_price, 0), coalesce(p.currency, ''), coalesce(p.template_id, 0),
       coalesce(p.final_channel, ''), p.price, coalesce(m.reply_to, 0)`

type paidScan struct {
	p       Paid
	price   sql.NullFloat64
	replyTo int64
}

func (ps *paidScan) dest() []any {
	return []any{&ps.p.Route, &ps.p.Promotional, &ps.p.ImageURL, &ps.p.ButtonCaption, &ps.p.ButtonURL,
		&ps.p.SMSFrom, &ps.p.QuotedPrice, &ps.p.Currency, &ps.p.TemplateID, &ps.p.FinalChannel, &ps.price, &ps.replyTo}
}

func (ps *paidScan) paid() *Paid {
	if ps.p.Route == "" {
		return nil
	}
	p := ps.p
	if ps.price.Valid {
		v := ps.price.Float64
		p.Price = &v
	}
	return &p
}

// PaidTotal sums paid messages of one route and currency.
type PaidTotal struct {
	Route    string  `json:"route"`
	Channel  string  `json:"final_channel"` // viber, sms, or "" while not reported
	Currency string  `json:"currency"`
	Count    int     `json:"count"`
	Quoted   float64 `json:"quoted"` // what the agents confirmed
	Billed   float64 `json:"billed"` // what Routee reported, for those it reported
	Reported int     `json:"reported"`
}

// PaidTotals sums the paid messages accepted in [from, until) that did not
// fail before reaching Routee, by route, final channel and currency: the
// per-message costs beside the sessions'.
func (r *Reader) PaidTotals(ctx context.Context, from, until time.Time) ([]PaidTotal, error) {
	rows, err := r.q.QueryContext(ctx, `
		SELECT p.route, p.final_channel, p.currency, count(*), total(p.quoted_price), total(p.price), count(p.price)
		FROM paid_messages p JOIN messages m ON m.id = p.message_id
		WHERE m.created_at >= ? AND m.created_at < ? AND m.provider_id IS NOT NULL
		GROUP BY p.route, p.final_channel, p.currency ORDER BY p.route, p.final_channel, p.currency`,
		ms(from), ms(until))
	if err != nil {
		return nil, fmt.Errorf("paid totals: %w", err)
	}
	defer rows.Close()
	out := []PaidTotal{}
	for rows.Next() {
		var t PaidTotal
		if err := rows.Scan(&t.Route, &t.Channel, &t.Currency, &t.Count, &t.Quoted, &t.Billed, &t.Reported); err != nil {
			return nil, fmt.Errorf("paid totals: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

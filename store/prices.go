package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ReportedPrice is what the provider reported one business message cost, as
// its status callback carries it.
type ReportedPrice struct {
	Amount float64
	// Currency is the ISO 4217 code the report named; "" when it named none,
	// which is read as the session's currency (the provider bills in the
	// account's currency, the one the rates are set in).
	Currency string
	Country  string    // the ISO 3166 code the report named; "" when none
	At       time.Time // when it was reported; zero: now
}

// maxPrice bounds a reported price: anything larger is a broken report.
const maxPrice = 1e6

// checkPrice normalises p and refuses a price that cannot be one.
func checkPrice(p *ReportedPrice) error {
	if math.IsNaN(p.Amount) || math.IsInf(p.Amount, 0) || p.Amount < 0 || p.Amount > maxPrice {
		return &InvalidError{Field: "price", Message: fmt.Sprintf("the price %v is not a cost", p.Amount)}
	}
	p.Currency = strings.ToUpper(strings.TrimSpace(p.Currency))
	if p.Currency != "" && !isCurrency(p.Currency) {
		return &InvalidError{Field: "currency", Message: fmt.Sprintf("the currency %q is not an ISO 4217 code", p.Currency)}
	}
	p.Country = strings.ToUpper(strings.TrimSpace(p.Country))
	if p.Country != "" && !isCountry(p.Country) {
		p.Country = "" // a country we cannot read is not worth refusing the price over
	}
	return nil
}

// RecordPrice stores the price the provider reported for a business message
// (by our id or the provider's). The price is set, never added: a repeated
// callback leaves everything as it was, and the session's reported cost
// (sessions.reported_cost, kept by migration 00020's triggers) counts each
// message once. A later report of 0 does not erase a price already stored
// (a status that carries no real price); any other later price replaces it.
// A price in another currency than the session's is kept on the message and
// counted in the session's reported_foreign, never summed with the others.
// It returns ErrNotFound for an unknown message, an *InvalidError for a
// price that is not one, and whether anything changed.
func (s *Store) RecordPrice(ctx context.Context, ref MessageRef, p ReportedPrice) (changed bool, err error) {
	if err := checkPrice(&p); err != nil {
		return false, err
	}
	err = s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		id, convID, _, _, err := findOutbound(ctx, tx, ref)
		if err != nil {
			return false, err
		}
		changed, err = s.recordPriceTx(ctx, tx, id, convID, p)
		return changed, err
	})
	if err != nil {
		return false, fmt.Errorf("record the price of message %+v: %w", ref, err)
	}
	return changed, nil
}

// recordPriceTx is RecordPrice inside the caller's write transaction, for
// the business message id of conversation convID; p is checked.
func (s *Store) recordPriceTx(ctx context.Context, tx queryer, id, convID int64, p ReportedPrice) (bool, error) {
	var (
		stored      sql.NullFloat64
		storedCur   string
		sessionCur  sql.NullString
		storedCount int
	)
	err := tx.QueryRowContext(ctx, `SELECT m.price, m.price_currency, m.price_counted, s.currency
		FROM messages m JOIN sessions s ON s.id = m.session_id WHERE m.id = ?`, id).
		Scan(&stored, &storedCur, &storedCount, &sessionCur)
	if err != nil {
		return false, fmt.Errorf("price of message %d: %w", id, err)
	}
	// A session never billed (its message was refused) has no currency of
	// its own: the one in force now is what it would have been billed in.
	cur := sessionCur.String
	if !sessionCur.Valid || cur == "" {
		cur = s.Rates().Currency
	}
	if p.Currency == "" {
		p.Currency = cur
	}
	counted := 0
	if p.Currency == cur {
		counted = 1
	}
	if stored.Valid && stored.Float64 == p.Amount && storedCur == p.Currency && storedCount == counted {
		return false, nil // the same report again
	}
	if stored.Valid && stored.Float64 > 0 && p.Amount == 0 {
		return false, nil
	}
	at := p.At
	if at.IsZero() {
		at = s.opts.Now()
	}
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET price = ?, price_currency = ?, price_country = ?, price_at = ?,
		price_counted = ? WHERE id = ?`, p.Amount, p.Currency, p.Country, ms(at), counted, id); err != nil {
		return false, fmt.Errorf("record the price of message %d: %w", id, err)
	}
	// The session panel shows the reported cost: pages redraw it.
	if err := appendEvent(ctx, tx, EventStatus, convID, id, s.opts.Now()); err != nil {
		return false, err
	}
	return true, nil
}

// MessagePrice is what the provider reported one business message cost.
type MessagePrice struct {
	Amount   float64
	Currency string
	Country  string
	At       time.Time
	// Counted is false when the price is in another currency than its
	// session's, and so not in the session's reported cost.
	Counted bool
}

// MessagePrice returns the price reported for a business message, and false
// when none was reported yet. An unknown message is ErrNotFound.
func (r *Reader) MessagePrice(ctx context.Context, id int64) (MessagePrice, bool, error) {
	var (
		amount sql.NullFloat64
		p      MessagePrice
		at     int64
	)
	err := r.q.QueryRowContext(ctx, `SELECT price, price_currency, price_country, price_at, price_counted
		FROM messages WHERE id = ? AND direction = 'out'`, id).Scan(&amount, &p.Currency, &p.Country, &at, &p.Counted)
	if errors.Is(err, sql.ErrNoRows) {
		return MessagePrice{}, false, fmt.Errorf("business message %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return MessagePrice{}, false, fmt.Errorf("price of message %d: %w", id, err)
	}
	if !amount.Valid {
		return MessagePrice{}, false, nil
	}
	p.Amount, p.At = amount.Float64, fromMS(at)
	return p, true, nil
}

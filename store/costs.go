package store

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"sessiondesk/session"
)

// EstimateSQL is a session's estimated cost in SQL, at the rates frozen on it
// when it was first billed (S7), as session.Rates.Cost computes it: 0 while
// nothing counted, the per-message rate times the messages counted when one
// was frozen, else the media rate once any image or file counted, else the
// text rate. It expects the session as s; reports sum it.
const EstimateSQL = `(CASE WHEN coalesce(s.used, 0) = 0 OR s.rate_text IS NULL THEN 0
	WHEN s.rate_message IS NOT NULL THEN s.used * s.rate_message
	WHEN s.media_used > 0 THEN s.rate_media ELSE s.rate_text END)`

// SpendSQL is what a session counts for in spending: what the provider
// reported once it priced any of its messages, the estimate before. It
// expects the session as s.
const SpendSQL = `(CASE WHEN s.reported_count > 0 THEN s.reported_cost ELSE ` + EstimateSQL + ` END)`

// SessionRow is one session as the export and the sessions API give it.
type SessionRow struct {
	ID             int64 // the session's own id: the keyset cursor's tie-breaker
	ConversationID int64
	Phone          string // the client's E.164 number
	// Country is the client's country frozen when the session was billed, or
	// the contact's for a session never billed.
	Country string
	Session session.Session // number, times, use, rates, reported cost
	// OpenedBy is "client" or "rollover".
	OpenedBy string
	// Ended is the session's end when it is over at the time of reading;
	// zero while it is still open.
	Ended time.Time
	// Unanswered: it ended with the client's message unanswered (case 9).
	Unanswered bool
	// FirstAgentID and FirstAgent name the agent who sent the session's first
	// counted business message; 0 and "" when none (not billed, or an
	// integration sent it without an agent).
	FirstAgentID int64
	FirstAgent   string
}

// Estimated is the session's cost at its frozen rates.
func (r SessionRow) Estimated() float64 { return r.Session.Cost() }

// Currency is the session's currency: the frozen one, or "" when never billed.
func (r SessionRow) Currency() string { return r.Session.Rates.Currency }

// SessionFilter selects sessions by when they started: From <= started < To.
// Zero times do not filter.
type SessionFilter struct {
	From, To time.Time
	// After is the keyset cursor: only sessions after this one in the order
	// (started, id). Zero: from the first.
	After SessionCursor
	// Limit is the page size: 100 when zero, at most MaxSessionPage.
	Limit int
}

// MaxSessionPage is the most rows one SessionRows call returns.
const MaxSessionPage = 1000

// SessionCursor is a position in the order of SessionRows: the last row's
// start and id.
type SessionCursor struct {
	StartedAt time.Time
	ID        int64
}

// IsZero reports the cursor before the first row.
func (c SessionCursor) IsZero() bool { return c.ID == 0 }

// String writes the cursor for a URL: start in milliseconds, a dot, the id.
func (c SessionCursor) String() string {
	if c.IsZero() {
		return ""
	}
	return strconv.FormatInt(ms(c.StartedAt), 10) + "." + strconv.FormatInt(c.ID, 10)
}

// ParseSessionCursor reads a cursor String wrote; a malformed one is an
// *InvalidError.
func ParseSessionCursor(s string) (SessionCursor, error) {
	bad := &InvalidError{Field: "cursor", Message: "The cursor is not one this server gave; start again without it."}
	a, b, ok := strings.Cut(s, ".")
	if !ok {
		return SessionCursor{}, bad
	}
	at, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || id <= 0 || at < 0 {
		return SessionCursor{}, bad
	}
	return SessionCursor{StartedAt: time.UnixMilli(at).UTC(), ID: id}, nil
}

// Cursor is the position after r.
func (r SessionRow) Cursor() SessionCursor {
	return SessionCursor{StartedAt: r.Session.StartedAt, ID: r.ID}
}

// SessionRows returns up to f.Limit sessions that started in [f.From, f.To),
// after f.After, in the order (started, id): one page of the export. The
// order is a keyset, so pages read one after another (each its own
// snapshot) miss and repeat nothing that was there throughout.
func (r *Reader) SessionRows(ctx context.Context, f SessionFilter) ([]SessionRow, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxSessionPage)
	q := `SELECT s.id, c.id, ct.phone, coalesce(nullif(s.country, ''), ct.country), s.opened_by,
		coalesce(fa.id, 0), coalesce(fa.name, ''), ` + sessionColumns + `
		FROM sessions s
		JOIN conversations c ON c.id = s.conversation_id
		JOIN contacts ct ON ct.id = c.contact_id
		LEFT JOIN agents fa ON fa.id = (SELECT agent_id FROM messages
		                                 WHERE session_id = s.id AND direction = 'out' AND counted = 1
		                                 ORDER BY id LIMIT 1)`
	// Only the filters in use: each a constant, its value an argument.
	var (
		conds []string
		args  []any
	)
	if !f.From.IsZero() {
		conds, args = append(conds, `s.started_at >= ?`), append(args, ms(f.From))
	}
	if !f.To.IsZero() {
		conds, args = append(conds, `s.started_at < ?`), append(args, ms(f.To))
	}
	if !f.After.IsZero() {
		conds, args = append(conds, `(s.started_at, s.id) > (?, ?)`), append(args, ms(f.After.StartedAt), f.After.ID)
	}
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, ` AND `)
	}
	q += ` ORDER BY s.started_at, s.id LIMIT ?`
	args = append(args, limit)
	rows, err := r.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	defer rows.Close()
	var out []SessionRow
	for rows.Next() {
		var (
			row SessionRow
			v   sessionScan
		)
		dest := append([]any{&row.ID, &row.ConversationID, &row.Phone, &row.Country, &row.OpenedBy,
			&row.FirstAgentID, &row.FirstAgent}, v.dest()...)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read sessions: %w", err)
		}
		row.Session = *v.session()
		if !r.now.Before(row.Session.EndsAt) {
			row.Ended = row.Session.EndsAt
		}
		row.Unanswered = row.Session.Unanswered(r.now)
		out = append(out, row)
	}
	return out, rows.Err()
}

// Spend is what was spent on sessions billed in a period.
type Spend struct {
	// Amount is the sum, over the sessions billed in the period in Currency,
	// of the reported cost where the provider priced the session and the
	// estimate where it has not yet.
	Amount   float64
	Currency string
	Sessions int // sessions billed in the period, in Currency
	// Reported of them have a reported price; OtherCurrency sessions were
	// billed in another currency and are not in Amount.
	Reported      int
	OtherCurrency int
}

// Spend returns what sessions billed in [from, to) cost, in currency.
func (r *Reader) Spend(ctx context.Context, from, to time.Time, currency string) (Spend, error) {
	out := Spend{Currency: currency}
	err := r.q.QueryRowContext(ctx, `
		SELECT coalesce(sum(CASE WHEN s.currency = ?1 THEN `+SpendSQL+` END), 0),
		       count(CASE WHEN s.currency = ?1 THEN 1 END),
		       count(CASE WHEN s.currency = ?1 AND s.reported_count > 0 THEN 1 END),
		       count(CASE WHEN s.currency <> ?1 THEN 1 END)
		FROM sessions s WHERE s.billed_at >= ?2 AND s.billed_at < ?3`,
		currency, ms(from), ms(to)).Scan(&out.Amount, &out.Sessions, &out.Reported, &out.OtherCurrency)
	if err != nil {
		return Spend{}, fmt.Errorf("spend from %s to %s: %w", from.Format(time.DateOnly), to.Format(time.DateOnly), err)
	}
	return out, nil
}

// MonthSpend returns what sessions first billed in the calendar month
// (UTC) holding t cost, in currency: the same figure as Spend over
// MonthBounds(t), read from the running totals migration 00022's triggers
// keep (one row, whatever the month's traffic). OtherCurrency counts the
// month's sessions billed in any other currency.
func (r *Reader) MonthSpend(ctx context.Context, t time.Time, currency string) (Spend, error) {
	from, _ := MonthBounds(t)
	month := from.Format("2006-01")
	out := Spend{Currency: currency}
	err := r.q.QueryRowContext(ctx, `
		SELECT coalesce(sum(CASE WHEN currency = ?2 THEN amount END), 0),
		       coalesce(sum(CASE WHEN currency = ?2 THEN sessions END), 0),
		       coalesce(sum(CASE WHEN currency = ?2 THEN reported END), 0),
		       coalesce(sum(CASE WHEN currency <> ?2 THEN sessions END), 0)
		FROM spend_months WHERE month = ?1`, month, currency).
		Scan(&out.Amount, &out.Sessions, &out.Reported, &out.OtherCurrency)
	if err != nil {
		return Spend{}, fmt.Errorf("spend of %s: %w", month, err)
	}
	// Sums of additions and subtractions of binary floats drift in the last
	// digits; a millionth is far below any price.
	out.Amount = math.Round(out.Amount*1e6) / 1e6
	return out, nil
}

// MonthBounds returns the calendar month (UTC) holding t: [start, end).
func MonthBounds(t time.Time) (time.Time, time.Time) {
	t = t.UTC()
	start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0)
}

// BudgetThresholds are the shares of the monthly budget at which admins are
// warned, in percent.
var BudgetThresholds = [...]int{80, 100}

// BudgetStatus is the month's spend against the monthly budget.
type BudgetStatus struct {
	Month  string  // YYYY-MM (UTC)
	Budget float64 // 0: no budget set
	Spend  Spend
	// Reached is the highest threshold of BudgetThresholds the spend reached,
	// 0 when none (or no budget).
	Reached int
}

// Percent is the spend as a share of the budget, in percent; 0 without one.
func (b BudgetStatus) Percent() float64 {
	if b.Budget <= 0 {
		return 0
	}
	return b.Spend.Amount / b.Budget * 100
}

// Budget returns this month's spend against the monthly budget in force. It
// only reads; CheckBudget also logs a threshold the first time it is crossed.
func (s *Store) Budget(ctx context.Context) (BudgetStatus, error) {
	set := s.Settings()
	now := s.opts.Now()
	from, _ := MonthBounds(now)
	out := BudgetStatus{Month: from.Format("2006-01"), Budget: set.MonthlyBudget}
	err := s.Read(ctx, func(r *Reader) error {
		var err error
		out.Spend, err = r.MonthSpend(ctx, now, set.Rates.Currency)
		return err
	})
	if err != nil {
		return BudgetStatus{}, fmt.Errorf("budget of %s: %w", out.Month, err)
	}
	for _, t := range BudgetThresholds {
		if out.Budget > 0 && out.Percent() >= float64(t) {
			out.Reached = t
		}
	}
	return out, nil
}

// AuditBudget is the audit action of a budget threshold crossed.
const AuditBudget = "budget"

type budgetDetail struct {
	Month     string  `json:"month"`
	Threshold int     `json:"threshold"`
	Spend     float64 `json:"spend"`
	Budget    float64 `json:"budget"`
	Currency  string  `json:"currency"`
}

// CheckBudget returns the month's budget status and, the first time in the
// month the spend is found at or past a threshold, logs it: one audit row
// (AuditBudget) per threshold per month, however many pages, callbacks or
// servers check at once (a unique key in budget_alerts, migration 00021).
// It returns the thresholds it logged now, for the caller to tell the log.
func (s *Store) CheckBudget(ctx context.Context) (BudgetStatus, []int, error) {
	b, err := s.Budget(ctx)
	if err != nil || b.Reached == 0 {
		return b, nil, err
	}
	// Once logged, a threshold needs no write: pages check on every render.
	var known []BudgetAlert
	if err := s.Read(ctx, func(r *Reader) error {
		known, err = r.BudgetAlerts(ctx, b.Month)
		return err
	}); err != nil {
		return b, nil, err
	}
	if len(known) > 0 && known[len(known)-1].Threshold >= b.Reached {
		return b, nil, nil
	}
	var logged []int
	err = s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		logged = logged[:0]
		now := s.opts.Now()
		for _, t := range BudgetThresholds {
			if t > b.Reached {
				break
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO budget_alerts (month, threshold, spend, budget, at)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (month, threshold) DO NOTHING`,
				b.Month, t, b.Spend.Amount, b.Budget, ms(now))
			if err != nil {
				return false, fmt.Errorf("log budget threshold %d%%: %w", t, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			if err := appendAudit(ctx, tx, now, 0, AuditBudget, 0, 0, budgetDetail{Month: b.Month, Threshold: t,
				Spend: b.Spend.Amount, Budget: b.Budget, Currency: b.Spend.Currency}); err != nil {
				return false, err
			}
			logged = append(logged, t)
		}
		return false, nil
	})
	if err != nil {
		return b, nil, fmt.Errorf("check the budget of %s: %w", b.Month, err)
	}
	return b, logged, nil
}

// BudgetAlert is a threshold logged by CheckBudget.
type BudgetAlert struct {
	Month     string
	Threshold int
	Spend     float64
	Budget    float64
	At        time.Time
}

// BudgetAlerts returns the thresholds logged for month (YYYY-MM), lowest first.
func (r *Reader) BudgetAlerts(ctx context.Context, month string) ([]BudgetAlert, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT month, threshold, spend, budget, at FROM budget_alerts
		WHERE month = ? ORDER BY threshold`, month)
	if err != nil {
		return nil, fmt.Errorf("budget alerts of %s: %w", month, err)
	}
	defer rows.Close()
	var out []BudgetAlert
	for rows.Next() {
		var a BudgetAlert
		var at int64
		if err := rows.Scan(&a.Month, &a.Threshold, &a.Spend, &a.Budget, &at); err != nil {
			return nil, fmt.Errorf("budget alerts of %s: %w", month, err)
		}
		a.At = fromMS(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

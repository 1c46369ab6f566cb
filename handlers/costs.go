package handlers

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"sessiondesk/auth"
	"sessiondesk/session"
	"sessiondesk/store"
	"sessiondesk/views"
)

// The costs of issue 12: the month's budget in the header, and the sessions
// export (CSV and JSON).

// sessionsCSVBatch is how many sessions the CSV export reads per snapshot.
const sessionsCSVBatch = 500

// API page sizes of GET /api/v1/sessions.
const (
	apiSessionsDefault = 100
	apiSessionsMax     = store.MaxSessionPage
)

// registerCosts adds the export routes (admins only: they show every cost).
func (s *Server) registerCosts(app *echo.Group, api *echo.Group) {
	app.GET("/admin/sessions.csv", s.sessionsCSV, s.requireAdmin)
	api.GET("/sessions", s.apiSessions, s.requireAdmin)
}

// checkBudget logs the first crossing of each budget threshold in the month
// (see store.CheckBudget). A failure is only logged: the caller's work is done.
func (s *Server) checkBudget(ctx context.Context) {
	if s.Store.Settings().MonthlyBudget <= 0 {
		return
	}
	b, logged, err := s.Store.CheckBudget(ctx)
	if err != nil {
		s.Log.Error("budget check failed", "err", err)
		return
	}
	for _, t := range logged {
		s.Log.Warn("monthly budget threshold reached", "month", b.Month, "threshold_percent", t,
			"spend", b.Spend.Amount, "budget", b.Budget, "currency", b.Spend.Currency)
	}
}

// budgetLine is the header's budget meter for an admin; nil for anyone else
// and when no budget is set. Rendering it checks the thresholds too, so the
// event is logged even when no price callback crosses it (an estimate can).
func (s *Server) budgetLine(c echo.Context) *views.BudgetLine {
	if currentAgent(c).Role != auth.RoleAdmin || s.Store.Settings().MonthlyBudget <= 0 {
		return nil
	}
	b, logged, err := s.Store.CheckBudget(c.Request().Context())
	if err != nil {
		s.Log.Error("budget for the header", "err", err)
		return nil
	}
	for _, t := range logged {
		s.Log.Warn("monthly budget threshold reached", "month", b.Month, "threshold_percent", t,
			"spend", b.Spend.Amount, "budget", b.Budget, "currency", b.Spend.Currency)
	}
	return &views.BudgetLine{Month: b.Month, Spend: b.Spend.Amount, Budget: b.Budget, Currency: b.Spend.Currency,
		Percent: b.Percent(), Reached: b.Reached}
}

// sessionsQuery is the export's filter: from and to are dates (YYYY-MM-DD, in
// the server's zone, both inclusive, as the audit export reads them) of the
// sessions' start.
type sessionsQuery struct {
	filter store.SessionFilter
}

// parseSessionsQuery reads from, to, cursor and limit (limit only when
// withLimit). Anything it cannot read is an *store.InvalidError (422).
func parseSessionsQuery(c echo.Context, withLimit bool) (sessionsQuery, error) {
	var q sessionsQuery
	invalid := func(field, msg string) (sessionsQuery, error) {
		return q, &store.InvalidError{Field: field, Message: msg}
	}
	for _, d := range []struct {
		field string
		into  *time.Time
		next  bool
	}{{"from", &q.filter.From, false}, {"to", &q.filter.To, true}} {
		v := strings.TrimSpace(c.QueryParam(d.field))
		if v == "" {
			continue
		}
		t, err := time.ParseInLocation(time.DateOnly, v, time.Local)
		if err != nil {
			return invalid(d.field, fmt.Sprintf("%s: write the date as YYYY-MM-DD, not %q.", d.field, clip(v, 40)))
		}
		if d.next {
			t = t.AddDate(0, 0, 1) // to is inclusive: up to the start of the next day
		}
		*d.into = t
	}
	if !q.filter.From.IsZero() && !q.filter.To.IsZero() && !q.filter.From.Before(q.filter.To) {
		return invalid("to", "The end date is before the start date.")
	}
	if v := c.QueryParam("cursor"); v != "" {
		cur, err := store.ParseSessionCursor(v)
		if err != nil {
			return q, err
		}
		q.filter.After = cur
	}
	if !withLimit {
		return q, nil
	}
	q.filter.Limit = apiSessionsDefault
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > apiSessionsMax {
			return invalid("limit", fmt.Sprintf("limit: want a number from 1 to %d.", apiSessionsMax))
		}
		q.filter.Limit = n
	}
	return q, nil
}

// clip shortens a value quoted back in an error message.
func clip(v string, n int) string {
	if len(v) <= n {
		return v
	}
	return v[:n] + "…"
}

// sessionsCSVHeader names the export's columns.
var sessionsCSVHeader = []string{"conversation_id", "client_phone", "country", "session_number", "started_utc",
	"ended_utc", "opened_by", "messages_used", "media", "unanswered_end", "estimated_cost", "reported_cost",
	"priced_messages", "currency", "first_agent"}

// sessionsCSV streams one row per session that started in the date range, in
// the order they started. It reads in batches, each its own snapshot, paged
// by a keyset (started, id), so a long export holds no snapshot open and
// misses or repeats nothing that was there throughout.
func (s *Server) sessionsCSV(c echo.Context) error {
	ctx := c.Request().Context()
	q, err := parseSessionsQuery(c, false)
	if err != nil {
		return err
	}
	return csvExport[store.SessionRow]{
		filename: "sessiondesk-sessions.csv", header: sessionsCSVHeader, batch: sessionsCSVBatch,
		read: func(last store.SessionRow, first bool) ([]store.SessionRow, error) {
			f := q.filter
			f.Limit = sessionsCSVBatch
			if !first {
				f.After = last.Cursor()
			}
			var rows []store.SessionRow
			err := s.Store.Read(ctx, func(r *store.Reader) (err error) {
				rows, err = r.SessionRows(ctx, f)
				return err
			})
			return rows, err
		},
		record: sessionCSVRecord, what: "sessions",
	}.stream(s, c)
}

// amount writes a cost for a machine: as many decimals as it has, rounded to
// a millionth (sums of binary floats carry noise beyond).
func amount(v float64) string {
	return strconv.FormatFloat(math.Round(v*1e6)/1e6, 'f', -1, 64)
}

func sessionCSVRecord(r store.SessionRow) []string {
	ended, reported := "", ""
	if !r.Ended.IsZero() {
		ended = r.Ended.UTC().Format(time.RFC3339)
	}
	if r.Session.Reported.Priced > 0 {
		reported = amount(r.Session.Reported.Amount)
	}
	// Only the cells that carry text from outside are neutralised; numbers
	// and times written here cannot start a formula. The phone is one of
	// them: "+49…" would be read as a formula.
	return []string{
		strconv.FormatInt(r.ConversationID, 10), csvCell(r.Phone), csvCell(r.Country),
		strconv.Itoa(r.Session.Number), r.Session.StartedAt.UTC().Format(time.RFC3339), ended,
		csvCell(r.OpenedBy), strconv.Itoa(r.Session.Used), strconv.FormatBool(r.Session.Media),
		strconv.FormatBool(r.Unanswered), amount(r.Estimated()), reported,
		strconv.Itoa(r.Session.Reported.Priced), csvCell(r.Currency()), csvCell(r.FirstAgent),
	}
}

// apiSessionRow is one session of GET /api/v1/sessions: the CSV's row.
type apiSessionRow struct {
	ConversationID int64      `json:"conversation_id"`
	Phone          string     `json:"client_phone"`
	Country        string     `json:"country"`
	Number         int        `json:"session_number"`
	StartedAt      time.Time  `json:"started_at"`
	EndedAt        *time.Time `json:"ended_at"` // null while the session is open
	OpenedBy       string     `json:"opened_by"`
	Used           int        `json:"messages_used"`
	Media          bool       `json:"media"`
	UnansweredEnd  bool       `json:"unanswered_end"`
	// EstimatedCost is at the rates frozen when the session was billed;
	// ReportedCost is what the provider reported, null before it priced any
	// of its messages.
	EstimatedCost  float64      `json:"estimated_cost"`
	ReportedCost   *float64     `json:"reported_cost"`
	PricedMessages int          `json:"priced_messages"`
	Currency       string       `json:"currency"`
	FirstAgent     *apiAgentRef `json:"first_agent"`
}

// apiAgentRef names an agent.
type apiAgentRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// apiSessions is GET /api/v1/sessions?from=&to=&cursor=&limit=: sessions that
// started in the date range, in the order they started, and next_cursor for
// the next page (absent on the last).
func (s *Server) apiSessions(c echo.Context) error {
	ctx := c.Request().Context()
	q, err := parseSessionsQuery(c, true)
	if err != nil {
		return err
	}
	out := struct {
		Sessions   []apiSessionRow `json:"sessions"`
		NextCursor string          `json:"next_cursor,omitempty"`
	}{Sessions: []apiSessionRow{}}
	f := q.filter
	f.Limit++ // one more tells whether there is a next page
	var rows []store.SessionRow
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		rows, err = r.SessionRows(ctx, f)
		return err
	})
	if err != nil {
		return err
	}
	if len(rows) > q.filter.Limit {
		rows = rows[:q.filter.Limit]
		out.NextCursor = rows[len(rows)-1].Cursor().String()
	}
	for _, r := range rows {
		row := apiSessionRow{
			ConversationID: r.ConversationID, Phone: r.Phone, Country: r.Country, Number: r.Session.Number,
			StartedAt: r.Session.StartedAt, OpenedBy: r.OpenedBy, Used: r.Session.Used, Media: r.Session.Media,
			UnansweredEnd: r.Unanswered, EstimatedCost: roundMoney(r.Estimated()),
			PricedMessages: r.Session.Reported.Priced, Currency: r.Currency(),
		}
		if !r.Ended.IsZero() {
			ended := r.Ended
			row.EndedAt = &ended
		}
		if r.Session.Reported.Priced > 0 {
			v := roundMoney(r.Session.Reported.Amount)
			row.ReportedCost = &v
		}
		if r.FirstAgentID != 0 {
			row.FirstAgent = &apiAgentRef{ID: r.FirstAgentID, Name: r.FirstAgent}
		}
		out.Sessions = append(out.Sessions, row)
	}
	return c.JSON(http.StatusOK, out)
}

func roundMoney(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// costsForm shows the cost settings as the form's fields.
func costsForm(f *views.SettingsForm, set store.AdminSettings) {
	codes := make([]string, 0, len(set.CountryRates))
	for code := range set.CountryRates {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	var lines []string
	for _, code := range codes {
		r := set.CountryRates[code]
		lines = append(lines, code+" "+strconv.FormatFloat(r.Text, 'f', -1, 64)+" "+strconv.FormatFloat(r.Media, 'f', -1, 64))
	}
	f.CountryRates = strings.Join(lines, "\n")
	f.SenderCountry = set.SenderCountry
	f.RateInternational = strconv.FormatFloat(set.InternationalRate, 'f', -1, 64)
	f.MonthlyBudget = strconv.FormatFloat(set.MonthlyBudget, 'f', -1, 64)
}

// typedCosts copies the cost fields of a posted settings form; a field the
// form did not carry (an older page, a script) keeps what is in force.
func typedCosts(typed *views.SettingsForm, form url.Values, cur store.AdminSettings) {
	var was views.SettingsForm
	costsForm(&was, cur)
	for _, f := range []struct {
		name     string
		dst, def *string
	}{
		{"country_rates", &typed.CountryRates, &was.CountryRates},
		{"sender_country", &typed.SenderCountry, &was.SenderCountry},
		{"rate_international", &typed.RateInternational, &was.RateInternational},
		{"monthly_budget", &typed.MonthlyBudget, &was.MonthlyBudget},
	} {
		if form.Has(f.name) {
			*f.dst = form.Get(f.name)
		} else {
			*f.dst = *f.def
		}
	}
}

// parseCosts reads the typed cost fields into next; the message says what
// could not be read. The store checks the values themselves.
func parseCosts(next *store.AdminSettings, f views.SettingsForm) string {
	dec := func(label, v string) (float64, string) {
		v = strings.TrimSpace(v)
		if v == "" {
			return 0, ""
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, label + " must be a number, such as 0.05."
		}
		return x, ""
	}
	var msg string
	if next.InternationalRate, msg = dec("The international rate", f.RateInternational); msg != "" {
		return msg
	}
	if next.MonthlyBudget, msg = dec("The monthly budget", f.MonthlyBudget); msg != "" {
		return msg
	}
	next.SenderCountry = f.SenderCountry
	rates := map[string]session.CountryRates{}
	for i, line := range strings.Split(strings.ReplaceAll(f.CountryRates, "\r\n", "\n"), "\n") {
		fields := strings.Fields(strings.ReplaceAll(line, ",", " "))
		if len(fields) == 0 {
			continue
		}
		bad := fmt.Sprintf("Rates per country, line %d: write the country code, the text rate and the media rate, such as DE 0.02 0.04.", i+1)
		if len(fields) != 3 {
			return bad
		}
		t, m1 := dec("", fields[1])
		m, m2 := dec("", fields[2])
		if m1 != "" || m2 != "" {
			return bad
		}
		code := strings.ToUpper(fields[0])
		if _, dup := rates[code]; dup {
			return fmt.Sprintf("Rates per country: %s is given twice.", code)
		}
		rates[code] = session.CountryRates{Text: t, Media: m}
	}
	next.CountryRates = rates
	return ""
}

// reportedAmount is a session's reported cost for the API, nil before the
// provider priced any of its messages.
func reportedAmount(ss session.Session) *float64 {
	if ss.Reported.Priced == 0 {
		return nil
	}
	v := roundMoney(ss.Reported.Amount)
	return &v
}

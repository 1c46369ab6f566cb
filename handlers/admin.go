package handlers

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"sessiondesk/auth"
	"sessiondesk/session"
	"sessiondesk/store"
	"sessiondesk/views"
)

// The admin side: the audit log (page and CSV), the runtime settings and the
// API tokens. Admins only (requireAdmin); every form posts with normal form
// encoding, so the global cross-origin protection covers it.

// auditPageSize is how many entries one page of the audit log shows.
const auditPageSize = 50

// auditCSVBatch is how many entries the CSV export reads per snapshot.
const auditCSVBatch = 500

// cannedBlankRows is how many empty canned-reply rows the settings form offers.
const cannedBlankRows = 3

// registerAdmin adds the admin routes to the signed-in group; Register calls it.
func (s *Server) registerAdmin(g *echo.Group) {
	adm := g.Group("/admin", s.requireAdmin)
	adm.GET("", s.adminHome)
	adm.GET("/audit", s.adminAudit)
	adm.GET("/audit.csv", s.adminAuditCSV)
	adm.GET("/settings", s.adminSettings)
	adm.POST("/settings", s.adminSaveSettings)
	adm.POST("/auto-assign", s.adminAutoAssign)
	adm.GET("/tokens", s.adminTokens)
	adm.POST("/tokens", s.adminCreateToken)
	adm.POST("/tokens/:tid/revoke", s.adminRevokeToken)
}

// requireAdmin lets only admins through; anyone else gets a 403 that says why,
// as a page, or as JSON to a client that asks for it.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if currentAgent(c).Role == auth.RoleAdmin {
			return next(c)
		}
		const msg = "Only admins can open the admin pages (settings, API tokens and the audit log). Ask an admin if you need them."
		if acceptsJSON(c) {
			return c.JSON(http.StatusForbidden, apiError{Code: "forbidden", Message: msg})
		}
		return echo.NewHTTPError(http.StatusForbidden, msg)
	}
}

// acceptsJSON reports a client that prefers JSON to a page.
func acceptsJSON(c echo.Context) bool {
	accept := c.Request().Header.Get(echo.HeaderAccept)
	return strings.Contains(accept, echo.MIMEApplicationJSON) && !strings.Contains(accept, echo.MIMETextHTML)
}

// rates are the session rates in force: what an admin saved, else the

// tokenAgent resolves an API token in "Authorization: Bearer sdk_...". It
// returns ok=false when the request carries none (other bearer tokens are the
// SSO proxy's). With ok=true, a non-nil error is either a 401 *echo.HTTPError
// (a malformed, unknown or revoked token, wrapping store.ErrInvalidToken) or a
// failure of the database.
func (s *Server) tokenAgent(r *http.Request) (store.Agent, bool, error) {
	values := r.Header.Values(echo.HeaderAuthorization)
	var secret string
	found := 0
	for _, v := range values {
		scheme, cred, _ := strings.Cut(strings.TrimSpace(v), " ")
		cred = strings.TrimSpace(cred)
		if strings.EqualFold(scheme, "Bearer") && strings.HasPrefix(cred, store.TokenPrefix) {
			secret = cred
			found++
		}
	}
	if found == 0 {
		return store.Agent{}, false, nil
	}
	unauthorized := func(msg string, err error) error {
		return echo.NewHTTPError(http.StatusUnauthorized, msg).WithInternal(err)
	}
	if found > 1 || len(values) > 1 {
		return store.Agent{}, true, unauthorized("Send one Authorization header with one API token.", store.ErrInvalidToken)
	}
	a, _, err := s.Store.TokenAgent(r.Context(), secret)
	if errors.Is(err, store.ErrInvalidToken) {
		return store.Agent{}, true, unauthorized("The API token is unknown or was revoked.", err)
	}
	if err != nil {
		return store.Agent{}, true, err
	}
	return a, true, nil
}

func (s *Server) adminHome(c echo.Context) error {
	ctx := c.Request().Context()
	set := s.Store.Settings()
	p := views.AdminHomePage{
		Chrome: s.chrome(c, "Admin"), Rules: set.Rules, Rates: set.Rates, CannedCount: len(set.CannedReplies),
	}
	err := s.Store.Read(ctx, func(r *store.Reader) error {
		entries, err := r.Audit(ctx, store.AuditFilter{Limit: 10})
		if err != nil {
			return err
		}
		p.Recent = auditRows(entries)
		tokens, err := r.Tokens(ctx)
		for _, t := range tokens {
			if !t.Revoked() {
				p.ActiveTokens++
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, views.AdminHome(p))
}

func auditRows(entries []store.AuditEntry) []views.AuditRow {
	rows := make([]views.AuditRow, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, views.AuditRow{
			ID: e.ID, At: e.At.In(time.Local), Agent: e.AgentName, Token: e.TokenName, Action: e.Action,
			ConversationID: e.ConversationID, MessageID: e.MessageID, Summary: e.Summary(),
		})
	}
	return rows
}

// auditQuery is the audit log's filter as the query string gives it.
type auditQuery struct {
	filter      store.AuditFilter
	action      string
	agent       string
	from, to    string
	sameFilters url.Values // without the page cursor
}

// parseAuditQuery reads action, agent, from and to (dates, YYYY-MM-DD, in the
// server's zone, both inclusive) and before (the page cursor). A value it
// cannot read is an *store.InvalidError.
func parseAuditQuery(c echo.Context) (auditQuery, error) {
	q := auditQuery{
		action: c.QueryParam("action"), agent: c.QueryParam("agent"),
		from: strings.TrimSpace(c.QueryParam("from")), to: strings.TrimSpace(c.QueryParam("to")),
		sameFilters: url.Values{},
	}
	invalid := func(field, msg string) (auditQuery, error) {
		return q, &store.InvalidError{Field: field, Message: msg}
	}
	if q.action != "" {
		known := false
		for _, a := range store.AuditActions() {
			known = known || a == q.action
		}
		if !known {
			return invalid("action", "There is no audit action "+strconv.Quote(q.action)+".")
		}
		q.filter.Action = q.action
		q.sameFilters.Set("action", q.action)
	}
	if q.agent != "" {
		id, err := strconv.ParseInt(q.agent, 10, 64)
		if err != nil || id <= 0 {
			return invalid("agent", "The agent filter must be an agent's number.")
		}
		q.filter.AgentID = id
		q.sameFilters.Set("agent", q.agent)
	}
	if q.from != "" {
		d, err := time.ParseInLocation(time.DateOnly, q.from, time.Local)
		if err != nil {
			return invalid("from", "Write the dates as YYYY-MM-DD.")
		}
		q.filter.Since = d
		q.sameFilters.Set("from", q.from)
	}
	if q.to != "" {
		d, err := time.ParseInLocation(time.DateOnly, q.to, time.Local)
		if err != nil {
			return invalid("to", "Write the dates as YYYY-MM-DD.")
		}
		q.filter.Until = d.AddDate(0, 0, 1)
		q.sameFilters.Set("to", q.to)
	}
	if !q.filter.Since.IsZero() && !q.filter.Until.IsZero() && !q.filter.Since.Before(q.filter.Until) {
		return invalid("to", "The end date is before the start date.")
	}
	if b := c.QueryParam("before"); b != "" {
		id, err := strconv.ParseInt(b, 10, 64)
		if err != nil || id <= 0 {
			return invalid("before", "The page cursor must be an entry's number.")
		}
		q.filter.BeforeID = id
	}
	return q, nil
}

// withQuery appends encoded query values to a path.
func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

func (s *Server) adminAudit(c echo.Context) error {
	ctx := c.Request().Context()
	ch := s.chrome(c, "Audit log")
	q, qerr := parseAuditQuery(c)
	p := views.AdminAuditPage{Chrome: ch, From: q.from, To: q.to, Paged: q.filter.BeforeID != 0}
	p.FirstURL = withQuery(ch.URL("/admin/audit"), q.sameFilters)
	p.CSVURL = withQuery(ch.URL("/admin/audit.csv"), q.sameFilters)
	for _, a := range store.AuditActions() {
		p.Actions = append(p.Actions, views.Option{Value: a, Label: views.AuditActionLabel(a), Selected: a == q.action})
	}
	status := http.StatusOK
	var invalid *store.InvalidError
	if errors.As(qerr, &invalid) {
		p.Error, status = invalid.Message, http.StatusBadRequest
	}
	err := s.Store.Read(ctx, func(r *store.Reader) error {
		agents, err := r.Agents(ctx)
		if err != nil {
			return err
		}
		for _, a := range agents {
			id := strconv.FormatInt(a.ID, 10)
			p.Agents = append(p.Agents, views.Option{Value: id, Label: a.Name, Selected: id == q.agent})
		}
		if qerr != nil {
			return nil
		}
		f := q.filter
		f.Limit = auditPageSize + 1 // one more tells whether there is an older page
		entries, err := r.Audit(ctx, f)
		if err != nil {
			return err
		}
		if len(entries) > auditPageSize {
			entries = entries[:auditPageSize]
			next := url.Values{}
			for k, v := range q.sameFilters {
				next[k] = v
			}
			next.Set("before", strconv.FormatInt(entries[len(entries)-1].ID, 10))
			p.NextURL = withQuery(ch.URL("/admin/audit"), next)
		}
		p.Rows = auditRows(entries)
		return nil
	})
	if err != nil {
		return err
	}
	return s.render(c, status, views.AdminAudit(p))
}

// auditCSVHeader names the export's columns.
var auditCSVHeader = []string{"id", "time_utc", "agent_id", "agent", "token_id", "token", "action",
	"conversation_id", "message_id", "summary", "detail"}

// adminAuditCSV streams the audit log, with the page's filters, as CSV. It reads
// in batches, each its own snapshot, so a long export holds no snapshot open;
// the log is append-only and paged by id, so nothing is missed or repeated.
func (s *Server) adminAuditCSV(c echo.Context) error {
	ctx := c.Request().Context()
	q, err := parseAuditQuery(c)
	var invalid *store.InvalidError
	if errors.As(err, &invalid) {
		return echo.NewHTTPError(http.StatusBadRequest, invalid.Message)
	}
	return csvExport[store.AuditEntry]{
		filename: "sessiondesk-audit.csv", header: auditCSVHeader, batch: auditCSVBatch,
		read: func(last store.AuditEntry, first bool) ([]store.AuditEntry, error) {
			f := q.filter
			f.Limit = auditCSVBatch
			if !first {
				f.BeforeID = last.ID
			}
			var entries []store.AuditEntry
			err := s.Store.Read(ctx, func(r *store.Reader) (err error) {
				entries, err = r.Audit(ctx, f)
				return err
			})
			return entries, err
		},
		record: auditCSVRecord, what: "audit",
	}.stream(s, c)
}

func auditCSVRecord(e store.AuditEntry) []string {
	id := func(v int64) string {
		if v == 0 {
			return ""
		}
		return strconv.FormatInt(v, 10)
	}
	rec := []string{
		id(e.ID), e.At.UTC().Format(time.RFC3339Nano), id(e.AgentID), e.AgentName, id(e.TokenID), e.TokenName,
		e.Action, id(e.ConversationID), id(e.MessageID), e.Summary(), e.Detail,
	}
	for i, v := range rec {
		rec[i] = csvCell(v)
	}
	return rec
}

// csvCell neutralises a cell a spreadsheet would run as a formula (CSV
// injection): one that begins with = + - @, a tab or a carriage return gets a
// leading single quote, so it is shown as text.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// settingsForm shows settings as the form's fields.
func settingsForm(set store.AdminSettings) views.SettingsForm {
	f := views.SettingsForm{
		WindowHours:   views.HoursText(set.Rules.Window),
		MaxPerSession: strconv.Itoa(set.Rules.MaxPerSession),
		MaxUnanswered: strconv.Itoa(set.Rules.MaxUnanswered),
		AfterCap:      string(set.Rules.AfterCap),
		TextMax:       strconv.Itoa(set.Rules.MaxTextLen),
		RateText:      strconv.FormatFloat(set.Rates.Text, 'f', -1, 64),
		RateMedia:     strconv.FormatFloat(set.Rates.Media, 'f', -1, 64),
		Currency:      set.Rates.Currency,
	}
	costsForm(&f, set)
	for _, cr := range set.CannedReplies {
		f.Canned = append(f.Canned, views.CannedReplyForm{Title: cr.Title, Text: cr.Text})
	}
	return f
}

// withBlankRows adds the empty canned-reply rows that let an admin add replies.
func withBlankRows(f views.SettingsForm) views.SettingsForm {
	for range cannedBlankRows {
		if len(f.Canned) >= store.MaxCannedReplies {
			break
		}
		f.Canned = append(f.Canned, views.CannedReplyForm{})
	}
	return f
}

func (s *Server) adminSettings(c echo.Context) error {
	p := views.AdminSettingsPage{
		Chrome: s.chrome(c, "Settings"),
		Form:   withBlankRows(settingsForm(s.Store.Settings())),
		Saved:  c.QueryParam("saved") == "1",
	}
	var err error
	if p.AutoAssign, err = s.Store.AutoAssign(c.Request().Context()); err != nil {
		return err
	}
	return s.render(c, http.StatusOK, views.AdminSettings(p))
}

func (s *Server) adminSaveSettings(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	typed := views.SettingsForm{
		WindowHours: form.Get("window_hours"), MaxPerSession: form.Get("max_per_session"),
		MaxUnanswered: form.Get("max_unanswered"), AfterCap: form.Get("after_cap"), TextMax: form.Get("text_max"),
		RateText: form.Get("rate_text"), RateMedia: form.Get("rate_media"), Currency: form.Get("currency"),
	}
	typedCosts(&typed, form, s.Store.Settings())
	titles, texts := form["canned_title"], form["canned_text"]
	if len(titles) != len(texts) {
		return echo.NewHTTPError(http.StatusBadRequest, "Every canned reply needs a title field and a text field.")
	}
	for i := range titles {
		cr := views.CannedReplyForm{Title: titles[i], Text: strings.ReplaceAll(texts[i], "\r\n", "\n")}
		if strings.TrimSpace(cr.Title) == "" && strings.TrimSpace(cr.Text) == "" {
			continue // an empty row, or one the admin cleared to remove it
		}
		typed.Canned = append(typed.Canned, cr)
	}
	refuse := func(msg string) error {
		p := views.AdminSettingsPage{Chrome: s.chrome(c, "Settings"), Form: withBlankRows(typed), Error: msg}
		return s.render(c, http.StatusUnprocessableEntity, views.AdminSettings(p))
	}
	next, msg := parseSettings(s.Store.Settings(), typed)
	if msg != "" {
		return refuse(msg)
	}
	err = s.Store.SaveSettings(c.Request().Context(), currentAgent(c).ID, next)
	var invalid *store.InvalidError
	if errors.As(err, &invalid) {
		return refuse(invalid.Message)
	}
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, s.path("/admin/settings?saved=1"))
}

// parseSettings reads the typed form over cur; msg says what could not be read.
// The store checks the values themselves.
func parseSettings(cur store.AdminSettings, f views.SettingsForm) (next store.AdminSettings, msg string) {
	next = cur
	num := func(label, v string, dst *int) bool {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			msg = label + " must be a whole number."
			return false
		}
		*dst = n
		return true
	}
	dec := func(label, v string, dst *float64) bool {
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			msg = label + " must be a number, such as 0.05."
			return false
		}
		*dst = x
		return true
	}
	var hours float64
	ok := dec("The session window", f.WindowHours, &hours) &&
		num("Messages per session", f.MaxPerSession, &next.Rules.MaxPerSession) &&
		num("Messages before the client must reply", f.MaxUnanswered, &next.Rules.MaxUnanswered) &&
		num("The text length", f.TextMax, &next.Rules.MaxTextLen) &&
		dec("The text session rate", f.RateText, &next.Rates.Text) &&
		dec("The media session rate", f.RateMedia, &next.Rates.Media)
	if !ok {
		return next, msg
	}
	if hours <= 0 || hours > 24 {
		return next, fmt.Sprintf("The session window must be more than 0 and at most %d hours (Viber's limit).",
			session.MaxWindow/time.Hour)
	}
	next.Rules.Window = time.Duration(math.Round(hours*3600)) * time.Second
	next.Rules.AfterCap = session.AfterCap(f.AfterCap)
	next.Rates.Currency = f.Currency
	if msg := parseCosts(&next, f); msg != "" {
		return next, msg
	}
	next.CannedReplies = make([]store.CannedReply, 0, len(f.Canned))
	for _, cr := range f.Canned {
		next.CannedReplies = append(next.CannedReplies, store.CannedReply{Title: cr.Title, Text: cr.Text})
	}
	return next, ""
}

// tokensPage reads the token list into p.
func (s *Server) tokensPage(c echo.Context, p views.AdminTokensPage) (views.AdminTokensPage, error) {
	ctx := c.Request().Context()
	err := s.Store.Read(ctx, func(r *store.Reader) error {
		tokens, err := r.Tokens(ctx)
		for _, t := range tokens {
			row := views.TokenRow{
				ID: t.ID, Name: t.Name, Prefix: t.Prefix, Role: t.Role, CreatedBy: t.CreatedByName,
				CreatedAt: t.CreatedAt.In(time.Local), RevokedBy: t.RevokedByName,
			}
			if !t.LastUsedAt.IsZero() {
				row.LastUsedAt = t.LastUsedAt.In(time.Local)
			}
			if t.Revoked() {
				row.RevokedAt = t.RevokedAt.In(time.Local)
			} else {
				row.RevokeURL = p.Chrome.URL("/admin/tokens/" + strconv.FormatInt(t.ID, 10) + "/revoke")
			}
			p.Tokens = append(p.Tokens, row)
		}
		return err
	})
	return p, err
}

func (s *Server) adminTokens(c echo.Context) error {
	p, err := s.tokensPage(c, views.AdminTokensPage{Chrome: s.chrome(c, "API tokens")})
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, views.AdminTokens(p))
}

// adminCreateToken creates a token and shows its secret, this once: the answer
// is the page itself (not a redirect), and is not stored by the browser.
func (s *Server) adminCreateToken(c echo.Context) error {
	name := c.FormValue("name")
	p := views.AdminTokensPage{Chrome: s.chrome(c, "API tokens")}
	status := http.StatusOK
	secret, info, err := s.Store.CreateToken(c.Request().Context(), currentAgent(c).ID, name)
	var invalid *store.InvalidError
	switch {
	case errors.As(err, &invalid):
		p.Error, p.FormName, status = invalid.Message, name, http.StatusUnprocessableEntity
	case err != nil:
		return err
	default:
		p.NewSecret, p.NewName = secret, info.Name
	}
	if p, err = s.tokensPage(c, p); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return s.render(c, status, views.AdminTokens(p))
}

func (s *Server) adminRevokeToken(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("tid"), 10, 64)
	if err != nil || id <= 0 {
		return echo.NewHTTPError(http.StatusNotFound, "No such API token.")
	}
	err = s.Store.RevokeToken(c.Request().Context(), currentAgent(c).ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "No such API token.")
	}
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, s.path("/admin/tokens"))
}

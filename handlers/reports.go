package handlers

import (
	"encoding/csv"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"sessiondesk/auth"
	"sessiondesk/report"
	"sessiondesk/store"
	"sessiondesk/views"
)

// The reports page (/reports) and the CSV of each of its tables
// (/reports/<table>.csv), for leads and admins. Both read the same filter
// from the query string: from and to (dates, YYYY-MM-DD, in the server's
// zone, both inclusive; the last 30 days when both are blank) and agent.

// reportDefaultDays is the range shown when no dates are given.
const reportDefaultDays = 30

// registerReports adds the reports routes to the signed-in group; Register calls it.
func (s *Server) registerReports(g *echo.Group) {
	r := g.Group("/reports", s.requireReports)
	r.GET("", s.reportsPage)
	r.GET("/:file", s.reportCSV)
}

// requireReports lets only leads and admins through; anyone else gets a 403
// that says why.
func (s *Server) requireReports(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if auth.ReadsReports(currentAgent(c).Role) {
			return next(c)
		}
		const msg = "Only leads and admins can open the reports. Ask an admin if you need them."
		if acceptsJSON(c) {
			return c.JSON(http.StatusForbidden, apiError{Code: "forbidden", Message: msg})
		}
		return echo.NewHTTPError(http.StatusForbidden, msg)
	}
}

// reportQuery is the reports' filter as the query string gives it.
type reportQuery struct {
	filter          store.ReportFilter
	from, to, agent string
	same            url.Values // the filter, for the CSV links
}

// parseReportQuery reads the filter; a value it cannot use is an
// *store.InvalidError. now is the store's clock reading, loc the zone of the days.
func parseReportQuery(c echo.Context, now time.Time, loc *time.Location) (reportQuery, error) {
	q := reportQuery{from: strings.TrimSpace(c.QueryParam("from")), to: strings.TrimSpace(c.QueryParam("to")),
		agent: strings.TrimSpace(c.QueryParam("agent")), same: url.Values{}}
	q.filter.Loc = loc
	invalid := func(field, msg string) (reportQuery, error) {
		return q, &store.InvalidError{Field: field, Message: msg}
	}
	today := now.In(loc)
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, loc)
	if q.from == "" && q.to == "" {
		q.to = today.Format(time.DateOnly)
		q.from = today.AddDate(0, 0, 1-reportDefaultDays).Format(time.DateOnly)
	}
	if q.from == "" || q.to == "" {
		return invalid("from", "Give both dates, or neither for the last 30 days.")
	}
	from, err := time.ParseInLocation(time.DateOnly, q.from, loc)
	if err != nil {
		return invalid("from", "Write the start date as YYYY-MM-DD.")
	}
	to, err := time.ParseInLocation(time.DateOnly, q.to, loc)
	if err != nil {
		return invalid("to", "Write the end date as YYYY-MM-DD.")
	}
	q.filter.From, q.filter.To = from, to.AddDate(0, 0, 1)
	q.same.Set("from", q.from)
	q.same.Set("to", q.to)
	if q.agent != "" {
		id, err := strconv.ParseInt(q.agent, 10, 64)
		if err != nil || id <= 0 {
			return invalid("agent", "The agent filter must be an agent's number.")
		}
		q.filter.AgentID = id
		q.same.Set("agent", q.agent)
	}
	return q, q.filter.Validate()
}

// zoneName names loc for the page: its name, or its abbreviation and offset now.
func zoneName(loc *time.Location, now time.Time) string {
	if n := loc.String(); n != "Local" && n != "" {
		return n
	}
	return now.In(loc).Format("MST (UTC-07:00)")
}

// reportsData reads the filter and, when it is valid, the report. A refused
// filter comes back as a *store.InvalidError in qerr, with err nil.
func (s *Server) reportsData(c echo.Context) (q reportQuery, agents []store.Agent, rep store.Report, qerr, err error) {
	ctx := c.Request().Context()
	loc := time.Local
	q, qerr = parseReportQuery(c, s.Store.Now(), loc)
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		var err error
		if agents, err = r.Agents(ctx); err != nil {
			return err
		}
		if qerr != nil {
			return nil
		}
		if q.filter.AgentID != 0 && !hasAgent(agents, q.filter.AgentID) {
			qerr = &store.InvalidError{Field: "agent", Message: "There is no agent number " + q.agent + "."}
			return nil
		}
		rep, err = r.Report(ctx, q.filter)
		var invalid *store.InvalidError
		if errors.As(err, &invalid) {
			qerr, err = err, nil
		}
		return err
	})
	return q, agents, rep, qerr, err
}

func hasAgent(agents []store.Agent, id int64) bool {
	for _, a := range agents {
		if a.ID == id {
			return true
		}
	}
	return false
}

func (s *Server) reportsPage(c echo.Context) error {
	q, agents, rep, qerr, err := s.reportsData(c)
	if err != nil {
		return err
	}
	p := views.ReportsPage{Chrome: s.chrome(c, "Reports"), From: q.from, To: q.to, Agent: q.agent,
		Zone: zoneName(time.Local, s.Store.Now()), Query: q.same.Encode()}
	for _, a := range agents {
		if strings.HasPrefix(a.Login, "token:") {
			continue // an API token's own row: it sends, but is no person to pick
		}
		id := strconv.FormatInt(a.ID, 10)
		p.Agents = append(p.Agents, views.Option{Value: id, Label: a.Name, Selected: id == q.agent})
	}
	status := http.StatusOK
	var invalid *store.InvalidError
	if errors.As(qerr, &invalid) {
		p.Error, status = invalid.Message, http.StatusBadRequest
	} else {
		currency := s.Store.Rates().Currency
		p.Tables, p.Charts = report.Tables(rep, currency), report.Charts(rep, currency)
	}
	return s.render(c, status, views.Reports(p))
}

// reportCSV streams one table of the reports page as CSV, with the page's
// filter: the same rows, every cell formula-neutralised like the audit export.
func (s *Server) reportCSV(c echo.Context) error {
	key, ok := strings.CutSuffix(c.Param("file"), ".csv")
	known := false
	for _, k := range report.Keys() {
		known = known || (ok && k == key)
	}
	if !known {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such report table; the tables are "+strings.Join(report.Keys(), ", ")+".")
	}
	_, _, rep, qerr, err := s.reportsData(c)
	if err != nil {
		return err
	}
	var invalid *store.InvalidError
	if errors.As(qerr, &invalid) {
		return echo.NewHTTPError(http.StatusBadRequest, invalid.Message)
	}
	var table report.Table
	for _, t := range report.Tables(rep, s.Store.Rates().Currency) {
		if t.Key == key {
			table = t
		}
	}
	res := c.Response()
	h := res.Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="sessiondesk-`+key+`.csv"`)
	res.WriteHeader(http.StatusOK)
	w := csv.NewWriter(res)
	rows := append([][]string{table.Columns}, table.Rows...)
	for _, row := range rows {
		cells := make([]string, len(row))
		for i, v := range row {
			cells[i] = csvCell(v)
		}
		if err := w.Write(cells); err != nil {
			return nil // the client went away
		}
	}
	w.Flush()
	return nil
}

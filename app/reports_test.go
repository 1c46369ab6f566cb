package app

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"sessiondesk/config"
	"sessiondesk/seed"
	"sessiondesk/session"
	"sessiondesk/store"
)

// Leads and admins open the reports and their CSV; agents get a 403 that
// says why, and no link to them.
func TestReportsOnlyForLeadsAndAdmins(t *testing.T) {
	ta := startSSOApp(t, map[string]string{"SESSIONDESK_AUTH": "header", "SESSIONDESK_AUTH_PRESET": "oauth2-proxy",
		"SESSIONDESK_TRUSTED_PROXIES": "127.0.0.1/32", "SESSIONDESK_ROLES": "admins=admin,leads=lead,support=agent"})
	as := func(login, group string) []string {
		return []string{"X-Forwarded-User", login, "X-Forwarded-Email", login + "@example.com", "X-Forwarded-Groups", group}
	}
	for _, tc := range []struct {
		login, group string
		want         int
	}{{"olga", "support", http.StatusForbidden}, {"lena", "leads", http.StatusOK}, {"ada", "admins", http.StatusOK}} {
		status, body := ta.get(t, "/reports", as(tc.login, tc.group)...)
		if status != tc.want {
			t.Errorf("%s (%s): /reports = %d, want %d", tc.login, tc.group, status, tc.want)
		}
		if tc.want == http.StatusForbidden && !strings.Contains(body, "Only leads and admins") {
			t.Errorf("the 403 does not say why: %.300s", body)
		}
		if status, _ := ta.get(t, "/reports/days.csv", as(tc.login, tc.group)...); status != tc.want {
			t.Errorf("%s (%s): /reports/days.csv = %d, want %d", tc.login, tc.group, status, tc.want)
		}
		_, inbox := ta.get(t, "/", as(tc.login, tc.group)...)
		if got := strings.Contains(inbox, `data-testid="reports-link"`); got != (tc.want == http.StatusOK) {
			t.Errorf("%s (%s): reports link shown = %v", tc.login, tc.group, got)
		}
	}
	// A lead is no admin.
	if status, _ := ta.get(t, "/admin", as("lena", "leads")...); status != http.StatusForbidden {
		t.Errorf("a lead opened /admin: %d", status)
	}
	// And still works conversations: the lead may send like an agent.
	if status, _ := ta.get(t, "/api/v1/conversations", as("lena", "leads")...); status != http.StatusOK {
		t.Errorf("a lead's conversations: %d", status)
	}
}

// seedMonth plays a seeded month ending the day before the app's clock.
func seedMonth(t *testing.T, ta *testApp, sessions int) (from, to string) {
	t.Helper()
	end := time.Date(t0.Year(), t0.Month(), t0.Day(), 0, 0, 0, 0, time.UTC)
	start := end.AddDate(0, 0, -30)
	if _, err := seed.Month(context.Background(), ta.Store, seed.Options{Seed: 7, Start: start, Days: 30, Sessions: sessions, Agents: 4}); err != nil {
		t.Fatal(err)
	}
	return start.Format(time.DateOnly), end.AddDate(0, 0, -1).Format(time.DateOnly)
}

// independent are the month's totals, by SQL written apart from the store's
// report: from the messages themselves, not from the facts the triggers keep.
type independent struct {
	sessions, opened, billed, rolled, lost, answered, unanswered int
	estimated, reported                                          float64
	priced                                                       int
	firstResponseMedian                                          float64 // minutes
}

func independentTotals(t *testing.T, ta *testApp, from, to time.Time) independent {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+ta.data+"/sessiondesk.db?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v independent
	lo, hi, now := from.UnixMilli(), to.UnixMilli(), ta.clock.Now().UnixMilli()
	err = db.QueryRow(`
		WITH s AS (
		  SELECT x.*,
		    EXISTS (SELECT 1 FROM messages m WHERE m.session_id = x.id AND m.direction = 'out' AND m.counted = 1) AS billed,
		    EXISTS (SELECT 1 FROM messages m WHERE m.session_id = x.id AND m.direction = 'out' AND m.counted = 1 AND m.kind <> 'text') AS media,
		    (SELECT m.direction FROM messages m WHERE m.session_id = x.id AND (m.direction = 'in' OR m.counted = 1)
		      ORDER BY m.id DESC LIMIT 1) AS last_dir
		  FROM sessions x WHERE x.started_at >= ? AND x.started_at < ?)
		SELECT count(*), total(opened_by = 'client'), total(billed), total(opened_by = 'rollover'),
		       total(ends_at <= ? AND last_dir = 'in'),
		       total(CASE WHEN NOT billed THEN 0 WHEN media THEN rate_media ELSE rate_text END)
		  FROM s`, lo, hi, now).Scan(&v.sessions, &v.opened, &v.billed, &v.rolled, &v.lost, &v.estimated)
	if err != nil {
		t.Fatal(err)
	}
	// What the provider reported: the prices of the sessions' messages.
	err = db.QueryRow(`
		SELECT total(m.price), count(DISTINCT m.session_id) FROM messages m JOIN sessions x ON x.id = m.session_id
		 WHERE x.started_at >= ? AND x.started_at < ? AND m.price IS NOT NULL`, lo, hi).Scan(&v.reported, &v.priced)
	if err != nil {
		t.Fatal(err)
	}
	// A client message is answered by the next counted business message of
	// its conversation when that went before its session ended.
	err = db.QueryRow(`
		SELECT total(a IS NOT NULL), total(a IS NULL) FROM (
		  SELECT (SELECT o.created_at FROM messages o WHERE o.conversation_id = m.conversation_id AND o.direction = 'out'
		            AND o.counted = 1 AND o.id > m.id ORDER BY o.id LIMIT 1) AS nxt,
		         (SELECT ends_at FROM sessions WHERE id = m.session_id) AS ends,
		         CASE WHEN (SELECT o.created_at FROM messages o WHERE o.conversation_id = m.conversation_id AND o.direction = 'out'
		            AND o.counted = 1 AND o.id > m.id ORDER BY o.id LIMIT 1) < (SELECT ends_at FROM sessions WHERE id = m.session_id)
		              THEN 1 END AS a
		    FROM messages m WHERE m.direction = 'in' AND m.created_at >= ? AND m.created_at < ?)`, lo, hi).Scan(&v.answered, &v.unanswered)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`
		SELECT (SELECT min(o.created_at) FROM messages o WHERE o.session_id = s.id AND o.direction = 'out' AND o.counted = 1)
		       - (SELECT min(i.created_at) FROM messages i WHERE i.session_id = s.id AND i.direction = 'in')
		  FROM sessions s WHERE s.started_at >= ? AND s.started_at < ? AND s.opened_by = 'client'`, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	var waits []int64
	for rows.Next() {
		var w sql.NullInt64
		if err := rows.Scan(&w); err != nil {
			t.Fatal(err)
		}
		if w.Valid {
			waits = append(waits, w.Int64)
		}
	}
	rows.Close()
	slices.Sort(waits)
	if len(waits) > 0 {
		v.firstResponseMedian = float64(waits[(len(waits)+1)/2-1]) / 60000
	}
	return v
}

// summary reads the page's summary table: figure -> value.
func summary(t *testing.T, page string) map[string]string {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	doc.Find(`[data-testid="report-summary"] tbody tr`).Each(func(_ int, tr *goquery.Selection) {
		out[strings.TrimSpace(tr.Find("th").Text())] = strings.TrimSpace(tr.Find("td").Text())
	})
	if len(out) == 0 {
		t.Fatalf("no summary on the page: %.500s", page)
	}
	return out
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return v
}

// The Done-when of issue 12: a seeded month shows on /reports the same
// totals as SQL written apart, its CSV parses to the same totals, and
// changing the rates afterwards leaves the month's figures as they were.
func TestReportsSeededMonthMatchIndependentSQL(t *testing.T) {
	ta := startApp(t, func(c *config.Config) { c.Rates = session.Rates{Text: 0.0085, Media: 0.017, Currency: "EUR"} })
	fromDay, toDay := seedMonth(t, ta, 600)
	from, _ := time.ParseInLocation(time.DateOnly, fromDay, time.Local)
	to, _ := time.ParseInLocation(time.DateOnly, toDay, time.Local)
	want := independentTotals(t, ta, from, to.AddDate(0, 0, 1))
	if want.sessions < 600 || want.lost == 0 || want.rolled == 0 || want.billed == 0 {
		t.Fatalf("the seeded month lacks variety: %+v", want)
	}
	q := "/reports?from=" + fromDay + "&to=" + toDay
	status, page := ta.get(t, q)
	if status != http.StatusOK {
		t.Fatalf("%s: %d %.300s", q, status, page)
	}
	got := summary(t, page)
	check := func(name string, wantV float64) {
		t.Helper()
		if v := atof(t, got[name]); math.Abs(v-wantV) > 1e-3 {
			t.Errorf("%s: page %v, SQL %v", name, v, wantV)
		}
	}
	check("Sessions started", float64(want.sessions))
	check("Opened by the client", float64(want.opened))
	check("Billed", float64(want.billed))
	check("Rolled over", float64(want.rolled))
	check("Ended unanswered (lost)", float64(want.lost))
	check("Estimated cost (EUR)", want.estimated)
	check("Reported cost (EUR)", want.reported)
	check("Sessions priced by the provider", float64(want.priced))
	if want.priced == 0 || want.priced >= want.billed || math.Abs(want.reported-want.estimated) < 0.01 {
		t.Errorf("the seeded prices lack variety: %d of %d billed sessions priced, %v reported against %v estimated",
			want.priced, want.billed, want.reported, want.estimated)
	}
	check("Client messages answered", float64(want.answered))
	check("Client messages not answered", float64(want.unanswered))
	if v := atof(t, got["First response, median (min)"]); math.Abs(v-want.firstResponseMedian) > 0.051 {
		t.Errorf("first response median: page %v, SQL %v", v, want.firstResponseMedian)
	}
	// With the days that are over kept (as the background does), the page
	// says the same to the last digit.
	if n, err := ta.Store.BuildReportDays(context.Background(), store.MaxReportDays); err != nil || n < 20 {
		t.Fatalf("kept %d days of the seeded month (%v), want most of them", n, err)
	}
	if _, kept := ta.get(t, q); !reflect.DeepEqual(summary(t, kept), got) {
		t.Errorf("with the days kept the summary is\n%v\nwithout\n%v", summary(t, kept), got)
	}

	// The per-day CSV adds up to the same totals.
	status, body := ta.get(t, "/reports/days.csv?from="+fromDay+"&to="+toDay)
	if status != http.StatusOK {
		t.Fatalf("days.csv: %d %s", status, body)
	}
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("days.csv does not parse: %v", err)
	}
	if len(records) != 31 {
		t.Errorf("days.csv has %d rows, want a header and 30 days", len(records))
	}
	sums := make([]float64, len(records[0]))
	for _, r := range records[1:] {
		for i := 1; i <= 5; i++ {
			sums[i] += atof(t, r[i])
		}
	}
	if sums[1] != float64(want.opened) || sums[2] != float64(want.billed) || sums[3] != float64(want.rolled) ||
		sums[4] != float64(want.lost) || math.Abs(sums[5]-want.estimated) > 1e-3 {
		t.Errorf("days.csv sums %v, want opened %d billed %d rolled %d lost %d cost %v", sums[1:6], want.opened, want.billed,
			want.rolled, want.lost, want.estimated)
	}

	// New rates: the month's figures stay (rates are frozen per session, S7).
	set := ta.Store.Settings()
	set.Rates = session.Rates{Text: 9, Media: 99, Currency: set.Rates.Currency}
	if err := ta.Store.SaveSettings(context.Background(), 0, set); err != nil {
		t.Fatal(err)
	}
	_, page = ta.get(t, q)
	if v := atof(t, summary(t, page)["Estimated cost (EUR)"]); math.Abs(v-want.estimated) > 1e-3 {
		t.Errorf("after a rate change the month costs %v, was %v", v, want.estimated)
	}
}

// Bad filters get a clear 400; an unknown table a 404; a hostile client
// name is exported as text, not as a formula.
func TestReportsRefuseBadInputAndNeutraliseCSV(t *testing.T) {
	ta := startApp(t)
	for _, tc := range []struct{ q, want string }{
		{"from=2026-13-01&to=2026-11-20", "Write the start date as YYYY-MM-DD."},
		{"from=2026-11-20&to=yesterday", "Write the end date as YYYY-MM-DD."},
		{"from=2026-11-20&to=2026-11-01", "The end date is before the start date."},
		{"from=2020-01-01&to=2026-11-01", "at most 366 days"},
		{"from=2026-11-20", "Give both dates"},
		{"from=2026-11-01&to=2026-11-20&agent=abc", "must be an agent"},
		{"from=2026-11-01&to=2026-11-20&agent=999", "There is no agent number 999."},
		{"from=" + strings.Repeat("9", 5000) + "&to=2026-11-20", "YYYY-MM-DD"},
	} {
		status, body := ta.get(t, "/reports?"+tc.q)
		if status != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("/reports?%.60s = %d, want 400 saying %q", tc.q, status, tc.want)
		}
		if status, _ := ta.get(t, "/reports/days.csv?"+tc.q); status != http.StatusBadRequest {
			t.Errorf("/reports/days.csv?%.60s = %d, want 400", tc.q, status)
		}
	}
	if status, _ := ta.get(t, "/reports/passwords.csv"); status != http.StatusNotFound {
		t.Errorf("an unknown table: %d, want 404", status)
	}
	if status, _ := ta.get(t, "/reports/days"); status != http.StatusNotFound {
		t.Errorf("a table without .csv: %d, want 404", status)
	}

	// A client whose name is a formula, answered (so billed) today.
	hostile := `=HYPERLINK("http://evil.example","<b>x</b>")`
	if _, err := ta.Store.ReceiveClientMessage(context.Background(), store.ClientMessage{Phone: "+375291234567", Name: hostile,
		Country: "BY", Kind: session.Text, Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	a, err := ta.Store.EnsureAgent(context.Background(), "local", "Local agent", "admin")
	if err != nil {
		t.Fatal(err)
	}
	var conv int64
	_ = ta.Store.Read(context.Background(), func(r *store.Reader) error {
		c, err := r.ConversationByPhone(context.Background(), "+375291234567")
		conv = c.ID
		return err
	})
	if _, err := ta.Store.AcceptBusinessMessages(context.Background(), store.BusinessSend{ConversationID: conv, AgentID: a.ID,
		Parts: []session.Part{{Kind: session.Text, Text: "hello"}}}); err != nil {
		t.Fatal(err)
	}
	status, body := ta.get(t, "/reports/top-conversations.csv")
	if status != http.StatusOK {
		t.Fatalf("top-conversations.csv: %d %s", status, body)
	}
	records, err := csv.NewReader(bytes.NewReader([]byte(body))).ReadAll()
	if err != nil || len(records) != 2 {
		t.Fatalf("top-conversations.csv: %v, %d rows: %s", err, len(records), body)
	}
	if records[1][1] != "'"+hostile {
		t.Errorf("the client's name is exported as %q, want it neutralised", records[1][1])
	}
	if _, page := ta.get(t, "/reports"); strings.Contains(page, "<b>x</b>") {
		t.Error("the client's name is on the page unescaped")
	}
}

package app

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	_ "github.com/mattn/go-sqlite3"

	"sessiondesk/channel"
	"sessiondesk/config"
	"sessiondesk/session"
	"sessiondesk/store"
)

// waitProviderID waits until the outbox handed message id to the provider
// and returns the provider's tracking id.
func waitProviderID(t *testing.T, st *store.Store, id int64) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var m store.Message
		_ = st.Read(context.Background(), func(r *store.Reader) error {
			var err error
			m, err = r.Message(context.Background(), id)
			return err
		})
		if m.ProviderID != "" {
			return m.ProviderID
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("message %d never reached the provider", id)
	return ""
}

// currentSession reads a conversation's latest session.
func currentSession(t *testing.T, st *store.Store, conv int64) session.Session {
	t.Helper()
	var ss []session.Session
	err := st.Read(context.Background(), func(r *store.Reader) error {
		var err error
		ss, err = r.Sessions(context.Background(), conv, 1)
		return err
	})
	if err != nil || len(ss) == 0 {
		t.Fatalf("sessions of %d: %v", conv, err)
	}
	return ss[0]
}

// The price Routee reports in its status callback lands on the session, over
// real HTTP from the fake Routee: once however often it is repeated, not at
// all from a callback without one or with one that is not a price, apart
// when in another currency; and the panel shows the estimate, the reported
// cost and the difference, each marked.
func TestRouteePriceReachesTheSession(t *testing.T) {
	ra := startRouteeApp(t, channel.OutboxOptions{Backoff: 50 * time.Millisecond, MaxBackoff: time.Second},
		func(c *config.Config, _ *Options) { c.Rates = session.Rates{Text: 0.02, Media: 0.05, Currency: "EUR"} })
	ctx := context.Background()
	ra.fake.SetPrices(map[string]float64{"BY": 0.03, "DE": 0.01}, "")
	conv := ra.clientWritesViaRoutee(t, "+375298603938", "Hello")
	first := ra.agentSends(t, conv, "Hi")
	tracking := waitProviderID(t, ra.Store, first)

	for _, status := range []string{"Delivered", "Delivered", "Seen", "Delivered"} {
		if err := ra.fake.ReportStatus(ctx, tracking, status, ""); err != nil {
			t.Fatalf("%s: %v", status, err)
		}
	}
	if r := currentSession(t, ra.Store, conv).Reported; r.Priced != 1 || r.Amount != 0.03 || r.Foreign != 0 {
		t.Fatalf("after four callbacks: %+v, want one price of 0.03", r)
	}

	// A callback without a price leaves the one stored.
	ra.fake.SetPrices(nil, "")
	if err := ra.fake.ReportStatus(ctx, tracking, "Seen", ""); err != nil {
		t.Fatal(err)
	}
	// A price that is not one: the status still counts, the price is ignored.
	second := ra.agentSends(t, conv, "And one more thing")
	tracking2 := waitProviderID(t, ra.Store, second)
	bad := `{"trackingId":"` + tracking2 + `","status":{"name":"Delivered"},"price":-4,"country":"BY"}`
	if status, body := ra.do(t, "POST", "/webhooks/routee/"+testWebhookSecret+"/status", "application/json", bad); status != 200 {
		t.Fatalf("negative price: %d %s", status, body)
	}
	waitStatus(t, ra.testApp, second, store.StatusDelivered)
	// A price in another currency: kept apart, not summed.
	ra.fake.SetPrices(map[string]float64{"BY": 2.5}, "USD")
	if err := ra.fake.ReportStatus(ctx, tracking2, "Seen", ""); err != nil {
		t.Fatal(err)
	}
	// A callback for a message nobody sent: answered, ignored.
	unknown := `{"trackingId":"no-such-message","label":"999999","status":{"name":"Delivered"},"price":9}`
	status, body := ra.do(t, "POST", "/webhooks/routee/"+testWebhookSecret+"/status", "application/json", unknown)
	if status != 200 || !bytes.Contains(body, []byte(`"ignored"`)) {
		t.Fatalf("unknown message: %d %s", status, body)
	}
	cur := currentSession(t, ra.Store, conv)
	if r := cur.Reported; r.Priced != 2 || r.Amount != 0.03 || r.Foreign != 1 {
		t.Fatalf("reported %+v, want 0.03 from one price and one USD price apart", r)
	}
	if cur.Cost() != 0.02 {
		t.Fatalf("estimate %v, want the frozen text rate 0.02", cur.Cost())
	}

	_, page := ra.do(t, "GET", "/c/"+strconv.FormatInt(conv, 10), "", "")
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for sel, want := range map[string]string{
		`[data-testid="session-cost"]`:      "0.02 EUR",
		`[data-testid="session-reported"]`:  "0.03 EUR",
		`[data-testid="session-cost-diff"]`: "+0.01 EUR",
		`[data-testid="session-foreign"]`:   "1 price not in the sum",
	} {
		if got := strings.Join(strings.Fields(doc.Find(sel).Text()), " "); got != want {
			t.Errorf("%s: %q, want %q", sel, got, want)
		}
	}
	panel := doc.Find(`[data-testid="session-cost"]`).Parent().Text()
	if !strings.Contains(panel, "estimate") {
		t.Errorf("the estimate is not marked as one: %q", panel)
	}
	if !strings.Contains(doc.Find(`[data-testid="session-reported"]`).Parent().Text(), "by the provider") {
		t.Error("the reported cost is not marked as the provider's")
	}
}

// sessionsCSV downloads the sessions export and parses it.
func sessionsCSV(t *testing.T, ta *testApp, query string) [][]string {
	t.Helper()
	status, body := ta.do(t, "GET", "/admin/sessions.csv?"+query, "", "")
	if status != 200 {
		t.Fatalf("export %s: %d %s", query, status, body)
	}
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("export %s does not parse: %v", query, err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != "conversation_id,client_phone,country,session_number,started_utc,"+
		"ended_utc,opened_by,messages_used,media,unanswered_end,estimated_cost,reported_cost,priced_messages,currency,first_agent" {
		t.Fatalf("header %v", recs)
	}
	return recs[1:]
}

// csvTotals sums the estimated and reported cost columns.
func csvTotals(t *testing.T, rows [][]string) (est, rep float64) {
	t.Helper()
	for _, r := range rows {
		e, err := strconv.ParseFloat(r[10], 64)
		if err != nil {
			t.Fatalf("estimated cost %q: %v", r[10], err)
		}
		est += e
		if r[11] != "" {
			v, err := strconv.ParseFloat(r[11], 64)
			if err != nil {
				t.Fatalf("reported cost %q: %v", r[11], err)
			}
			rep += v
		}
	}
	return est, rep
}

// sqlTotals computes the same totals from the database file, independently
// of the store's code: the estimate from the messages counted in each
// session and the rates stored on it, the reported cost from the prices on
// the messages, for sessions that started in [from, to).
func sqlTotals(t *testing.T, path string, from, to time.Time) (n int, est, rep float64) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.QueryRow(`
		SELECT count(*), coalesce(sum(est), 0), coalesce(sum(rep), 0) FROM (
		  SELECT
		    (SELECT CASE
		       WHEN count(*) = 0 THEN 0
		       WHEN s.rate_message IS NOT NULL THEN count(*) * s.rate_message
		       WHEN sum(m.kind <> 'text') > 0 THEN s.rate_media
		       ELSE s.rate_text END
		     FROM messages m WHERE m.session_id = s.id AND m.direction = 'out' AND m.counted = 1) AS est,
		    (SELECT coalesce(sum(m.price), 0) FROM messages m
		      WHERE m.session_id = s.id AND m.price IS NOT NULL AND m.price_currency = s.currency) AS rep
		  FROM sessions s WHERE s.started_at >= ? AND s.started_at < ?)`,
		from.UnixMilli(), to.UnixMilli()).Scan(&n, &est, &rep)
	if err != nil {
		t.Fatal(err)
	}
	return n, est, rep
}

// costTraffic seeds five days of sessions through the HTTP API and the
// sandbox: clients in three countries, prices reported for some messages,
// the rates changed on day 3. It returns the conversations by phone.
func costTraffic(t *testing.T, ta *testApp) map[string]int64 {
	t.Helper()
	convs := map[string]int64{}
	phones := []string{"+4915112345678", "+375298603938", "+33612345678", "+4915187654321"}
	day0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.Local)
	for d := range 5 {
		if d == 3 {
			saveCostSettings(t, ta, url.Values{"rate_text": {"0.5"}, "rate_media": {"0.9"},
				"country_rates": {"DE 0.3 0.6"}, "sender_country": {"DE"}, "rate_international": {"0.2"}})
		}
		for i, p := range phones {
			if (d+i)%3 == 2 {
				continue // some clients skip a day
			}
			ta.clock.Set(day0.AddDate(0, 0, d).Add(time.Duration(9+i) * time.Hour))
			conv := ta.clientWrites(t, p, "Hello on day "+strconv.Itoa(d))
			convs[p] = conv
			if i == 3 && d%2 == 0 {
				continue // nobody answers: an unanswered session, not billed
			}
			for k := range 1 + (d+i)%2 {
				status, body := ta.do(t, "POST", "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages",
					"application/json", `{"type":"text","text":"answer `+strconv.Itoa(k)+`"}`)
				if status != http.StatusCreated {
					t.Fatalf("send: %d %s", status, body)
				}
				var out struct {
					Message struct{ ID int64 } `json:"message"`
				}
				_ = json.Unmarshal(body, &out)
				// Handed over before the clock moves on, as in life: a day's
				// jump would otherwise make the outbox give up on it.
				tracking := waitProviderID(t, ta.Store, out.Message.ID)
				if (d+k)%2 == 0 {
					if _, err := ta.Store.RecordPrice(context.Background(), store.MessageRef{ProviderID: tracking},
						store.ReportedPrice{Amount: 0.011 * float64(1+i)}); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	// Well after the last session's end: every session is over.
	ta.clock.Set(day0.AddDate(0, 0, 7))
	return convs
}

func saveCostSettings(t *testing.T, ta *testApp, v url.Values) {
	t.Helper()
	form := url.Values{"window_hours": {"24"}, "max_per_session": {"60"}, "max_unanswered": {"5"},
		"after_cap": {"rollover"}, "text_max": {"1000"}, "rate_text": {"0.05"}, "rate_media": {"0.1"}, "currency": {"EUR"}}
	for k, vs := range v {
		form[k] = vs
	}
	status, body := ta.do(t, "POST", "/admin/settings", "application/x-www-form-urlencoded", form.Encode())
	if status != 200 || !bytes.Contains(body, []byte(`data-testid="settings-saved"`)) {
		t.Fatalf("save settings: %d %.500s", status, body)
	}
}

// The CSV export: one row per session, totals equal to an independent SQL
// query on the database, for the whole range and for date ranges whose edges
// fall on a session's start; phone numbers come out as text, not formulas;
// changing the rates leaves sessions billed before as they were.
func TestSessionsCSVMatchesSQL(t *testing.T) {
	ta := startApp(t, func(c *config.Config) {
		c.Rates = session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"}
		c.Costs.CountryRates = map[string]session.CountryRates{"BY": {Text: 0.07, Media: 0.12}}
	})
	convs := costTraffic(t, ta)
	path := ta.data + "/sessiondesk.db"

	all := sessionsCSV(t, ta, "")
	n, est, rep := sqlTotals(t, path, time.Unix(0, 0), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))
	gotEst, gotRep := csvTotals(t, all)
	if len(all) != n || math.Abs(gotEst-est) > 1e-9 || math.Abs(gotRep-rep) > 1e-9 {
		t.Fatalf("CSV: %d rows, %.6f estimated, %.6f reported; SQL: %d, %.6f, %.6f", len(all), gotEst, gotRep, n, est, rep)
	}
	if n < 12 || est == 0 || rep == 0 {
		t.Fatalf("the dataset is too thin to compare: %d sessions, %v, %v", n, est, rep)
	}
	var unanswered, billedAfterChange, perMessage int
	for _, r := range all {
		if !strings.HasPrefix(r[1], "'+") {
			t.Errorf("phone %q is not neutralised", r[1])
		}
		if r[9] == "true" {
			unanswered++
			if r[10] != "0" || r[14] != "" {
				t.Errorf("an unanswered session was billed: %v", r)
			}
		} else if r[14] == "" || r[13] != "EUR" {
			t.Errorf("a billed session lacks its first agent or currency: %v", r)
		}
		started, err := time.Parse(time.RFC3339, r[4])
		if err != nil || r[5] == "" {
			t.Fatalf("started %q, ended %q: %v", r[4], r[5], err)
		}
		// Day 3 on: the new rates (DE 0.3, BY international 0.2 a message, FR 0.5 a session).
		if !started.Before(time.Date(2026, 11, 23, 0, 0, 0, 0, time.Local)) && r[9] == "false" {
			billedAfterChange++
			used, _ := strconv.Atoi(r[7])
			want := map[string]float64{"DE": 0.3, "FR": 0.2 * float64(used), "BY": 0.2 * float64(used)}[r[2]]
			if got, _ := strconv.ParseFloat(r[10], 64); math.Abs(got-want) > 1e-9 {
				t.Errorf("billed after the change, %s: %v, want %v", r[2], got, want)
			}
			if r[2] != "DE" {
				perMessage++
			}
		} else if r[9] == "false" {
			want := map[string]float64{"DE": 0.05, "FR": 0.05, "BY": 0.07}[r[2]]
			if got, _ := strconv.ParseFloat(r[10], 64); got != want {
				t.Errorf("billed before the change, %s: %v, want the old rate %v", r[2], got, want)
			}
		}
	}
	if unanswered == 0 || billedAfterChange == 0 || perMessage == 0 {
		t.Fatalf("the dataset misses a case: %d unanswered, %d billed after the change, %d per message",
			unanswered, billedAfterChange, perMessage)
	}
	if len(convs) != 4 {
		t.Fatalf("%d conversations", len(convs))
	}
	// The contact's session history shows each earlier session's reported
	// cost beside its estimate, in the page and in the API.
	de := convs["+4915112345678"]
	_, page := ta.do(t, "GET", "/c/"+strconv.FormatInt(de, 10), "", "")
	doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(page))
	past := doc.Find(`[data-testid="past-session-reported"]`)
	if past.Length() == 0 || !strings.Contains(past.First().Text(), "EUR") {
		t.Errorf("no reported cost in the session history: %q", past.Text())
	}
	if doc.Find(`[data-testid="past-session-cost-diff"]`).Length() == 0 {
		t.Error("a past session priced unlike its estimate shows no difference")
	}
	// The Belarusian client's last session was billed after the change, per message.
	_, page = ta.do(t, "GET", "/c/"+strconv.FormatInt(convs["+375298603938"], 10), "", "")
	if !bytes.Contains(page, []byte(`data-testid="session-per-message"`)) {
		t.Error("the international client's session is not marked as billed per message")
	}
	_, body := ta.do(t, "GET", "/api/v1/conversations/"+strconv.FormatInt(de, 10), "", "")
	var apiConv struct {
		Sessions []struct {
			Cost         float64  `json:"cost"`
			ReportedCost *float64 `json:"reported_cost"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(body, &apiConv); err != nil {
		t.Fatal(err)
	}
	priced := 0
	for _, s := range apiConv.Sessions {
		if s.ReportedCost != nil {
			priced++
		}
	}
	if priced == 0 {
		t.Errorf("no reported cost in the API's session history: %s", body)
	}

	// Date ranges: both ends inclusive, in the server's zone.
	day := func(d int) time.Time { return time.Date(2026, 11, 20+d, 0, 0, 0, 0, time.Local) }
	for _, tc := range []struct{ from, to string }{
		{"2026-11-21", "2026-11-21"},
		{"2026-11-21", "2026-11-23"},
		{"2026-11-23", ""},
		{"", "2026-11-20"},
		{"2026-11-25", "2026-11-30"}, // nothing
	} {
		q := url.Values{}
		lo, hi := time.Unix(0, 0), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
		if tc.from != "" {
			q.Set("from", tc.from)
			d, _ := time.ParseInLocation(time.DateOnly, tc.from, time.Local)
			lo = d
		}
		if tc.to != "" {
			q.Set("to", tc.to)
			d, _ := time.ParseInLocation(time.DateOnly, tc.to, time.Local)
			hi = d.AddDate(0, 0, 1)
		}
		rows := sessionsCSV(t, ta, q.Encode())
		n, est, rep := sqlTotals(t, path, lo, hi)
		gotEst, gotRep := csvTotals(t, rows)
		if len(rows) != n || math.Abs(gotEst-est) > 1e-9 || math.Abs(gotRep-rep) > 1e-9 {
			t.Errorf("%+v: CSV %d rows %.6f/%.6f; SQL %d %.6f/%.6f", tc, len(rows), gotEst, gotRep, n, est, rep)
		}
	}
	// A session that starts at midnight belongs to that day, not the one before.
	ta.clock.Set(day(9))
	ta.clientWrites(t, "+4915100000009", "At midnight")
	if rows := sessionsCSV(t, ta, "from=2026-11-29&to=2026-11-29"); len(rows) != 1 {
		t.Errorf("the midnight session on its day: %d rows", len(rows))
	}
	if rows := sessionsCSV(t, ta, "from=2026-11-28&to=2026-11-28"); len(rows) != 0 {
		t.Errorf("the midnight session on the day before: %d rows", len(rows))
	}
}

// GET /api/v1/sessions pages through the same rows as the CSV, by keyset,
// without a miss or a repeat, and refuses bad input with a clear error.
func TestSessionsAPIKeysetAndBadInput(t *testing.T) {
	ta := startApp(t, func(c *config.Config) { c.Rates = session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"} })
	costTraffic(t, ta)
	all := sessionsCSV(t, ta, "from=2026-11-20&to=2026-11-24")

	type row struct {
		ConversationID int64    `json:"conversation_id"`
		Phone          string   `json:"client_phone"`
		Number         int      `json:"session_number"`
		EstimatedCost  float64  `json:"estimated_cost"`
		ReportedCost   *float64 `json:"reported_cost"`
	}
	var got []row
	cursor, pages := "", 0
	for {
		status, body := ta.do(t, "GET", "/api/v1/sessions?from=2026-11-20&to=2026-11-24&limit=3&cursor="+url.QueryEscape(cursor), "", "")
		if status != 200 {
			t.Fatalf("page %d: %d %s", pages, status, body)
		}
		var page struct {
			Sessions   []row  `json:"sessions"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Sessions...)
		pages++
		if page.NextCursor == "" {
			break
		}
		if len(page.Sessions) != 3 || pages > 100 {
			t.Fatalf("page %d has %d rows and a next cursor", pages, len(page.Sessions))
		}
		cursor = page.NextCursor
		if pages == 2 {
			// A session started meanwhile (now, after the range) changes nothing.
			ta.clientWrites(t, "+4915100000001", "Late")
		}
	}
	if len(got) != len(all) {
		t.Fatalf("the API gave %d sessions in %d pages, the CSV %d", len(got), pages, len(all))
	}
	seen := map[string]bool{}
	for i, r := range got {
		key := strconv.FormatInt(r.ConversationID, 10) + "/" + strconv.Itoa(r.Number)
		if seen[key] {
			t.Errorf("session %s twice", key)
		}
		seen[key] = true
		csvRow := all[i]
		if csvRow[0] != strconv.FormatInt(r.ConversationID, 10) || csvRow[3] != strconv.Itoa(r.Number) ||
			csvRow[1] != "'"+r.Phone || csvRow[10] != strconv.FormatFloat(r.EstimatedCost, 'f', -1, 64) {
			t.Errorf("row %d: API %+v, CSV %v", i, r, csvRow)
		}
		if (r.ReportedCost == nil) != (csvRow[11] == "") {
			t.Errorf("row %d: reported %v in the API, %q in the CSV", i, r.ReportedCost, csvRow[11])
		}
	}

	for _, q := range []string{
		"from=2026-13-01", "from=yesterday", "to=2026-02-30", "from=2026-11-24&to=2026-11-20",
		"limit=100000", "limit=0", "limit=-1", "limit=ten", "cursor=abc", "cursor=1.-5",
		"from=" + strings.Repeat("9", 5000),
	} {
		status, body := ta.do(t, "GET", "/api/v1/sessions?"+q, "", "")
		if status != http.StatusUnprocessableEntity {
			t.Errorf("%.40s: %d %s, want 422", q, status, body)
			continue
		}
		if e := decodeError(t, body); e.Code != "invalid" || len(e.Message) > 200 {
			t.Errorf("%.40s: %+v", q, e)
		}
		if status, _ := ta.do(t, "GET", "/admin/sessions.csv?"+q, "", ""); strings.HasPrefix(q, "limit") && status != 200 ||
			!strings.HasPrefix(q, "limit") && status != http.StatusUnprocessableEntity {
			t.Errorf("CSV %.40s: %d", q, status)
		}
	}
}

// The monthly budget: admins see the month's spend against it in the header;
// at 80 % and 100 % every page warns, and each threshold is logged once.
func TestBudgetWarnsOncePerThreshold(t *testing.T) {
	ta := startApp(t, func(c *config.Config) {
		c.Rates = session.Rates{Text: 0.02, Media: 0.05, Currency: "EUR"}
		c.Costs.MonthlyBudget = 0.1
	})
	budgetAudits := func() int {
		var n int
		_ = ta.Store.Read(context.Background(), func(r *store.Reader) error {
			es, err := r.Audit(context.Background(), store.AuditFilter{Action: store.AuditBudget})
			n = len(es)
			return err
		})
		return n
	}
	page := func(path string) *goquery.Document {
		t.Helper()
		status, body := ta.do(t, "GET", path, "", "")
		if status != 200 {
			t.Fatalf("%s: %d", path, status)
		}
		doc, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	bill := func(phone string) {
		conv := ta.clientWrites(t, phone, "Hello")
		if status, body := ta.do(t, "POST", "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages",
			"application/json", `{"type":"text","text":"Hi"}`); status != http.StatusCreated {
			t.Fatalf("send: %d %s", status, body)
		}
	}
	for i := range 3 {
		bill("+37529860393" + strconv.Itoa(i))
	}
	doc := page("/admin")
	if got := strings.Join(strings.Fields(doc.Find(`[data-testid="budget-meter"]`).Text()), " "); got != "0.06 EUR / 0.10 (60%)" {
		t.Errorf("meter at 60%%: %q", got)
	}
	if doc.Find(`[data-testid="budget-warning"]`).Length() != 0 || budgetAudits() != 0 {
		t.Fatal("a warning below 80%")
	}
	bill("+375298603935") // 0.08: 80 %
	// The send that crossed it logged it, before any page was opened.
	if n := budgetAudits(); n != 1 {
		t.Fatalf("%d budget events right after the send that reached 80%%, want 1", n)
	}
	for _, path := range []string{"/admin", "/", "/admin/audit", "/admin/settings"} {
		w := page(path).Find(`[data-testid="budget-warning"]`)
		if w.Length() != 1 || !strings.Contains(w.Text(), "80%") {
			t.Errorf("%s: warning %q", path, w.Text())
		}
	}
	if n := budgetAudits(); n != 1 {
		t.Fatalf("%d budget events at 80%%, want 1", n)
	}
	bill("+375298603936") // 0.10: 100 %
	page("/")
	page("/admin")
	w := page("/admin").Find(`[data-testid="budget-warning"]`)
	if !strings.Contains(w.Text(), "Budget reached") {
		t.Errorf("at 100%%: %q", w.Text())
	}
	if n := budgetAudits(); n != 2 {
		t.Fatalf("%d budget events after 100%%, want 2 (one per threshold)", n)
	}
	// Reported prices replace the estimates: below 80 % again, no warning.
	var ids []int64
	_ = ta.Store.Read(context.Background(), func(r *store.Reader) error {
		rows, err := r.SessionRows(context.Background(), store.SessionFilter{})
		for _, row := range rows {
			msgs, _ := r.Messages(context.Background(), row.ConversationID, 10)
			for _, m := range msgs {
				if m.Direction == "out" {
					ids = append(ids, m.ID)
				}
			}
		}
		return err
	})
	for _, id := range ids {
		if _, err := ta.Store.RecordPrice(context.Background(), store.MessageRef{ID: id}, store.ReportedPrice{Amount: 0.01}); err != nil {
			t.Fatal(err)
		}
	}
	if page("/admin").Find(`[data-testid="budget-warning"]`).Length() != 0 {
		t.Error("a warning at 50% of the budget by the reported prices")
	}
}

// The cost settings refuse what they cannot use, say why, and keep what was
// in force; a form without the cost fields (an older page) keeps them too.
func TestCostSettingsRefuseBadInput(t *testing.T) {
	ta := startApp(t, func(c *config.Config) {
		c.Rates = session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"}
		c.Costs.MonthlyBudget = 50
	})
	base := url.Values{"window_hours": {"24"}, "max_per_session": {"60"}, "max_unanswered": {"5"},
		"after_cap": {"rollover"}, "text_max": {"1000"}, "rate_text": {"0.05"}, "rate_media": {"0.1"}, "currency": {"EUR"}}
	for field, value := range map[string]string{
		"country_rates":      "DE 0.3",
		"monthly_budget":     "-1",
		"rate_international": "cheap",
		"sender_country":     "Germany",
	} {
		form := url.Values{}
		for k, v := range base {
			form[k] = v
		}
		form.Set(field, value)
		status, body := ta.do(t, "POST", "/admin/settings", "application/x-www-form-urlencoded", form.Encode())
		doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(body))
		if msg := doc.Find(`[data-testid="settings-error"]`).Text(); status != http.StatusUnprocessableEntity || msg == "" {
			t.Errorf("%s=%q: %d %q", field, value, status, msg)
		}
	}
	for _, lines := range []string{"XYZ 1 2", "DE 1 2\nde 3 4", "DE -1 2"} {
		form := url.Values{}
		for k, v := range base {
			form[k] = v
		}
		form.Set("country_rates", lines)
		if status, _ := ta.do(t, "POST", "/admin/settings", "application/x-www-form-urlencoded", form.Encode()); status != http.StatusUnprocessableEntity {
			t.Errorf("country rates %q: %d", lines, status)
		}
	}
	saveCostSettings(t, ta, url.Values{"rate_text": {"0.06"}}) // no cost fields at all
	if set := ta.Store.Settings(); set.MonthlyBudget != 50 || set.CountryRates != nil || set.Rates.Text != 0.06 {
		t.Fatalf("after refusals and a save without cost fields: %+v", set)
	}
	saveCostSettings(t, ta, url.Values{"country_rates": {"de 0.02 0.04\r\n\r\nBY, 0.03, 0.05"}, "monthly_budget": {""}})
	set := ta.Store.Settings()
	if set.MonthlyBudget != 0 || set.CountryRates["DE"] != (session.CountryRates{Text: 0.02, Media: 0.04}) ||
		set.CountryRates["BY"] != (session.CountryRates{Text: 0.03, Media: 0.05}) {
		t.Fatalf("saved: %+v", set)
	}
	_, body := ta.do(t, "GET", "/admin/settings", "", "")
	doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if got := doc.Find(`[data-testid="settings-country-rates"]`).Text(); got != "BY 0.03 0.05\nDE 0.02 0.04" {
		t.Errorf("the form shows %q", got)
	}
}

// With prices set for the sandbox, the whole path runs locally: the outbox
// sends to the in-process fake Routee over HTTP, the phone shows the message,
// the fake posts Delivered with the price of the client's country to the
// status webhook, and the session has its reported cost.
func TestSandboxReportsPrices(t *testing.T) {
	ta := startApp(t, func(c *config.Config) {
		c.Rates = session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"}
		c.Costs.SandboxPrices = map[string]float64{"BY": 0.04, "": 0.06}
	})
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	msgs, err := ta.Store.AcceptBusinessMessages(context.Background(), store.BusinessSend{
		ConversationID: conv, Parts: []session.Part{{Kind: session.Text, Text: "Hi Olga"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ta, msgs[0].ID, store.StatusSent)
	if status, _ := ta.do(t, "GET", "/sandbox?phone=%2B375298603938", "", ""); status != 200 {
		t.Fatalf("sandbox page: %d", status)
	}
	waitStatus(t, ta, msgs[0].ID, store.StatusDelivered)
	if r := currentSession(t, ta.Store, conv).Reported; r.Priced != 1 || r.Amount != 0.04 {
		t.Fatalf("reported %+v, want the BY price 0.04", r)
	}
	if status, _ := ta.do(t, "POST", "/sandbox/messages/"+strconv.FormatInt(msgs[0].ID, 10)+"/seen", "", ""); status != http.StatusNoContent {
		t.Fatalf("seen: %d", status)
	}
	waitStatus(t, ta, msgs[0].ID, store.StatusSeen)
	if r := currentSession(t, ta.Store, conv).Reported; r.Priced != 1 || r.Amount != 0.04 {
		t.Fatalf("after Seen: %+v, want still 0.04 (a repeated price counts once)", r)
	}
}

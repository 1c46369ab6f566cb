package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"sessiondesk/seed"
	"sessiondesk/store"
)

// A lead's view of a seeded month in a real browser: the server-drawn charts
// show (with the page's strict CSP, no script of theirs), and choosing an
// agent narrows the figures and the CSV links to that agent.
func TestReportsPageChartsAndAgentFilter(t *testing.T) {
	ta := startApp(t, appOptions{})
	end := time.Date(t0.Year(), t0.Month(), t0.Day(), 0, 0, 0, 0, time.UTC)
	if _, err := seed.Month(t.Context(), ta.Store, seed.Options{Seed: 2, Start: end.AddDate(0, 0, -30), Days: 30, Sessions: 200, Agents: 3}); err != nil {
		t.Fatal(err)
	}
	var agents []store.Agent
	if err := ta.Store.Read(t.Context(), func(r *store.Reader) error {
		var err error
		agents, err = r.Agents(t.Context())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	anna := agents[0] // by name: Anna Kowalska
	tb := newTab(t, tabOptions{})
	tb.open(ta.base + "/reports")
	tb.waitFor("the charts", `document.querySelectorAll('[data-testid="report-chart"] svg').length === 7`)
	if w := eval[float64](tb, `document.querySelector('[data-testid="report-chart"] svg').getBoundingClientRect().width`); w < 200 {
		t.Errorf("the first chart is %v px wide", w)
	}
	if n := eval[int](tb, `document.querySelectorAll('[data-testid="report-chart"] svg .chart-bar').length`); n == 0 {
		t.Error("no bars drawn")
	}
	billed := func() int {
		v := eval[string](tb, `[...document.querySelectorAll('[data-testid="report-summary"] tbody tr')]
			.find(r => r.querySelector('th').textContent.trim() === 'Billed').querySelector('td').textContent.trim()`)
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("billed %q", v)
		}
		return n
	}
	all := billed()
	tb.do("choose Anna and show", chromedp.SetValue(chromedp.CSS(`[data-testid="reports-agent"]`), strconv.FormatInt(anna.ID, 10)),
		chromedp.Click(chromedp.CSS(`.reports-filter button[type="submit"]`)))
	// Poll from here, across the navigation (a page-side poll does not survive it).
	want := "agent=" + strconv.FormatInt(anna.ID, 10)
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(pollInterval) {
		got, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.readyState === 'complete' ? location.search : ''`))
		if err == nil && strings.Contains(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the form did not open Anna's report: %q (%v)", got, err)
		}
	}
	tb.waitFor("the charts again", `document.querySelectorAll('[data-testid="report-chart"] svg').length === 7`)
	if mine := billed(); mine == 0 || mine >= all {
		t.Errorf("Anna billed %d of %d sessions: want some, not all", mine, all)
	}
	href := eval[string](tb, `document.querySelector('[data-testid="csv-days"]').getAttribute('href')`)
	if !strings.Contains(href, "agent="+strconv.FormatInt(anna.ID, 10)) || !strings.Contains(href, "from=") {
		t.Errorf("the CSV link %q does not carry the filter", href)
	}
}

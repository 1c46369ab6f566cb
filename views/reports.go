package views

import (
	"sessiondesk/report"
	"sessiondesk/views/chart"
)

// ReportsPage is the reports page (/reports): the filter form, and the
// figures when the filter is valid.
type ReportsPage struct {
	Chrome Chrome
	// From, To and Agent are the form's values as given (dates YYYY-MM-DD,
	// both inclusive; agent an id or "").
	From, To, Agent string
	Agents          []Option
	// Error is why the filter was refused; then there are no figures.
	Error string
	// Zone names the zone the days are in.
	Zone   string
	Tables []report.Table
	Charts []chart.Chart
	// Query is the filter as a query string, for the CSV links.
	Query string
}

// chartAt returns the i-th chart, so the page can place them by position.
func (p ReportsPage) chartAt(i int) chart.Chart {
	if i < len(p.Charts) {
		return p.Charts[i]
	}
	return chart.Chart{}
}

// table returns the table with key.
func (p ReportsPage) table(key string) (report.Table, bool) {
	for _, t := range p.Tables {
		if t.Key == key {
			return t, true
		}
	}
	return report.Table{}, false
}

func (p ReportsPage) csvURL(key string) string {
	u := p.Chrome.URL("/reports/" + key + ".csv")
	if p.Query != "" {
		u += "?" + p.Query
	}
	return u
}

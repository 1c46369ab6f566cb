// Package report turns a store.Report into what the reports page shows and
// exports: tables (the same rows on the page and in each table's CSV) and
// charts. It decides the wording and the number formats, nothing else.
package report

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"sessiondesk/store"
	"sessiondesk/views/chart"
)

// Table is one table of the reports page; Key names its CSV export
// (/reports/<key>.csv).
type Table struct {
	Key     string
	Title   string
	Note    string // how the figures are counted, under the title
	Columns []string
	Rows    [][]string
}

// The tables, in page order.
const (
	KeySummary    = "summary"
	KeyDays       = "days"
	KeyCountries  = "countries"
	KeyAgents     = "agents"
	KeyKinds      = "kinds"
	KeyResponses  = "responses"
	KeyPerSession = "messages-per-session"
	KeyTop        = "top-conversations"
)

// Keys lists every table's key, in page order.
func Keys() []string {
	return []string{KeySummary, KeyDays, KeyCountries, KeyAgents, KeyKinds, KeyResponses, KeyPerSession, KeyTop}
}

// money writes an amount with four decimals: session rates are often
// fractions of a cent.
func money(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }

// reported writes the reported amount, empty while the provider priced nothing.
func reported(m store.Money) string {
	if m.ReportedSessions == 0 {
		return ""
	}
	return money(m.Reported)
}

// minutes writes a duration in minutes with one decimal, empty for none.
func minutes(p store.Percentiles, d time.Duration) string {
	if p.Count == 0 {
		return ""
	}
	return strconv.FormatFloat(d.Minutes(), 'f', 1, 64)
}

// share writes part of all as a percentage with one decimal.
func share(part, all int) string {
	if all == 0 {
		return ""
	}
	return strconv.FormatFloat(100*float64(part)/float64(all), 'f', 1, 64)
}

func itoa(n int) string { return strconv.Itoa(n) }

// dayLabel is a day as the tables write it.
func dayLabel(d time.Time) string { return d.Format(time.DateOnly) }

// Tables returns every table of rep, in page order, currency naming the money columns.
func Tables(rep store.Report, currency string) []Table {
	cur := func(s string) string { return s + " (" + currency + ")" }
	out := []Table{
		{
			Key: KeySummary, Title: "Summary", Columns: []string{"Figure", "Value"},
			Rows: [][]string{
				{"Sessions started", itoa(rep.Sessions)},
				{"Opened by the client", itoa(rep.Opened)},
				{"Billed", itoa(rep.Billed)},
				{"Rolled over", itoa(rep.RolledOver)},
				{"Ended unanswered (lost)", itoa(rep.Lost)},
				{cur("Estimated cost"), money(rep.Cost.Estimated)},
				{cur("Reported cost"), reported(rep.Cost)},
				{"Sessions priced by the provider", itoa(rep.Cost.ReportedSessions)},
				{"First response, median (min)", minutes(rep.FirstResponse, rep.FirstResponse.Median)},
				{"First response, 90th percentile (min)", minutes(rep.FirstResponse, rep.FirstResponse.P90)},
				{"Client messages answered", itoa(rep.Responses.Count)},
				{"Client messages not answered", itoa(rep.Unanswered)},
				{"Response time, median (min)", minutes(rep.Responses, rep.Responses.Median)},
				{"Response time, 90th percentile (min)", minutes(rep.Responses, rep.Responses.P90)},
				{fmt.Sprintf("Billed sessions that hit the unanswered limit (%d) (%%)", rep.MaxUnanswered), share(rep.HitLimit, rep.Billed)},
				{fmt.Sprintf("Billed sessions that reached the cap (%d) (%%)", rep.MaxPerSession), share(rep.ReachedCap, rep.Billed)},
			},
		},
	}
	days := Table{Key: KeyDays, Title: "Per day",
		Note: "Sessions by the day they started. Lost: over, with the client's last message unanswered. First response: from the client message that opened the session to its first business message.",
		Columns: []string{"Day", "Opened", "Billed", "Rolled over", "Lost", cur("Estimated cost"), cur("Reported cost"),
			"First response median (min)", "First response p90 (min)", "Sessions answered"}}
	for _, d := range rep.Days {
		days.Rows = append(days.Rows, []string{dayLabel(d.Day), itoa(d.Opened), itoa(d.Billed), itoa(d.RolledOver), itoa(d.Lost),
			money(d.Cost.Estimated), reported(d.Cost), minutes(d.FirstResponse, d.FirstResponse.Median),
			minutes(d.FirstResponse, d.FirstResponse.P90), itoa(d.FirstResponse.Count)})
	}
	countries := Table{Key: KeyCountries, Title: "Cost per country", Note: "Billed sessions by the client's country (from the number).",
		Columns: []string{"Country", "Billed sessions", cur("Estimated cost"), cur("Reported cost")}}
	for _, r := range rep.Countries {
		countries.Rows = append(countries.Rows, []string{orUnknown(r.Key), itoa(r.Sessions), money(r.Cost.Estimated), reported(r.Cost)})
	}
	agents := Table{Key: KeyAgents, Title: "Per agent", Note: "A session is put down to the agent who sent its first business message.",
		Columns: []string{"Agent", "Billed sessions", cur("Estimated cost"), cur("Reported cost"),
			"First response median (min)", "First response p90 (min)", "Sessions answered"}}
	for _, r := range rep.Agents {
		name := r.Key
		if r.AgentID == 0 {
			name = "(no agent: an integration)"
		}
		agents.Rows = append(agents.Rows, []string{name, itoa(r.Sessions), money(r.Cost.Estimated), reported(r.Cost),
			minutes(r.FirstResponse, r.FirstResponse.Median), minutes(r.FirstResponse, r.FirstResponse.P90), itoa(r.FirstResponse.Count)})
	}
	kinds := Table{Key: KeyKinds, Title: "Text-only and media sessions", Note: "A session is billed the media rate once any image or file was sent in it.",
		Columns: []string{"Sessions", "Billed sessions", cur("Estimated cost"), cur("Reported cost")}}
	for _, r := range rep.Kinds {
		label := "Text only"
		if r.Key == "media" {
			label = "With media"
		}
		kinds.Rows = append(kinds.Rows, []string{label, itoa(r.Sessions), money(r.Cost.Estimated), reported(r.Cost)})
	}
	responses := Table{Key: KeyResponses, Title: "Response time of every answered client message",
		Note:    "From a client message's arrival to the first business message after it, sent before its session ended.",
		Columns: []string{"Answered within", "Client messages"}}
	for _, b := range rep.ResponseBuckets {
		responses.Rows = append(responses.Rows, []string{b.Label, itoa(b.Count)})
	}
	perSession := Table{Key: KeyPerSession, Title: "Messages per billed session", Note: "Business messages counted in each billed session.",
		Columns: []string{"Business messages", "Billed sessions"}}
	for _, b := range rep.PerSession {
		perSession.Rows = append(perSession.Rows, []string{b.Label, itoa(b.Count)})
	}
	top := Table{Key: KeyTop, Title: fmt.Sprintf("The %d most expensive conversations", store.TopConversations),
		Note:    "By the reported price where there is one, else the estimate.",
		Columns: []string{"Conversation", "Client", "Phone", "Country", "Billed sessions", cur("Estimated cost"), cur("Reported cost")}}
	for _, t := range rep.Top {
		top.Rows = append(top.Rows, []string{strconv.FormatInt(t.ConversationID, 10), t.Name, t.Phone, orUnknown(t.Country),
			itoa(t.Sessions), money(t.Cost.Estimated), reported(t.Cost)})
	}
	return append(out, days, countries, agents, kinds, responses, perSession, top)
}

func orUnknown(country string) string {
	if country == "" {
		return "unknown"
	}
	return country
}

// Charts returns the page's charts: sessions, cost and first response per
// day, cost per country and per agent, and the two distributions.
func Charts(rep store.Report, currency string) []chart.Chart {
	var labels []string
	var opened, billed, rolled, lost, est, rep2, med, p90 []float64
	for _, d := range rep.Days {
		labels = append(labels, d.Day.Format("Jan 2"))
		opened = append(opened, float64(d.Opened))
		billed = append(billed, float64(d.Billed))
		rolled = append(rolled, float64(d.RolledOver))
		lost = append(lost, float64(d.Lost))
		est = append(est, d.Cost.Estimated)
		rep2 = append(rep2, d.Cost.Reported)
		if d.FirstResponse.Count == 0 {
			med, p90 = append(med, math.NaN()), append(p90, math.NaN()) // no answered session: a gap, not a zero
		} else {
			med = append(med, d.FirstResponse.Median.Minutes())
			p90 = append(p90, d.FirstResponse.P90.Minutes())
		}
	}
	moneyFmt := func(v float64) string { return chart.Number(v) + " " + currency }
	cost := []chart.Series{{Name: "estimated", Values: est}}
	if rep.Cost.ReportedSessions > 0 {
		cost = append(cost, chart.Series{Name: "reported", Values: rep2})
	}
	breakdown := func(rows []store.ReportRow, name func(store.ReportRow) string) ([]string, []chart.Series) {
		var l []string
		e, r := chart.Series{Name: "estimated"}, chart.Series{Name: "reported"}
		for _, row := range rows {
			l = append(l, name(row))
			e.Values = append(e.Values, row.Cost.Estimated)
			r.Values = append(r.Values, row.Cost.Reported)
		}
		if rep.Cost.ReportedSessions > 0 {
			return l, []chart.Series{e, r}
		}
		return l, []chart.Series{e}
	}
	countryLabels, countrySeries := breakdown(rep.Countries, func(r store.ReportRow) string { return orUnknown(r.Key) })
	agentLabels, agentSeries := breakdown(rep.Agents, func(r store.ReportRow) string {
		if r.AgentID == 0 {
			return "(none)"
		}
		return r.Key
	})
	dist := func(bs []store.Bucket, name string) ([]string, []chart.Series) {
		s := chart.Series{Name: name}
		var l []string
		for _, b := range bs {
			l = append(l, b.Label)
			s.Values = append(s.Values, float64(b.Count))
		}
		return l, []chart.Series{s}
	}
	respLabels, respSeries := dist(rep.ResponseBuckets, "client messages")
	perLabels, perSeries := dist(rep.PerSession, "billed sessions")
	return []chart.Chart{
		{Title: "Sessions per day", Labels: labels, Series: []chart.Series{
			{Name: "opened", Values: opened}, {Name: "billed", Values: billed},
			{Name: "rolled over", Values: rolled}, {Name: "lost", Values: lost}}},
		{Title: "Cost per day", Kind: chart.Lines, Labels: labels, Series: cost, Format: moneyFmt},
		{Title: "First response per day", Kind: chart.Lines, Labels: labels, Format: chart.Minutes,
			Series: []chart.Series{{Name: "median", Values: med}, {Name: "90th percentile", Values: p90}}},
		{Title: "Cost per country", Labels: countryLabels, Series: countrySeries, Format: moneyFmt, Width: 400},
		{Title: "Cost per agent", Labels: agentLabels, Series: agentSeries, Format: moneyFmt, Width: 400},
		{Title: "Response time of answered client messages", Labels: respLabels, Series: respSeries, Width: 400},
		{Title: "Messages per billed session", Labels: perLabels, Series: perSeries, Width: 400},
	}
}

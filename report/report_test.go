package report

import (
	"math"
	"strings"
	"testing"
	"time"

	"sessiondesk/store"
)

func sample() store.Report {
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	return store.Report{
		Sessions: 3, Opened: 3, Billed: 2, Lost: 1, HitLimit: 1, MaxUnanswered: 5, MaxPerSession: 60,
		Cost: store.Money{Estimated: 0.0255, Reported: 0.03, ReportedSessions: 1},
		Days: []store.ReportDay{
			{Day: day, Opened: 3, Billed: 2, Lost: 1, Cost: store.Money{Estimated: 0.0255},
				FirstResponse: store.Percentiles{Count: 2, Median: 90 * time.Second, P90: 10 * time.Minute}},
			{Day: day.AddDate(0, 0, 1)},
		},
		Agents: []store.ReportRow{{Key: "=cmd()", AgentID: 4, Sessions: 1}, {Key: "", AgentID: 0, Sessions: 1}},
		Top:    []store.TopConversation{{ConversationID: 9, Name: "Olga", Phone: "+375291234567", Sessions: 2}},
	}
}

func find(ts []Table, key string) Table {
	for _, t := range ts {
		if t.Key == key {
			return t
		}
	}
	return Table{}
}

func TestTablesFormatTheFigures(t *testing.T) {
	ts := Tables(sample(), "EUR")
	if len(ts) != len(Keys()) {
		t.Fatalf("%d tables, %d keys", len(ts), len(Keys()))
	}
	for i, k := range Keys() {
		if ts[i].Key != k {
			t.Errorf("table %d is %q, want %q", i, ts[i].Key, k)
		}
		for _, r := range ts[i].Rows {
			if len(r) != len(ts[i].Columns) {
				t.Errorf("%s: a row of %d cells under %d columns", k, len(r), len(ts[i].Columns))
			}
		}
	}
	days := find(ts, KeyDays)
	if got := strings.Join(days.Rows[0], "|"); got != "2026-11-24|3|2|0|1|0.0255||1.5|10.0|2" {
		t.Errorf("day row %q", got)
	}
	// A day with no answered session has no first response, not a zero.
	if got := strings.Join(days.Rows[1], "|"); got != "2026-11-25|0|0|0|0|0.0000||||0" {
		t.Errorf("empty day row %q", got)
	}
	sum := find(ts, KeySummary)
	want := map[string]string{"Reported cost (EUR)": "0.0300", "Billed sessions that hit the unanswered limit (5) (%)": "50.0",
		"Billed sessions that reached the cap (60) (%)": "0.0"}
	for _, r := range sum.Rows {
		if w, ok := want[r[0]]; ok && r[1] != w {
			t.Errorf("%s = %q, want %q", r[0], r[1], w)
		}
	}
	agents := find(ts, KeyAgents)
	if agents.Rows[1][0] != "(no agent: an integration)" {
		t.Errorf("the row without an agent: %q", agents.Rows[1][0])
	}
}

func TestChartsLeaveGapsForDaysWithoutAnswers(t *testing.T) {
	cs := Charts(sample(), "EUR")
	var fr []float64
	for _, c := range cs {
		if c.Title == "First response per day" {
			fr = c.Series[0].Values
		}
	}
	if len(fr) != 2 || fr[0] != 1.5 || !math.IsNaN(fr[1]) {
		t.Errorf("first response medians %v, want [1.5 NaN]", fr)
	}
	for _, c := range cs {
		if c.Title == "Cost per day" && len(c.Series) != 2 {
			t.Errorf("cost per day: %d series, want estimated and reported (one session was priced)", len(c.Series))
		}
	}
}

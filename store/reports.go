package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The reports page's figures (issue 12): what the sessions of a date range
// cost, where the money went, how fast clients were answered and which
// sessions were lost. Every figure comes from the per-session and per-message
// facts migration 00026 keeps (first business message, last messages, the
// longest unanswered run, each client message's answer), so a report reads
// one row per session of the range through the sessions_by_start index and
// never walks the messages. The days are the zone's (their bounds are a JSON
// parameter joined to the sessions); percentiles are ranked in Go from a
// bounded read of one number per session or client message.

// MaxReportDays is the longest date range a report covers: its reads are
// bounded by it.
const MaxReportDays = 366

// TopConversations is how many of the most expensive conversations a report lists.
const TopConversations = 20

// ReportFilter says which sessions a report covers: those started in
// [From, To), put into days in Loc, and with AgentID, only the sessions whose
// first business message that agent sent (and the client messages that agent
// answered).
type ReportFilter struct {
	From, To time.Time
	Loc      *time.Location
	AgentID  int64 // 0: every agent
}

// Validate refuses a range that is empty, reversed or longer than MaxReportDays.
func (f ReportFilter) Validate() error {
	if f.From.IsZero() || f.To.IsZero() {
		return &InvalidError{Field: "from", Message: "A report needs a start and an end date."}
	}
	if !f.From.Before(f.To) {
		return &InvalidError{Field: "to", Message: "The end date is before the start date."}
	}
	if f.To.Sub(f.From) > (MaxReportDays+1)*24*time.Hour {
		return &InvalidError{Field: "to", Message: fmt.Sprintf("A report covers at most %d days: narrow the range.", MaxReportDays)}
	}
	if f.AgentID < 0 {
		return &InvalidError{Field: "agent", Message: "The agent filter must be an agent's number."}
	}
	return nil
}

// Percentiles summarise durations: how many, the median and the 90th
// percentile, by the nearest-rank method (the smallest value at least that
// share of the values is at or below). Zero when Count is 0.
type Percentiles struct {
	Count       int
	Median, P90 time.Duration
}

// Money is an estimated and a reported cost. Estimated is at the rates frozen
// on each session when it was first billed (S7); Reported is what the
// provider reported for the sessions it priced, ReportedSessions of them.
type Money struct {
	Estimated        float64
	Reported         float64
	ReportedSessions int
}

func (m *Money) add(o Money) {
	m.Estimated += o.Estimated
	m.Reported += o.Reported
	m.ReportedSessions += o.ReportedSessions
}

// ReportDay is one day of a report.
type ReportDay struct {
	Day time.Time // midnight in the report's zone
	// Opened: sessions a client message opened; Billed: sessions with a
	// counted business message; RolledOver: sessions a rollover began (S3);
	// Lost: sessions over with the client's message unanswered (case 9).
	Opened, Billed, RolledOver, Lost int
	Cost                             Money
	// FirstResponse: from the client message that opened a session to its
	// first business message, over the sessions opened that day.
	FirstResponse Percentiles
}

// ReportRow is a line of a breakdown: by country, by agent, by kind.
type ReportRow struct {
	Key      string // the country code, the agent's name or the kind
	AgentID  int64  // for the rows by agent; 0 for "no agent"
	Sessions int    // billed sessions
	Cost     Money
	// FirstResponse, by agent: of the sessions opened by a client.
	FirstResponse Percentiles
}

// Bucket is a bar of a distribution.
type Bucket struct {
	Label string
	Count int
}

// TopConversation is one of the most expensive conversations of a range.
type TopConversation struct {
	ConversationID int64
	Name, Phone    string
	Country        string
	Sessions       int // billed sessions in the range
	Cost           Money
}

// Report is every figure of the reports page for one filter.
type Report struct {
	Filter   ReportFilter
	Currency string // the currency of the rates in force
	Days     []ReportDay
	// Totals over the range.
	Opened, Billed, RolledOver, Lost int
	Cost                             Money
	// Sessions is every session started in the range, however opened.
	Sessions      int
	Countries     []ReportRow // billed sessions by the client's country, the costliest first
	Agents        []ReportRow // billed sessions by first agent, the costliest first
	Kinds         []ReportRow // text-only, then media
	FirstResponse Percentiles
	// Responses: every client message received in the range that a business
	// message answered, from its arrival to that answer; Unanswered, those
	// not (yet) answered. ResponseBuckets is their distribution.
	Responses       Percentiles
	Unanswered      int
	ResponseBuckets []Bucket
	// PerSession is the distribution of counted business messages per billed session.
	PerSession []Bucket
	// HitLimit: billed sessions in which the unanswered run reached
	// MaxUnanswered (S4); ReachedCap: those that used all MaxPerSession (S3).
	HitLimit, ReachedCap         int
	MaxUnanswered, MaxPerSession int
	Top                          []TopConversation

	// dayBounds are the days' bounds for sessionDays.
	dayBounds string
}

// sessionRange is the WHERE of every per-session query: the range, and the
// agent when one is asked for. The statements are constants chosen by the
// filter, never built from input.
func sessionRange(f ReportFilter) (string, []any) {
	if f.AgentID != 0 {
		return ` s.started_at >= ? AND s.started_at < ? AND s.first_agent_id = ? `, []any{ms(f.From), ms(f.To), f.AgentID}
	}
	return ` s.started_at >= ? AND s.started_at < ? `, []any{ms(f.From), ms(f.To)}
}

// sessionDays is the FROM and WHERE of the per-day queries: each day of the
// report (its bounds, a JSON array of [from, to) pairs in milliseconds, as
// d.key and d.value) joined to the sessions that started in it, a range of
// sessions_by_started per day (CROSS JOIN keeps the days outside).
func sessionDays(rep *Report) (string, []any) {
	const from = ` FROM json_each(?) d CROSS JOIN sessions s ON s.started_at >= d.value ->> 0 AND s.started_at < d.value ->> 1 `
	if rep.Filter.AgentID != 0 {
		return from + ` WHERE s.first_agent_id = ? `, []any{rep.dayBounds, rep.Filter.AgentID}
	}
	return from, []any{rep.dayBounds}
}

// estimatedCost is a session's cost at its frozen rates (S7), as SQL over s.
const estimatedCost = EstimateSQL

// reportedCost is what the provider reported for a session (the sum of its
// messages' prices in the session's currency, kept by the triggers of
// 00020), NULL while it priced none of them.
const reportedCost = `(CASE WHEN s.reported_count > 0 THEN s.reported_cost END)`

// Report computes every figure for f in one snapshot.
func (r *Reader) Report(ctx context.Context, f ReportFilter) (Report, error) {
	if err := f.Validate(); err != nil {
		return Report{}, err
	}
	if f.Loc == nil {
		f.Loc = time.UTC
	}
	rep := Report{Filter: f, MaxUnanswered: r.rules.MaxUnanswered, MaxPerSession: r.rules.MaxPerSession}
	var bounds [][2]int64
	for d := localMidnight(f.From, f.Loc); d.Before(f.To); d = d.AddDate(0, 0, 1) {
		rep.Days = append(rep.Days, ReportDay{Day: d})
		lo, hi := d, d.AddDate(0, 0, 1)
		if lo.Before(f.From) {
			lo = f.From
		}
		if hi.After(f.To) {
			hi = f.To
		}
		bounds = append(bounds, [2]int64{ms(lo), ms(hi)})
	}
	b, err := json.Marshal(bounds)
	if err != nil {
		return Report{}, fmt.Errorf("report: day bounds: %w", err)
	}
	rep.dayBounds = string(b)
	steps := []func(context.Context, *Report) error{
		r.reportSessions, r.reportResponses, r.reportTop,
	}
	for _, step := range steps {
		if err := step(ctx, &rep); err != nil {
			return Report{}, fmt.Errorf("report %s to %s: %w", f.From.Format(time.DateOnly), f.To.Format(time.DateOnly), err)
		}
	}
	return rep, nil
}

// localMidnight is the start of t's day in loc.
func localMidnight(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// reportSessions fills, in one pass over the sessions of the range (the
// covering sessions_report index, day by day), the per-day counts and costs,
// the totals, the split by kind, by agent and by country, the
// messages-per-session distribution and the first response times: SQLite
// groups them by day, first agent and country (a few thousand groups for a
// month), and Go adds the groups up. The first response waits (one per
// session opened by a client and answered, at most MaxReportDays of them)
// come as one comma-separated list per group: stepping each value through
// the driver cost about a microsecond apiece, more than the ranking in Go.
func (r *Reader) reportSessions(ctx context.Context, rep *Report) error {
	from, args := sessionDays(rep)
	args = append([]any{ms(r.now), rep.MaxUnanswered, rep.MaxPerSession}, args...)
	rows, err := r.q.QueryContext(ctx, `
		SELECT d.key, coalesce(s.first_agent_id, 0), s.country,
		       count(*),
		       sum(s.opened_by = 'client'),
		       sum(s.used > 0),
		       sum(s.opened_by = 'rollover'),
		       sum(s.ends_at <= ?1 AND s.last_in_id > s.last_out_id),
		       sum(s.used > 0 AND s.media_used > 0),
		       sum(`+estimatedCost+`),
		       sum(CASE WHEN s.media_used > 0 THEN `+estimatedCost+` ELSE 0.0 END),
		       coalesce(sum(`+reportedCost+`), 0.0),
		       count(`+reportedCost+`),
		       coalesce(sum(CASE WHEN s.media_used > 0 THEN `+reportedCost+` END), 0.0),
		       count(CASE WHEN s.media_used > 0 THEN `+reportedCost+` END),
		       sum(s.used > 0 AND s.peak_unanswered >= ?2),
		       sum(s.used >= ?3),
		       -- perSessionBuckets
		       sum(s.used = 1), sum(s.used = 2), sum(s.used = 3), sum(s.used BETWEEN 4 AND 5),
		       sum(s.used BETWEEN 6 AND 10), sum(s.used BETWEEN 11 AND 20), sum(s.used BETWEEN 21 AND 40),
		       sum(s.used BETWEEN 41 AND 59), sum(s.used >= 60),
		       coalesce(group_concat(CASE WHEN s.opened_by = 'client' AND s.first_out_at IS NOT NULL
		                                  THEN max(s.first_out_at - s.received_at, 0) END), '')
		`+from+`
		 GROUP BY d.key, s.first_agent_id, s.country`, args...)
	if err != nil {
		return fmt.Errorf("sessions by day: %w", err)
	}
	defer rows.Close()
	text, media := ReportRow{Key: "text"}, ReportRow{Key: "media"}
	agents, countries := map[int64]*ReportRow{}, map[string]*ReportRow{}
	rep.PerSession = make([]Bucket, len(perSessionBuckets))
	for i, b := range perSessionBuckets {
		rep.PerSession[i].Label = b.label
	}
	firstByDay, firstByAgent := make([][]int64, len(rep.Days)), map[int64][]int64{}
	var firstAll []int64
	for rows.Next() {
		var (
			day, agent                                                              int64
			country                                                                 string
			all, opened, billed, rolled, lost, mediaN, repN, mediaRepN, hit, capped int64
			est, mediaEst, reported, mediaRep                                       float64
			per                                                                     [9]int64
			firstWaits                                                              string
		)
		if err := rows.Scan(&day, &agent, &country, &all, &opened, &billed, &rolled, &lost, &mediaN, &est, &mediaEst,
			&reported, &repN, &mediaRep, &mediaRepN, &hit, &capped,
			&per[0], &per[1], &per[2], &per[3], &per[4], &per[5], &per[6], &per[7], &per[8], &firstWaits); err != nil {
			return fmt.Errorf("sessions by day: %w", err)
		}
		waits, err := parseInts(firstWaits)
		if err != nil {
			return fmt.Errorf("first responses: %w", err)
		}
		if day >= 0 && int(day) < len(firstByDay) {
			firstByDay[day] = append(firstByDay[day], waits...)
		}
		firstByAgent[agent] = append(firstByAgent[agent], waits...)
		firstAll = append(firstAll, waits...)
		cost := Money{Estimated: est, Reported: reported, ReportedSessions: int(repN)}
		if day >= 0 && int(day) < len(rep.Days) {
			d := &rep.Days[day]
			d.Opened += int(opened)
			d.Billed += int(billed)
			d.RolledOver += int(rolled)
			d.Lost += int(lost)
			d.Cost.add(cost)
		}
		rep.Sessions += int(all)
		rep.Opened += int(opened)
		rep.Billed += int(billed)
		rep.RolledOver += int(rolled)
		rep.Lost += int(lost)
		rep.Cost.add(cost)
		rep.HitLimit += int(hit)
		rep.ReachedCap += int(capped)
		mediaCost := Money{Estimated: mediaEst, Reported: mediaRep, ReportedSessions: int(mediaRepN)}
		media.Sessions += int(mediaN)
		media.Cost.add(mediaCost)
		text.Sessions += int(billed - mediaN)
		text.Cost.add(Money{Estimated: est - mediaEst, Reported: reported - mediaRep, ReportedSessions: int(repN - mediaRepN)})
		for i, n := range per {
			rep.PerSession[i].Count += int(n)
		}
		if billed == 0 {
			continue
		}
		if agents[agent] == nil {
			agents[agent] = &ReportRow{AgentID: agent}
		}
		agents[agent].Sessions += int(billed)
		agents[agent].Cost.add(cost)
		if countries[country] == nil {
			countries[country] = &ReportRow{Key: country}
		}
		countries[country].Sessions += int(billed)
		countries[country].Cost.add(cost)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sessions by day: %w", err)
	}
	rep.Kinds = []ReportRow{text, media}
	names, err := r.agentNames(ctx)
	if err != nil {
		return err
	}
	for id, row := range agents {
		row.Key = names[id]
		row.FirstResponse = percentiles(firstByAgent[id])
		rep.Agents = append(rep.Agents, *row)
	}
	for i := range rep.Days {
		rep.Days[i].FirstResponse = percentiles(firstByDay[i])
	}
	rep.FirstResponse = percentiles(firstAll)
	for _, row := range countries {
		rep.Countries = append(rep.Countries, *row)
	}
	// The costliest first; ties by agent id, by country code.
	slices.SortFunc(rep.Agents, func(a, b ReportRow) int {
		return cmp.Or(cmp.Compare(b.Cost.Estimated, a.Cost.Estimated), cmp.Compare(a.AgentID, b.AgentID))
	})
	slices.SortFunc(rep.Countries, func(a, b ReportRow) int {
		return cmp.Or(cmp.Compare(b.Cost.Estimated, a.Cost.Estimated), cmp.Compare(a.Key, b.Key))
	})
	return nil
}

// agentNames maps every agent's id to its name.
func (r *Reader) agentNames(ctx context.Context) (map[int64]string, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT id, name FROM agents`)
	if err != nil {
		return nil, fmt.Errorf("agents' names: %w", err)
	}
	defer rows.Close()
	names := map[int64]string{}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("agents' names: %w", err)
		}
		names[id] = name
	}
	return names, rows.Err()
}

// perSessionBuckets are the bars of the messages-per-session distribution
// (the labels of the sums reportSessions makes, in the same order).
var perSessionBuckets = []struct{ label string }{{"1"}, {"2"}, {"3"}, {"4–5"}, {"6–10"}, {"11–20"}, {"21–40"}, {"41–59"}, {"60+"}}

// parseInts reads the comma-separated integers of a group_concat; "" is none.
func parseInts(list string) ([]int64, error) {
	if list == "" {
		return nil, nil
	}
	out := make([]int64, 0, strings.Count(list, ",")+1)
	for len(list) > 0 {
		item, rest, _ := strings.Cut(list, ",")
		v, err := strconv.ParseInt(item, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("a list of numbers: %w", err)
		}
		out = append(out, v)
		list = rest
	}
	return out, nil
}

// percentiles sorts ms in place and summarises it, by the nearest-rank
// method: the median is the value of rank ceil(n/2), the 90th percentile of
// rank ceil(9n/10).
func percentiles(ms []int64) Percentiles {
	n := len(ms)
	if n == 0 {
		return Percentiles{}
	}
	slices.Sort(ms)
	return Percentiles{Count: n, Median: time.Duration(ms[(n+1)/2-1]) * time.Millisecond,
		P90: time.Duration(ms[(9*n+9)/10-1]) * time.Millisecond}
}

// responseBuckets are the bars of the response time distribution: upper
// bounds (exclusive) and labels.
var responseBuckets = []struct {
	below time.Duration
	label string
}{
	{time.Minute, "< 1 min"}, {5 * time.Minute, "1–5 min"}, {15 * time.Minute, "5–15 min"},
	{time.Hour, "15–60 min"}, {4 * time.Hour, "1–4 h"}, {math.MaxInt64, "4 h +"},
}

// reportResponses fills the response time of every client message received
// in the range: how many were never answered, and the answered waits, all
// of them in one comma-separated list read from the covering
// messages_in_by_time index (one step through the driver, where one per
// message cost 200 ms at 250,000 messages), bucketed and ranked in Go. The
// list is about 7 bytes a message: 2 MB for a month of 250,000, at most
// MaxReportDays of them. For one agent, the messages that agent answered
// (the answering agent is kept on each client message), from the covering
// messages_in_by_agent index.
func (r *Reader) reportResponses(ctx context.Context, rep *Report) error {
	f := rep.Filter
	q := `SELECT count(*), coalesce(group_concat(max(m.answer_ms, 0)), '') FROM messages m
		WHERE m.direction = 'in' AND m.created_at >= ? AND m.created_at < ?`
	args := []any{ms(f.From), ms(f.To)}
	if f.AgentID != 0 {
		// The agent's answers, from messages_in_by_agent (00047) alone.
		q = `SELECT count(*), coalesce(group_concat(max(m.answer_ms, 0)), '') FROM messages m
			WHERE m.direction = 'in' AND m.created_at >= ? AND m.created_at < ? AND m.answer_agent_id = ?`
		args = append(args, f.AgentID)
	}
	var received int
	var list string
	if err := r.q.QueryRowContext(ctx, q, args...).Scan(&received, &list); err != nil {
		return fmt.Errorf("response times: %w", err)
	}
	waits, err := parseInts(list)
	if err != nil {
		return fmt.Errorf("response times: %w", err)
	}
	rep.ResponseBuckets = make([]Bucket, len(responseBuckets))
	for i, b := range responseBuckets {
		rep.ResponseBuckets[i].Label = b.label
	}
	rep.Unanswered = received - len(waits)
	for _, w := range waits {
		d := time.Duration(w) * time.Millisecond
		i := 0
		for i < len(responseBuckets)-1 && d >= responseBuckets[i].below {
			i++
		}
		rep.ResponseBuckets[i].Count++
	}
	rep.Responses = percentiles(waits)
	return nil
}

// reportTop fills the most expensive conversations of the range: the sum of
// their billed sessions' cost, the reported price where there is one and the
// estimate otherwise.
func (r *Reader) reportTop(ctx context.Context, rep *Report) error {
	where, args := sessionRange(rep.Filter)
	rows, err := r.q.QueryContext(ctx, `
		SELECT t.conversation_id, ct.name, ct.phone, ct.country, t.n, t.est, t.rep, t.repn
		  FROM (SELECT s.conversation_id, count(*) AS n, sum(`+estimatedCost+`) AS est,
		               coalesce(sum(`+reportedCost+`), 0.0) AS rep, count(`+reportedCost+`) AS repn,
		               sum(coalesce(`+reportedCost+`, `+estimatedCost+`)) AS best
		          FROM sessions s
		         WHERE`+where+` AND s.used > 0
		         GROUP BY s.conversation_id
		         ORDER BY best DESC, s.conversation_id
		         LIMIT ?) t
		  JOIN conversations c ON c.id = t.conversation_id
		  JOIN contacts ct ON ct.id = c.contact_id
		 ORDER BY t.best DESC, t.conversation_id`, append(args, TopConversations)...)
	if err != nil {
		return fmt.Errorf("most expensive conversations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t TopConversation
		if err := rows.Scan(&t.ConversationID, &t.Name, &t.Phone, &t.Country, &t.Sessions,
			&t.Cost.Estimated, &t.Cost.Reported, &t.Cost.ReportedSessions); err != nil {
			return fmt.Errorf("most expensive conversations: %w", err)
		}
		rep.Top = append(rep.Top, t)
	}
	return rows.Err()
}

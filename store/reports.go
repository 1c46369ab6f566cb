package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The reports page's figures (issue 12): what the sessions of a date range
// cost, where the money went, how fast clients were answered and which
// sessions were lost. Every figure comes from the per-session and per-message
// facts migration 00026 keeps (first business message, last messages, the
// longest unanswered run, each client message's answer), so a report never
// walks the messages. The sessions' facts of days that are over are kept
// encoded (reportdays.go); a report decodes those, reads the rest from the
// sessions (by sessions_by_started), and adds them up in Go. The days are the
// zone's; percentiles are ranked in Go.

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

	// bounds are the days' [from, to) in milliseconds.
	bounds [][2]int64
}

// Report computes every figure for f in one snapshot.
func (r *Reader) Report(ctx context.Context, f ReportFilter) (Report, error) {
	if err := f.Validate(); err != nil {
		return Report{}, err
	}
	if f.Loc == nil {
		f.Loc = time.UTC
	}
	rep := Report{Filter: f, MaxUnanswered: r.rules.MaxUnanswered, MaxPerSession: r.rules.MaxPerSession}
	for d := localMidnight(f.From, f.Loc); d.Before(f.To); d = d.AddDate(0, 0, 1) {
		rep.Days = append(rep.Days, ReportDay{Day: d})
		lo, hi := d, d.AddDate(0, 0, 1)
		if lo.Before(f.From) {
			lo = f.From
		}
		if hi.After(f.To) {
			hi = f.To
		}
		rep.bounds = append(rep.bounds, [2]int64{ms(lo), ms(hi)})
	}
	add := newFactAdder(&rep, ms(r.now))
	err := r.eachFact(ctx, ms(f.From), ms(f.To), f.AgentID, add.add)
	if err == nil {
		err = r.reportSessions(ctx, &rep, add.groups)
	}
	if err == nil {
		err = r.reportResponses(ctx, &rep)
	}
	if err == nil {
		err = r.reportTop(ctx, &rep, add.top)
	}
	if err != nil {
		return Report{}, fmt.Errorf("report %s to %s: %w", f.From.Format(time.DateOnly), f.To.Format(time.DateOnly), err)
	}
	return rep, nil
}

// dayOf is the index in rep.Days of the day t (milliseconds) falls in, or -1.
func (rep *Report) dayOf(t int64) int {
	i := sort.Search(len(rep.bounds), func(i int) bool { return rep.bounds[i][1] > t })
	if i < len(rep.bounds) && t >= rep.bounds[i][0] {
		return i
	}
	return -1
}

// localMidnight is the start of t's day in loc.
func localMidnight(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// reportSessions fills, from the range's sessions grouped by day, first
// agent and country (factAdder), the per-day counts and costs, the totals,
// the split by kind, by agent and by country, the messages-per-session
// distribution and the first response times.
func (r *Reader) reportSessions(ctx context.Context, rep *Report, groups []factGroup) error {
	text, media := ReportRow{Key: "text"}, ReportRow{Key: "media"}
	agents, countries := map[int64]*ReportRow{}, map[string]*ReportRow{}
	rep.PerSession = make([]Bucket, len(perSessionBuckets))
	for i, b := range perSessionBuckets {
		rep.PerSession[i].Label = b.label
	}
	firstByDay, firstByAgent := make([][]int64, len(rep.Days)), map[int64][]int64{}
	var firstAll []int64
	for i := range groups {
		g := &groups[i]
		if g.day >= 0 {
			firstByDay[g.day] = append(firstByDay[g.day], g.waits...)
		}
		firstByAgent[g.agent] = append(firstByAgent[g.agent], g.waits...)
		firstAll = append(firstAll, g.waits...)
		cost := Money{Estimated: g.est, Reported: g.reported, ReportedSessions: g.repN}
		if g.day >= 0 {
			d := &rep.Days[g.day]
			d.Opened += g.opened
			d.Billed += g.billed
			d.RolledOver += g.rolled
			d.Lost += g.lost
			d.Cost.add(cost)
		}
		rep.Sessions += g.all
		rep.Opened += g.opened
		rep.Billed += g.billed
		rep.RolledOver += g.rolled
		rep.Lost += g.lost
		rep.Cost.add(cost)
		rep.HitLimit += g.hit
		rep.ReachedCap += g.capped
		media.Sessions += g.mediaN
		media.Cost.add(Money{Estimated: g.mediaEst, Reported: g.mediaRep, ReportedSessions: g.mediaRepN})
		text.Sessions += g.billed - g.mediaN
		text.Cost.add(Money{Estimated: g.est - g.mediaEst, Reported: g.reported - g.mediaRep, ReportedSessions: g.repN - g.mediaRepN})
		for i, n := range g.per {
			rep.PerSession[i].Count += n
		}
		if g.billed == 0 {
			continue
		}
		if agents[g.agent] == nil {
			agents[g.agent] = &ReportRow{AgentID: g.agent}
		}
		agents[g.agent].Sessions += g.billed
		agents[g.agent].Cost.add(cost)
		if countries[g.country] == nil {
			countries[g.country] = &ReportRow{Key: g.country}
		}
		countries[g.country].Sessions += g.billed
		countries[g.country].Cost.add(cost)
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

// factGroup adds up the sessions of one day, first agent and country.
type factGroup struct {
	day                                                                     int
	agent                                                                   int64
	country                                                                 string
	all, opened, billed, rolled, lost, mediaN, repN, mediaRepN, hit, capped int
	est, mediaEst, reported, mediaRep                                       float64
	per                                                                     [9]int  // perSessionBuckets
	waits                                                                   []int64 // first responses, ms
}

// factAdder adds up the facts of a report's sessions as they are read: by
// day, first agent and country (in the order the groups first appear, so that
// the sums are added in the same order on every run), and by conversation
// for the costliest ones.
type factAdder struct {
	rep           *Report
	now           int64
	maxUnanswered int64
	maxPer        int64
	index         map[factKey]int
	groups        []factGroup
	convIndex     map[int64]int
	top           []topCandidate
}

type factKey struct {
	day     int
	agent   int64
	country string
}

func newFactAdder(rep *Report, now int64) *factAdder {
	return &factAdder{rep: rep, now: now, maxUnanswered: int64(rep.MaxUnanswered), maxPer: int64(rep.MaxPerSession),
		index: map[factKey]int{}, convIndex: map[int64]int{}}
}

// add counts one session's fact.
func (a *factAdder) add(f *sessionFact) {
	k := factKey{a.rep.dayOf(f.startedAt), f.agent, f.country}
	gi, ok := a.index[k]
	if !ok {
		gi = len(a.groups)
		a.index[k] = gi
		a.groups = append(a.groups, factGroup{day: k.day, agent: k.agent, country: k.country})
	}
	g := &a.groups[gi]
	g.all++
	billed := f.used > 0
	g.opened += b2i(f.client)
	g.billed += b2i(billed)
	g.rolled += b2i(!f.client)
	g.lost += b2i(f.endsAt <= a.now && f.unanswered)
	g.mediaN += b2i(billed && f.media)
	g.est += f.estimated
	if f.media {
		g.mediaEst += f.estimated
	}
	if f.priced {
		g.reported += f.reported
		g.repN++
		if f.media {
			g.mediaRep += f.reported
			g.mediaRepN++
		}
	}
	g.hit += b2i(billed && f.peak >= a.maxUnanswered)
	g.capped += b2i(f.used >= a.maxPer)
	if b := perSessionBucket(f.used); b >= 0 {
		g.per[b]++
	}
	if f.firstWait >= 0 {
		g.waits = append(g.waits, f.firstWait)
	}
	if !billed {
		return
	}
	// The costliest conversations: their billed sessions.
	ci, ok := a.convIndex[f.conversation]
	if !ok {
		ci = len(a.top)
		a.convIndex[f.conversation] = ci
		a.top = append(a.top, topCandidate{t: TopConversation{ConversationID: f.conversation}})
	}
	c := &a.top[ci]
	c.t.Sessions++
	c.t.Cost.Estimated += f.estimated
	if f.priced {
		c.t.Cost.Reported += f.reported
		c.t.Cost.ReportedSessions++
		c.best += f.reported
	} else {
		c.best += f.estimated
	}
}

// perSessionBucket is the bar of perSessionBuckets a session with used
// counted messages falls in, or -1 for none.
func perSessionBucket(used int64) int {
	switch {
	case used <= 0:
		return -1
	case used <= 3:
		return int(used) - 1
	case used <= 5:
		return 3
	case used <= 10:
		return 4
	case used <= 20:
		return 5
	case used <= 40:
		return 6
	case used <= 59:
		return 7
	default:
		return 8
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
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

// percentiles summarises ms (reordering it), by the nearest-rank method: the
// median is the value of rank ceil(n/2), the 90th percentile of rank
// ceil(9n/10). The two ranks are selected, not sorted for: at 250,000 waits
// sorting was a tenth of a report.
func percentiles(ms []int64) Percentiles {
	n := len(ms)
	if n == 0 {
		return Percentiles{}
	}
	mid, p90 := (n+1)/2-1, (9*n+9)/10-1
	median := selectNth(ms, mid)
	// Everything after mid is at least the median: the 90th is among them.
	return Percentiles{Count: n, Median: time.Duration(median) * time.Millisecond,
		P90: time.Duration(selectNth(ms[mid:], p90-mid)) * time.Millisecond}
}

// selectNth reorders xs so that xs[k] is the value it would have sorted,
// with nothing larger before it and nothing smaller after it, and returns it
// (Hoare's selection with the median of three as pivot; short runs sorted).
func selectNth(xs []int64, k int) int64 {
	lo, hi := 0, len(xs)-1
	for hi-lo > 16 {
		mid := lo + (hi-lo)/2
		// Median of three into xs[mid], then partition around its value.
		if xs[mid] < xs[lo] {
			xs[mid], xs[lo] = xs[lo], xs[mid]
		}
		if xs[hi] < xs[lo] {
			xs[hi], xs[lo] = xs[lo], xs[hi]
		}
		if xs[hi] < xs[mid] {
			xs[hi], xs[mid] = xs[mid], xs[hi]
		}
		pivot := xs[mid]
		i, j := lo, hi
		for i <= j {
			for xs[i] < pivot {
				i++
			}
			for xs[j] > pivot {
				j--
			}
			if i <= j {
				xs[i], xs[j] = xs[j], xs[i]
				i++
				j--
			}
		}
		// Now xs[lo..j] <= pivot <= xs[i..hi], and xs[j+1..i-1] == pivot.
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return xs[k]
		}
	}
	slices.Sort(xs[lo : hi+1])
	return xs[k]
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
	// group_concat leaves out the unanswered (NULL); a negative wait (a
	// client clock ahead) counts as 0, in Go rather than per row in SQL.
	q := `SELECT count(*), coalesce(group_concat(m.answer_ms), '') FROM messages m
		WHERE m.direction = 'in' AND m.created_at >= ? AND m.created_at < ?`
	args := []any{ms(f.From), ms(f.To)}
	if f.AgentID != 0 {
		// The agent's answers, from messages_in_by_agent (00047) alone.
		q = `SELECT count(*), coalesce(group_concat(m.answer_ms), '') FROM messages m
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
	for i, w := range waits {
		if w < 0 {
			waits[i], w = 0, 0
		}
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

// topCandidate is a conversation's billed sessions in a report's range.
type topCandidate struct {
	t    TopConversation
	best float64 // the reported price where there is one, else the estimate
}

// costliest returns the first n of cands, the costliest first and ties by
// conversation id, kept in a sorted run while scanning (sorting every
// conversation of the range was a tenth of a report).
func costliest(cands []topCandidate, n int) []topCandidate {
	before := func(a, b *topCandidate) bool {
		return a.best > b.best || (a.best == b.best && a.t.ConversationID < b.t.ConversationID)
	}
	top := make([]topCandidate, 0, n+1)
	for i := range cands {
		c := &cands[i]
		if len(top) == n && (n == 0 || !before(c, &top[n-1])) {
			continue
		}
		at := sort.Search(len(top), func(j int) bool { return before(c, &top[j]) })
		top = slices.Insert(top, at, *c)
		if len(top) > n {
			top = top[:n]
		}
	}
	return top
}

// reportTop fills the most expensive conversations of the range (factAdder's
// candidates): the sum of their billed sessions' cost, the reported price
// where there is one and the estimate otherwise; ties by conversation id.
func (r *Reader) reportTop(ctx context.Context, rep *Report, convs []topCandidate) error {
	convs = costliest(convs, TopConversations)
	if len(convs) == 0 {
		return nil
	}
	ids := make([]int64, len(convs))
	for i, c := range convs {
		ids[i] = c.t.ConversationID
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("most expensive conversations: %w", err)
	}
	rows, err := r.q.QueryContext(ctx, `SELECT c.id, ct.name, ct.phone, ct.country
		  FROM json_each(?) j JOIN conversations c ON c.id = j.value JOIN contacts ct ON ct.id = c.contact_id`, string(list))
	if err != nil {
		return fmt.Errorf("most expensive conversations: %w", err)
	}
	defer rows.Close()
	who := map[int64]TopConversation{}
	for rows.Next() {
		var t TopConversation
		if err := rows.Scan(&t.ConversationID, &t.Name, &t.Phone, &t.Country); err != nil {
			return fmt.Errorf("most expensive conversations: %w", err)
		}
		who[t.ConversationID] = t
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("most expensive conversations: %w", err)
	}
	for _, c := range convs {
		t := c.t
		w := who[t.ConversationID]
		t.Name, t.Phone, t.Country = w.Name, w.Phone, w.Country
		rep.Top = append(rep.Top, t)
	}
	return nil
}

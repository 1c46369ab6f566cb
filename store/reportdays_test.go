package store

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// daysKept lists the UTC days report_session_days holds.
func daysKept(t *testing.T, s *Store) []int64 {
	t.Helper()
	rows, err := s.write.QueryContext(context.Background(), `SELECT day FROM report_session_days ORDER BY day`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var days []int64
	for rows.Next() {
		var d int64
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		days = append(days, d)
	}
	return days
}

// reportFilters are the ranges the kept days are checked on: whole UTC days,
// one agent, zones whose days cut the UTC days (a whole-hour and a
// quarter-hour offset), and a range that starts in the middle of a day.
func reportFilters(w *reportWorld) []ReportFilter {
	msk := time.FixedZone("MSK", 3*3600)
	npt := time.FixedZone("NPT", 5*3600+45*60)
	pst := time.FixedZone("PST", -8*3600)
	return []ReportFilter{
		{From: day(23), To: day(28), Loc: time.UTC},
		{From: day(24), To: day(27), Loc: time.UTC, AgentID: w.ann.ID},
		{From: day(24), To: day(27), Loc: time.UTC, AgentID: w.bob.ID},
		{From: time.Date(2026, 11, 24, 0, 0, 0, 0, msk), To: time.Date(2026, 11, 28, 0, 0, 0, 0, msk), Loc: msk},
		{From: time.Date(2026, 11, 23, 0, 0, 0, 0, npt), To: time.Date(2026, 11, 28, 0, 0, 0, 0, npt), Loc: npt},
		{From: time.Date(2026, 11, 24, 0, 0, 0, 0, pst), To: time.Date(2026, 11, 27, 0, 0, 0, 0, pst), Loc: pst},
		{From: day(24).Add(9*time.Hour + 30*time.Minute), To: day(26).Add(23*time.Hour + 5*time.Minute), Loc: time.UTC},
	}
}

// A report over kept days says exactly what the same report over the
// sessions says, whatever the zone, range or agent.
func TestReportDaysKeptSayWhatTheSessionsSay(t *testing.T) {
	w := newReportWorld(t)
	w.at("29", "12:00") // every session of the 23rd to the 27th is over
	raw := map[int]Report{}
	for i, f := range reportFilters(w) {
		raw[i] = w.report(f)
	}
	n, err := w.s.BuildReportDays(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	// Sessions started on the 23rd, 24th, 25th and 26th; the 27th and 28th
	// have none.
	if want := []int64{utcDay(23), utcDay(24), utcDay(25), utcDay(26)}; n != 4 || !reflect.DeepEqual(daysKept(t, w.s), want) {
		t.Fatalf("kept %d days %v, want %v", n, daysKept(t, w.s), want)
	}
	for i, f := range reportFilters(w) {
		if got := w.report(f); !reflect.DeepEqual(got, raw[i]) {
			t.Errorf("filter %d (%s to %s, %s, agent %d):\nkept     %+v\nsessions %+v", i, f.From, f.To, f.Loc, f.AgentID, got, raw[i])
		}
	}
	if n, err := w.s.BuildReportDays(context.Background(), 100); err != nil || n != 0 {
		t.Errorf("building again kept %d days (%v), want none", n, err)
	}
}

// A day whose sessions have not all ended is not kept: its lost sessions
// still depend on the time.
func TestReportDaysOnlyWhenOver(t *testing.T) {
	w := newReportWorld(t) // now: the 27th at 12:00
	if _, err := w.s.BuildReportDays(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	// E and G opened on the 26th at 23:00 and 23:10: their sessions run until
	// the 27th, so the 26th is not kept; nor is anything later.
	if got, want := daysKept(t, w.s), []int64{utcDay(23), utcDay(24), utcDay(25)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("kept days %v, want %v", got, want)
	}
	f := ReportFilter{From: day(23), To: day(28), Loc: time.UTC}
	kept := w.report(f)
	if _, err := w.s.write.ExecContext(context.Background(), `DELETE FROM report_session_days`); err != nil {
		t.Fatal(err)
	}
	if raw := w.report(f); !reflect.DeepEqual(kept, raw) {
		t.Errorf("with three days kept:\n%+v\nfrom the sessions:\n%+v", kept, raw)
	}
}

// keptWorld is the hand-computed history two days after its last session,
// with every day kept, and a filter over all of it.
func keptWorld(t *testing.T) (*reportWorld, ReportFilter) {
	w := newReportWorld(t)
	w.at("29", "12:00")
	if _, err := w.s.BuildReportDays(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	return w, ReportFilter{From: day(23), To: day(28), Loc: time.UTC}
}

// A change to a session of a kept day (a price reported late) drops the day
// in the same transaction; the report shows the new price, and the day is
// kept again later.
func TestReportDaysDroppedWhenASessionChanges(t *testing.T) {
	w, f := keptWorld(t)
	ctx := context.Background()
	before := w.report(f)
	// Bob's image to A on the 24th: its session (A's first) was priced 0.5.
	var id int64
	if err := w.s.write.QueryRowContext(ctx, `SELECT m.id FROM messages m JOIN sessions s ON s.id = m.session_id
		WHERE m.direction = 'out' AND s.reported_count > 0 AND s.started_at < ? ORDER BY m.id LIMIT 1`, ms(day(25))).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.RecordPrice(ctx, MessageRef{ID: id}, ReportedPrice{Amount: 2}); err != nil {
		t.Fatal(err)
	}
	if got := daysKept(t, w.s); !reflect.DeepEqual(got, []int64{utcDay(23), utcDay(25), utcDay(26)}) {
		t.Fatalf("kept days after a price on the 24th: %v, want the 24th dropped", got)
	}
	after := w.report(f)
	if math.Abs(after.Cost.Reported-(before.Cost.Reported+1.5)) > 1e-9 {
		t.Errorf("reported cost %v after the new price, was %v: want 1.5 more", after.Cost.Reported, before.Cost.Reported)
	}
	if n, err := w.s.BuildReportDays(ctx, 100); err != nil || n != 1 {
		t.Fatalf("building again kept %d days (%v), want the 24th", n, err)
	}
	if again := w.report(f); !reflect.DeepEqual(again, after) {
		t.Errorf("kept again:\n%+v\nbefore keeping:\n%+v", again, after)
	}
}

// A kept day that cannot be read (damaged, or of another format) is read
// from the sessions instead; one of another format is built again.
func TestReportDaysUnreadableAreReadFromTheSessions(t *testing.T) {
	w, f := keptWorld(t)
	ctx := context.Background()
	raw := w.report(f) // every day of f kept: the same as from the sessions (above)
	var blob []byte
	if err := w.s.write.QueryRowContext(ctx, `SELECT facts FROM report_session_days WHERE day = ?`, utcDay(24)).Scan(&blob); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"empty":       {},
		"shifted":     append([]byte{0x02}, blob...),
		"cut short":   blob[:len(blob)/2],
		"trailing":    append(append([]byte{}, blob...), 0),
		"huge count":  {0xff, 0xff, 0xff, 0xff, 0x0f},
		"another day": encodeFacts(utcDay(23), mustDecode(t, utcDay(24), blob)), // its records would fall on the 23rd
	} {
		if _, err := w.s.write.ExecContext(ctx, `UPDATE report_session_days SET facts = ? WHERE day = ?`, bad, utcDay(24)); err != nil {
			t.Fatal(err)
		}
		if got := w.report(f); !reflect.DeepEqual(got, raw) {
			t.Errorf("%s: the report differs from the sessions':\n%+v\n%+v", name, got, raw)
		}
	}
	// A day of another format is not decoded, and is built again (a damaged
	// one stays read from the sessions until one of its sessions changes).
	if _, err := w.s.write.ExecContext(ctx, `UPDATE report_session_days SET facts = ?, format = ? WHERE day = ?`,
		blob, reportDaysFormat+1, utcDay(24)); err != nil {
		t.Fatal(err)
	}
	if got := w.report(f); !reflect.DeepEqual(got, raw) {
		t.Errorf("another format: the report differs from the sessions'")
	}
	n, err := w.s.BuildReportDays(ctx, 100)
	if err != nil || n != 1 {
		t.Fatalf("building again kept %d days (%v), want the one of another format", n, err)
	}
	if got := w.report(f); !reflect.DeepEqual(got, raw) {
		t.Errorf("after building again the report differs")
	}
}

// utcDay is the number of the UTC day of November 2026's dth since the epoch.
func utcDay(d int) int64 { return ms(day(d)) / dayMS }

func mustDecode(t *testing.T, day int64, blob []byte) []sessionFact {
	t.Helper()
	facts, err := decodeFacts(day, blob, nil, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	return facts
}

// Facts survive their encoding, the edge values included.
func TestFactsEncodeAndDecode(t *testing.T) {
	day := utcDay(24)
	facts := []sessionFact{
		{startedAt: day * dayMS, endsAt: day*dayMS + 1, conversation: 1, country: "", client: true, used: 0, estimated: 0, firstWait: -1},
		{startedAt: day*dayMS + dayMS - 1, endsAt: day*dayMS + 2*dayMS, conversation: math.MaxInt64, agent: math.MaxInt64, country: "BY",
			client: false, media: true, unanswered: true, priced: true, used: 60, peak: 10, estimated: 0.0085, reported: -0.5, firstWait: 0},
		{startedAt: day*dayMS + 5, endsAt: day*dayMS + 6, conversation: 7, agent: 3, country: "ÄÖ", used: 1, peak: 1,
			estimated: math.SmallestNonzeroFloat64, firstWait: 1 << 40},
	}
	got, err := decodeFacts(day, encodeFacts(day, facts), nil, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, facts) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, facts)
	}
	if got, err := decodeFacts(day, encodeFacts(day, nil), nil, map[string]string{}); err != nil || len(got) != 0 {
		t.Errorf("no facts: %v %v", got, err)
	}
	// Decoded into the room of a day before: nothing of it stays.
	plain := []sessionFact{{startedAt: day*dayMS + 9, endsAt: day*dayMS + 10, conversation: 2, used: 1, firstWait: -1},
		{startedAt: day*dayMS + 9, endsAt: day*dayMS + 11, conversation: 3, client: true, firstWait: -1}}
	again, err := decodeFacts(day, encodeFacts(day, plain), got, map[string]string{})
	if err != nil || !reflect.DeepEqual(again, plain) {
		t.Errorf("decoded over another day's facts:\n%+v (%v)\nwant\n%+v", again, err, plain)
	}
}

// The percentiles' selection agrees with sorting, duplicates included.
func TestSelectNthMatchesSorting(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		n := rng.IntN(300)
		if round%50 == 0 {
			n = 5000 + rng.IntN(5000)
		}
		spread := int64(1 + rng.IntN(20)) // few distinct values: many ties
		if round%3 == 0 {
			spread = 1 << 40
		}
		xs := make([]int64, n)
		for i := range xs {
			xs[i] = rng.Int64N(spread)
		}
		if round%7 == 0 {
			slices.Sort(xs) // sorted input, and reversed below
			if round%2 == 0 {
				slices.Reverse(xs)
			}
		}
		sorted := slices.Sorted(slices.Values(xs))
		for _, k := range []int{0, n / 2, (n + 1) / 2, n * 9 / 10, n - 1, rng.IntN(max(n, 1))} {
			if k < 0 || k >= n {
				continue
			}
			work := slices.Clone(xs)
			if got := selectNth(work, k); got != sorted[k] {
				t.Fatalf("round %d: selectNth(k=%d of %d) = %d, want %d", round, k, n, got, sorted[k])
			}
			for i := range work {
				if (i < k && work[i] > work[k]) || (i > k && work[i] < work[k]) {
					t.Fatalf("round %d: after selecting %d, xs[%d] = %d is on the wrong side of %d", round, k, i, work[i], work[k])
				}
			}
		}
		if n > 0 {
			p := percentiles(slices.Clone(xs))
			if p.Count != n || p.Median != time.Duration(sorted[(n+1)/2-1])*time.Millisecond ||
				p.P90 != time.Duration(sorted[(9*n+9)/10-1])*time.Millisecond {
				t.Fatalf("round %d: percentiles %+v of %d values", round, p, n)
			}
		}
	}
}

// The costliest conversations are the first of the full order, ties by id.
func TestCostliestMatchesSorting(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		cands := make([]topCandidate, rng.IntN(200))
		for i := range cands {
			cands[i] = topCandidate{t: TopConversation{ConversationID: int64(rng.IntN(1000))}, best: float64(rng.IntN(8)) / 4}
		}
		want := slices.Clone(cands)
		slices.SortStableFunc(want, func(a, b topCandidate) int {
			if a.best != b.best {
				if a.best > b.best {
					return -1
				}
				return 1
			}
			return int(a.t.ConversationID - b.t.ConversationID)
		})
		for _, n := range []int{0, 1, TopConversations, 500} {
			got := costliest(cands, n)
			w := want[:min(n, len(want))]
			if len(got) != len(w) {
				t.Fatalf("round %d, n %d: %d candidates, want %d", round, n, len(got), len(w))
			}
			for i := range got {
				if got[i].best != w[i].best || got[i].t.ConversationID != w[i].t.ConversationID {
					t.Fatalf("round %d, n %d: #%d is %+v, want %+v", round, n, i, got[i], w[i])
				}
			}
		}
	}
}

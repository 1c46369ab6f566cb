package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"sessiondesk/clock"
	"sessiondesk/session"
)

// reportWorld plays a small history through the store's own write path at
// known times, for the hand-computed figures of TestReportHandComputed.
type reportWorld struct {
	t        *testing.T
	s        *Store
	clk      *clock.Manual
	ann, bob Agent
	conv     map[string]int64
}

func (w *reportWorld) at(day, hhmm string) {
	w.t.Helper()
	at, err := time.Parse("2006-01-02 15:04", "2026-11-"+day+" "+hhmm)
	if err != nil {
		w.t.Fatal(err)
	}
	w.clk.Set(at)
}

func (w *reportWorld) client(name, phone, country, text string) {
	w.t.Helper()
	r, err := w.s.ReceiveClientMessage(context.Background(), ClientMessage{Phone: phone, Name: name, Country: country,
		Kind: session.Text, Text: text, SentAt: w.clk.Now()})
	if err != nil {
		w.t.Fatalf("client %s: %v", name, err)
	}
	w.conv[name] = r.Message.ConversationID
}

func (w *reportWorld) send(name string, agent Agent, kind session.Kind, confirm bool) Message {
	w.t.Helper()
	send := BusinessSend{ConversationID: w.conv[name], AgentID: agent.ID, ConfirmNewSession: confirm,
		Parts: []session.Part{{Kind: kind, Text: "reply"}}}
	if kind != session.Text {
		send.Parts[0] = session.Part{Kind: kind}
		send.Attachments = []*NewAttachment{{Hash: strings.Repeat("ab", 32), Size: 10, MIME: "image/png", Name: "a.png", Width: 1, Height: 1}}
	}
	ms, err := w.s.AcceptBusinessMessages(context.Background(), send)
	if err != nil {
		w.t.Fatalf("send to %s: %v", name, err)
	}
	return ms[0]
}

// newReportWorld plays the history the figures below were computed from by
// hand. Rules: 2 unanswered at most, 3 per session, rollover; rates 1 (text)
// and 3 (media) EUR. Days are UTC: D1 = Nov 24, D2 = 25, D3 = 26.
func newReportWorld(t *testing.T) *reportWorld {
	rules := session.Defaults()
	rules.MaxUnanswered, rules.MaxPerSession = 2, 3
	clk := clock.NewManual(time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC))
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "r.db"), Options{Rules: rules,
		Rates: session.Rates{Text: 1, Media: 3, Currency: "EUR"}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w := &reportWorld{t: t, s: s, clk: clk, conv: map[string]int64{}}
	w.ann, w.bob = mustAgent(t, s, "ann", "agent"), mustAgent(t, s, "bob", "agent")

	// F: before the range.
	w.at("23", "08:00")
	w.client("F", "+375291000001", "BY", "early")
	w.at("23", "08:10")
	w.send("F", w.ann, session.Text, false)
	// A (BY), D1: answered in 5 min, then an image 10 min after the client's second message.
	w.at("24", "10:00")
	w.client("A", "+375291000002", "BY", "hi")
	w.at("24", "10:05")
	aFirst := w.send("A", w.ann, session.Text, false)
	w.at("24", "10:06")
	w.client("A", "+375291000002", "BY", "more")
	w.at("24", "10:16")
	w.send("A", w.bob, session.Image, false)
	// B (GB), D1: bob answers after 30 min, twice in a row (the limit), the client's thanks stays unanswered: lost.
	w.at("24", "11:00")
	w.client("B", "+447700900003", "GB", "hello")
	w.at("24", "11:30")
	w.send("B", w.bob, session.Text, false)
	w.at("24", "11:31")
	w.send("B", w.bob, session.Text, false)
	w.at("24", "12:00")
	w.client("B", "+447700900003", "GB", "thx")
	// C (BY), D2: three answers (the cap), then a confirmed rollover: a
	// second session, in which the unanswered run reaches the limit.
	w.at("25", "09:00")
	w.client("C", "+375291000004", "BY", "q")
	w.at("25", "09:01")
	cFirst := w.send("C", w.ann, session.Text, false)
	w.at("25", "09:02")
	w.client("C", "+375291000004", "BY", "a")
	w.at("25", "09:03")
	w.send("C", w.ann, session.Text, false)
	w.at("25", "09:04")
	w.client("C", "+375291000004", "BY", "b")
	w.at("25", "09:06")
	w.send("C", w.ann, session.Text, false)
	w.at("25", "09:10")
	w.send("C", w.ann, session.Text, true)
	// D (FR), D2: nobody answers: lost, never billed.
	w.at("25", "20:00")
	w.client("D", "+33612000005", "FR", "allo")
	// E, D3: still open when the report is made.
	w.at("26", "23:00")
	w.client("E", "+375291000006", "BY", "late")
	// G (BY), D3: bob's reply is rejected by the provider (released), ann's counts.
	w.at("26", "23:10")
	w.client("G", "+375291000007", "BY", "x")
	w.at("26", "23:12")
	rejected := w.send("G", w.bob, session.Text, false)
	if err := s.RejectMessage(context.Background(), MessageRef{ID: rejected.ID}, "not a Viber user"); err != nil {
		t.Fatal(err)
	}
	w.at("26", "23:15")
	w.send("G", w.ann, session.Text, false)
	// The provider prices A's session at 0.5 (the estimate says 3) and C's
	// first at 1; the others it never prices.
	for id, amount := range map[int64]float64{aFirst.ID: 0.5, cFirst.ID: 1} {
		if _, err := s.RecordPrice(context.Background(), MessageRef{ID: id}, ReportedPrice{Amount: amount}); err != nil {
			t.Fatal(err)
		}
	}
	w.at("27", "12:00") // the report's now
	return w
}

func (w *reportWorld) report(f ReportFilter) Report {
	w.t.Helper()
	var rep Report
	err := w.s.Read(context.Background(), func(r *Reader) error {
		var err error
		rep, err = r.Report(context.Background(), f)
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return rep
}

func day(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }

func pct(n int, median, p90 time.Duration) Percentiles {
	return Percentiles{Count: n, Median: median, P90: p90}
}

// Every figure of the reports page, against the history above worked out by hand.
func TestReportHandComputed(t *testing.T) {
	w := newReportWorld(t)
	rep := w.report(ReportFilter{From: day(24), To: day(27), Loc: time.UTC})
	m := time.Minute

	wantDays := []ReportDay{
		{Day: day(24), Opened: 2, Billed: 2, Lost: 1, Cost: Money{Estimated: 4, Reported: 0.5, ReportedSessions: 1}, FirstResponse: pct(2, 5*m, 30*m)},
		{Day: day(25), Opened: 2, Billed: 2, RolledOver: 1, Lost: 1, Cost: Money{Estimated: 2, Reported: 1, ReportedSessions: 1}, FirstResponse: pct(1, m, m)},
		{Day: day(26), Opened: 2, Billed: 1, Cost: Money{Estimated: 1}, FirstResponse: pct(1, 5*m, 5*m)},
	}
	if !reflect.DeepEqual(rep.Days, wantDays) {
		t.Errorf("days:\n got %+v\nwant %+v", rep.Days, wantDays)
	}
	if rep.Sessions != 7 || rep.Opened != 6 || rep.Billed != 5 || rep.RolledOver != 1 || rep.Lost != 2 || rep.Cost != (Money{Estimated: 7, Reported: 1.5, ReportedSessions: 2}) {
		t.Errorf("totals: sessions %d opened %d billed %d rolled %d lost %d cost %+v; want 7 6 5 1 2 7 (1.5 reported for 2)",
			rep.Sessions, rep.Opened, rep.Billed, rep.RolledOver, rep.Lost, rep.Cost)
	}
	wantKinds := []ReportRow{{Key: "text", Sessions: 4, Cost: Money{Estimated: 4, Reported: 1, ReportedSessions: 1}},
		{Key: "media", Sessions: 1, Cost: Money{Estimated: 3, Reported: 0.5, ReportedSessions: 1}}}
	if !reflect.DeepEqual(rep.Kinds, wantKinds) {
		t.Errorf("kinds: got %+v, want %+v", rep.Kinds, wantKinds)
	}
	wantCountries := []ReportRow{{Key: "BY", Sessions: 4, Cost: Money{Estimated: 6, Reported: 1.5, ReportedSessions: 2}},
		{Key: "GB", Sessions: 1, Cost: Money{Estimated: 1}}}
	if !reflect.DeepEqual(rep.Countries, wantCountries) {
		t.Errorf("countries: got %+v, want %+v", rep.Countries, wantCountries)
	}
	// A's first business message is ann's: the session and its image are put down to her.
	wantAgents := []ReportRow{
		{Key: "Ann", AgentID: w.ann.ID, Sessions: 4, Cost: Money{Estimated: 6, Reported: 1.5, ReportedSessions: 2}, FirstResponse: pct(3, 5*m, 5*m)},
		{Key: "Bob", AgentID: w.bob.ID, Sessions: 1, Cost: Money{Estimated: 1}, FirstResponse: pct(1, 30*m, 30*m)},
	}
	if !reflect.DeepEqual(rep.Agents, wantAgents) {
		t.Errorf("agents:\n got %+v\nwant %+v", rep.Agents, wantAgents)
	}
	if want := pct(4, 5*m, 30*m); rep.FirstResponse != want {
		t.Errorf("first response: got %+v, want %+v", rep.FirstResponse, want)
	}
	// hi 5, more 10, hello 30, q 1, a 1, b 2, x 5 (answered by ann's reply,
	// bob's was released); thx, allo, late unanswered.
	if want := pct(7, 5*m, 30*m); rep.Responses != want || rep.Unanswered != 3 {
		t.Errorf("responses: got %+v and %d unanswered, want %+v and 3", rep.Responses, rep.Unanswered, want)
	}
	wantBuckets := []Bucket{{"< 1 min", 0}, {"1–5 min", 3}, {"5–15 min", 3}, {"15–60 min", 1}, {"1–4 h", 0}, {"4 h +", 0}}
	if !reflect.DeepEqual(rep.ResponseBuckets, wantBuckets) {
		t.Errorf("response buckets: got %+v", rep.ResponseBuckets)
	}
	if got := rep.PerSession[:4]; !reflect.DeepEqual(got, []Bucket{{"1", 2}, {"2", 2}, {"3", 1}, {"4–5", 0}}) {
		t.Errorf("messages per session: got %+v", rep.PerSession)
	}
	if rep.HitLimit != 2 || rep.ReachedCap != 1 {
		t.Errorf("hit the unanswered limit %d, reached the cap %d; want 2 and 1", rep.HitLimit, rep.ReachedCap)
	}
	var top []string
	for _, c := range rep.Top {
		top = append(top, c.Name)
	}
	// By the reported price where there is one: A's 0.5 (not its estimate
	// of 3) puts it last; C is 1 reported + 1 estimated.
	if strings.Join(top, ",") != "C,B,G,A" || rep.Top[3].Cost != (Money{Estimated: 3, Reported: 0.5, ReportedSessions: 1}) ||
		rep.Top[0].Sessions != 2 || rep.Top[0].Country != "BY" {
		t.Errorf("top conversations: %v %+v", top, rep.Top)
	}
}

// With an agent, the sessions that agent answered first, and the client
// messages that agent answered.
func TestReportOneAgent(t *testing.T) {
	w := newReportWorld(t)
	rep := w.report(ReportFilter{From: day(24), To: day(27), Loc: time.UTC, AgentID: w.ann.ID})
	if rep.Sessions != 4 || rep.Opened != 3 || rep.Billed != 4 || rep.RolledOver != 1 || rep.Lost != 0 || rep.Cost.Estimated != 6 || rep.Cost.Reported != 1.5 {
		t.Errorf("ann's totals: sessions %d opened %d billed %d rolled %d lost %d cost %v; want 4 3 4 1 0 6",
			rep.Sessions, rep.Opened, rep.Billed, rep.RolledOver, rep.Lost, rep.Cost.Estimated)
	}
	// hi 5, q 1, a 1, b 2, x 5; "more" was answered by bob's image.
	if want := pct(5, 2*time.Minute, 5*time.Minute); rep.Responses != want {
		t.Errorf("ann's responses: got %+v, want %+v", rep.Responses, want)
	}
	if len(rep.Agents) != 1 || rep.Agents[0].AgentID != w.ann.ID {
		t.Errorf("agents: %+v, want ann alone", rep.Agents)
	}
}

// Days follow the zone asked for: in UTC+3, E and G (23:00 and 23:10 UTC on
// the 26th) open on the 27th, and nothing on the 26th.
func TestReportDaysInZone(t *testing.T) {
	w := newReportWorld(t)
	msk := time.FixedZone("MSK", 3*3600)
	from := time.Date(2026, 11, 24, 0, 0, 0, 0, msk)
	rep := w.report(ReportFilter{From: from, To: from.AddDate(0, 0, 4), Loc: msk})
	var opened []int
	for _, d := range rep.Days {
		opened = append(opened, d.Opened)
	}
	if !reflect.DeepEqual(opened, []int{2, 2, 0, 2}) {
		t.Errorf("opened per MSK day: %v, want [2 2 0 2]", opened)
	}
}

func TestReportFilterRefusesBadRanges(t *testing.T) {
	w := newReportWorld(t)
	for _, f := range []ReportFilter{
		{},
		{From: day(25), To: day(24)},
		{From: day(25), To: day(25)},
		{From: day(1).AddDate(-2, 0, 0), To: day(25)},
		{From: day(24), To: day(25), AgentID: -1},
	} {
		err := w.s.Read(context.Background(), func(r *Reader) error { _, err := r.Report(context.Background(), f); return err })
		if invalidField(err) == "" {
			t.Errorf("%+v: %v, want an invalid field", f, err)
		}
	}
}

// Migration 00047 gives the client messages stored before it their
// answering agent, and its Down takes the column and its index away: a
// database taken back before it and up again reports the same for one agent,
// and every kept fact matches a recount.
func TestAnswerAgentBackfilledByTheMigration(t *testing.T) {
	w := newReportWorld(t)
	ctx := context.Background()
	f := ReportFilter{From: day(24), To: day(27), Loc: time.UTC, AgentID: w.bob.ID}
	before := w.report(f)
	// bob answered "more" (his image) and "hello"; his reply to "x" was released to ann.
	if want := pct(2, 10*time.Minute, 30*time.Minute); before.Responses != want {
		t.Fatalf("bob's responses: got %+v, want %+v", before.Responses, want)
	}
	if err := migrateDownTo(ctx, w.s.write, 46); err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.write.ExecContext(ctx, `SELECT answer_agent_id FROM messages`); err == nil {
		t.Fatal("answer_agent_id is still there after the Down of 00047")
	}
	if err := migrate(ctx, w.s.write); err != nil {
		t.Fatal(err)
	}
	if err := recountFacts(ctx, w.s); err != nil {
		t.Fatal(err)
	}
	if after := w.report(f); !reflect.DeepEqual(after, before) {
		t.Errorf("bob's report after the migration:\n got %+v\nwant %+v", after, before)
	}
}

// recountFacts works out the report facts of migrations 00026 and 00047
// from the messages, in Go, and compares them with what the triggers kept.
func recountFacts(ctx context.Context, s *Store) error {
	type msg struct {
		id, conv, session, agent, created int64
		in, counted                       bool
	}
	var msgs []msg
	rows, err := s.write.QueryContext(ctx, `SELECT id, conversation_id, session_id, coalesce(agent_id, 0), created_at,
		direction = 'in', counted FROM messages ORDER BY conversation_id, id`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var m msg
		if err := rows.Scan(&m.id, &m.conv, &m.session, &m.agent, &m.created, &m.in, &m.counted); err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	rows.Close()
	type facts struct{ firstOut, firstAt, firstAgent, lastIn, lastOut, peak int64 }
	want := map[int64]*facts{}
	ends := map[int64]int64{}
	rows, err = s.write.QueryContext(ctx, `SELECT id, ends_at FROM sessions`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, end int64
		if err := rows.Scan(&id, &end); err != nil {
			return err
		}
		ends[id], want[id] = end, &facts{}
	}
	rows.Close()
	type answer struct{ by, ms, agent int64 }
	answers := map[int64]answer{}
	var run int64
	var pending []msg
	for i, m := range msgs {
		if i == 0 || msgs[i-1].conv != m.conv {
			run, pending = 0, nil
		}
		f := want[m.session]
		switch {
		case m.in:
			run = 0
			f.lastIn = m.id
			pending = append(pending, m)
		case m.counted:
			run++
			if f.firstOut == 0 {
				f.firstOut, f.firstAt, f.firstAgent = m.id, m.created, m.agent
			}
			f.lastOut, f.peak = m.id, max(f.peak, run)
			for _, p := range pending {
				if ends[p.session] > m.created {
					answers[p.id] = answer{m.id, m.created - p.created, m.agent}
				}
			}
			pending = nil
		}
	}
	rows, err = s.write.QueryContext(ctx, `SELECT id, coalesce(first_out_id, 0), coalesce(first_out_at, 0),
		coalesce(first_agent_id, 0), last_in_id, last_out_id, peak_unanswered FROM sessions`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		var got facts
		if err := rows.Scan(&id, &got.firstOut, &got.firstAt, &got.firstAgent, &got.lastIn, &got.lastOut, &got.peak); err != nil {
			return err
		}
		if *want[id] != got {
			rows.Close()
			return fmt.Errorf("session %d: kept %+v, recounted %+v", id, got, *want[id])
		}
	}
	rows.Close()
	rows, err = s.write.QueryContext(ctx, `SELECT id, coalesce(answered_by, 0), coalesce(answer_ms, 0), coalesce(answer_agent_id, 0)
		FROM messages WHERE direction = 'in'`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var got answer
		if err := rows.Scan(&id, &got.by, &got.ms, &got.agent); err != nil {
			return err
		}
		if answers[id] != got {
			return fmt.Errorf("client message %d: kept answer %+v, recounted %+v", id, got, answers[id])
		}
	}
	return rows.Err()
}

// The facts the triggers keep match a recount from the messages after every
// step of random traffic: sends, rejections (releases, void rollovers undone),
// retries, client messages, time passing. Two agents take turns, so an answer
// that moves on a release must take the next message's agent with it.
func TestReportFactsMatchTheMessages(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rules := session.Defaults()
			rules.MaxPerSession, rules.MaxUnanswered = 4, 3
			s, clk := newStore(t, rules)
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(seed, 7))
			agents := []Agent{mustAgent(t, s, "ann", "agent"), mustAgent(t, s, "bob", "agent")}
			phones := []string{"+375298600001", "+375298600002"}
			convs := map[string]int64{}
			var sent []int64
			for step := 0; step < 300; step++ {
				phone := phones[rng.IntN(len(phones))]
				switch k := rng.IntN(100); {
				case k < 25:
					convs[phone] = receive(t, s, phone, "hi").Message.ConversationID
				case k < 65:
					conv, ok := convs[phone]
					if !ok {
						continue
					}
					msgs, err := s.AcceptBusinessMessages(ctx, BusinessSend{ConversationID: conv, AgentID: agents[step%2].ID,
						ConfirmNewSession: rng.IntN(2) == 0, Parts: []session.Part{{Kind: session.Text, Text: "r"}}})
					var refusal *session.Refusal
					if err != nil && !errors.As(err, &refusal) {
						t.Fatalf("step %d send: %v", step, err)
					}
					for _, m := range msgs {
						sent = append(sent, m.ID)
					}
				case k < 78 && len(sent) > 0:
					if err := s.RejectMessage(ctx, MessageRef{ID: sent[rng.IntN(len(sent))]}, "no"); err != nil {
						t.Fatalf("step %d reject: %v", step, err)
					}
				case k < 85 && len(sent) > 0:
					m, err := s.RetryMessage(ctx, sent[rng.IntN(len(sent))], agents[step%2].ID, true)
					if err == nil {
						sent = append(sent, m.ID)
					}
				default:
					clk.Add(time.Duration(rng.IntN(600)) * time.Minute)
				}
				if err := recountFacts(ctx, s); err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
			}
		})
	}
}

// A client message stored with a time after its answer's (a client clock
// ahead, S1) counts as answered at once, not as a negative wait.
func TestReportNegativeWaitCountsAsZero(t *testing.T) {
	w := newReportWorld(t)
	w.at("27", "09:00")
	r, err := w.s.ReceiveClientMessage(context.Background(), ClientMessage{Phone: "+375291000099", Name: "Z", Country: "BY",
		Kind: "text", Text: "ahead", SentAt: w.clk.Now().Add(3 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	w.conv["Z"] = r.Message.ConversationID
	w.send("Z", w.ann, "text", false)
	// Whatever S1 made of the client's time, the wait as stored is negative.
	if _, err := w.s.write.ExecContext(context.Background(), `UPDATE messages SET answer_ms = -180000 WHERE id = ?`, r.Message.ID); err != nil {
		t.Fatal(err)
	}
	rep := w.report(ReportFilter{From: day(27), To: day(28), Loc: time.UTC})
	if rep.Responses != (Percentiles{Count: 1}) || rep.ResponseBuckets[0].Count != 1 {
		t.Errorf("responses %+v, buckets %+v: want one answered at once", rep.Responses, rep.ResponseBuckets)
	}
}

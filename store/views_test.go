package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"sessiondesk/session"
)

// viewWant is q's view computed the slow way: every conversation read by
// id, kept by InView, sorted by KeyIn.
func viewWant(t *testing.T, s *Store, q ListQuery) []int64 {
	t.Helper()
	var want []ListRow
	var now time.Time
	err := s.Read(context.Background(), func(r *Reader) error {
		now = r.Now()
		var ids []int64
		for id := int64(1); id <= 200; id++ {
			ids = append(ids, id)
		}
		rows, err := r.ListRowsByID(context.Background(), ids)
		for _, row := range rows {
			if row.InView(q, now, s.Rules().MaxUnanswered) {
				want = append(want, row)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, func(a, b ListRow) int {
		ka, kb := a.KeyIn(q, now), b.KeyIn(q, now)
		if ka.Band != kb.Band {
			return bandRank(ka.Band) - bandRank(kb.Band)
		}
		less := ka.Key < kb.Key || (ka.Key == kb.Key && ka.ID < kb.ID)
		if ka.Band == bandWaiting { // ascending
			if less {
				return -1
			}
			return 1
		}
		if less { // descending
			return 1
		}
		return -1
	})
	ids := make([]int64, len(want))
	for i, r := range want {
		ids[i] = r.ID
	}
	return ids
}

// TestInViewMatchesTheQueries plays random traffic (clients writing, agents
// answering, assigning, changing statuses, the unanswered limit reached,
// time passing over session ends) and checks after each round that every
// view, walked page by page, lists what InView (the hub's membership test)
// and KeyIn (the script's order, the same rules) say, and that each count
// is the length of its view.
func TestInViewMatchesTheQueries(t *testing.T) {
	rules := session.Defaults()
	rules.Window = 3 * time.Hour
	rules.MaxUnanswered = 2
	s, clk := newStore(t, rules)
	ctx := context.Background()
	var agents []Agent
	for _, login := range []string{"olga", "ivan"} {
		a, err := s.EnsureAgent(ctx, login, strings.ToUpper(login[:1])+login[1:], "agent")
		if err != nil {
			t.Fatal(err)
		}
		agents = append(agents, a)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	var convs []int64
	statuses := []string{ConvOpen, ConvOpen, ConvPending, ConvResolved}
	for round := range 12 {
		for range 15 {
			switch k := rng.IntN(10); {
			case k < 4 || len(convs) == 0:
				r := receive(t, s, fmt.Sprintf("+3752986%05d", rng.IntN(40)), "hi")
				if !slices.Contains(convs, r.Message.ConversationID) {
					convs = append(convs, r.Message.ConversationID)
				}
			case k < 7:
				var refusal *session.Refusal
				if _, err := sendText(s, convs[rng.IntN(len(convs))], "answer", true); err != nil && !errors.As(err, &refusal) {
					t.Fatal(err)
				}
			case k < 8:
				u := ConversationUpdate{Assign: true}
				if n := rng.IntN(3); n < 2 {
					u.Assignee = agents[n].Login
				}
				if _, err := s.UpdateConversation(ctx, convs[rng.IntN(len(convs))], agents[0].ID, u); err != nil {
					t.Fatal(err)
				}
			case k < 9:
				u := ConversationUpdate{Status: statuses[rng.IntN(len(statuses))]}
				if _, err := s.UpdateConversation(ctx, convs[rng.IntN(len(convs))], agents[1].ID, u); err != nil {
					t.Fatal(err)
				}
			default:
				clk.Add(time.Duration(rng.IntN(50)) * time.Minute)
			}
			clk.Add(time.Duration(rng.IntN(5)) * time.Second)
		}
		for _, status := range []string{"", StatusAny, ConvResolved} {
			var counts ViewCounts
			if err := s.Read(ctx, func(r *Reader) (err error) {
				counts, err = r.ViewCounts(ctx, status, 0)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			for _, agent := range agents {
				for _, v := range Views {
					q := ListQuery{View: v, Status: status, Agent: agent.ID}
					got, _ := listViewAll(t, s, q, 3)
					want := viewWant(t, s, q)
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("round %d, %s/%q for %s: the query lists %v, InView and KeyIn say %v",
							round, v, status, agent.Login, got, want)
					}
					if n := counts.Of(v, agent.ID); n != len(want) {
						t.Errorf("round %d, %s/%q for %s: count %d, the view has %d", round, v, status, agent.Login, n, len(want))
					}
				}
			}
		}
	}
	// The traffic reached every view, or the test proved little.
	var counts ViewCounts
	_ = s.Read(ctx, func(r *Reader) (err error) {
		counts, err = r.ViewCounts(ctx, StatusAny, 24*time.Hour)
		return err
	})
	if counts.Waiting == 0 || counts.Lost == 0 || counts.Locked+counts.Expiring == 0 || counts.Unassigned == 0 || len(counts.Mine) == 0 {
		t.Errorf("the traffic left views empty: %+v", counts)
	}
}

// A client waiting on us is on top of the list until answered, whatever
// newer activity there is below; answering puts them back in activity order.
func TestWaitingClientsComeFirst(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	a := receive(t, s, "+375298600001", "first")
	clk.Add(time.Minute)
	b := receive(t, s, "+375298600002", "second")
	clk.Add(time.Minute)
	if _, err := sendText(s, b.Message.ConversationID, "answered", false); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	c := receive(t, s, "+375298600003", "third")
	got, _ := listAll(t, s, 10)
	// a and c wait (a's session ends first); b was answered last, below them.
	want := []int64{a.Message.ConversationID, c.Message.ConversationID, b.Message.ConversationID}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("list %v, want %v (waiting by session end, then activity)", got, want)
	}
	// Once a's session ends unanswered it is lost: no longer on top.
	clk.Add(24*time.Hour - 2*time.Minute + time.Second)
	got, _ = listAll(t, s, 10)
	want = []int64{c.Message.ConversationID, b.Message.ConversationID, a.Message.ConversationID}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after a's session ended: list %v, want %v", got, want)
	}
	lost, _ := listViewAll(t, s, ListQuery{View: ViewLost}, 10)
	if fmt.Sprint(lost) != fmt.Sprint([]int64{a.Message.ConversationID}) {
		t.Errorf("Closed unanswered lists %v, want only a", lost)
	}
}

// Every view's page and count is a range of an index, never a scan of every
// conversation or a sort of all of them.
func TestViewsUseTheirIndexes(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	now := ms(t0)
	// ListView's query, with its agent bound in the text.
	listSelect := strings.Replace(listMarkSelect, "rd.agent_id = ?", "rd.agent_id = 3", 1)
	for _, c := range []struct{ name, query, index string }{
		{"waiting band", listSelect + ` WHERE c.status = ? AND ` + waitingCond + ` AND c.session_ends_at > ? ORDER BY c.session_ends_at, c.id LIMIT 51`, "conversations_waiting"},
		{"lost", listSelect + ` WHERE c.status = ? AND ` + waitingCond + ` AND c.session_ends_at <= ? ORDER BY c.session_ends_at DESC, c.id DESC LIMIT 51`, "conversations_waiting"},
		{"count waiting", `SELECT count(*) FROM conversations WHERE status = ? AND last_in_id > 0 AND unanswered = 0 AND session_ends_at > ?`, "conversations_waiting"},
		{"count by assignee", `SELECT assignee_id, count(*) FROM conversations WHERE status = ? AND 1 = ? GROUP BY assignee_id`, "conversations_by_status_assignee"},
		{"All, the activity band", listSelect + ` WHERE +c.status = ? AND NOT (` + waitingCond + ` AND c.session_ends_at > ?) ORDER BY c.last_activity_at DESC, c.id DESC LIMIT 51`, "conversations_by_activity"},
		{"Mine, the activity band", listSelect + ` WHERE c.status = ? AND c.assignee_id = 3 AND NOT (` + waitingCond + ` AND c.session_ends_at > ?) ORDER BY c.last_activity_at DESC, c.id DESC LIMIT 51`, "conversations_by_status_assignee"},
		{"moved by time", listSelect + ` WHERE (c.session_ends_at > ? AND c.session_ends_at <= ?) OR (c.session_ends_at > 7 AND c.session_ends_at <= 8) ORDER BY c.session_ends_at LIMIT 500`, "conversations_by_end"},
		{"count locked", `SELECT count(*) FROM conversations WHERE +status = ? AND session_ends_at > ? AND session_ends_at <= 9 AND unanswered >= 5`, "conversations_by_end"},
		{"locked", listSelect + ` WHERE +c.status = ? AND c.session_ends_at > ? AND c.session_ends_at <= 9 AND c.unanswered >= 5 ORDER BY c.last_activity_at DESC, c.id DESC LIMIT 51`, "conversations_by_end"},
		{"expiring", listSelect + ` WHERE +c.status = ? AND c.session_ends_at > ? AND c.session_ends_at <= 5 AND c.unanswered < 5 ORDER BY c.last_activity_at DESC, c.id DESC LIMIT 51`, "conversations_by_end"},
	} {
		plan := queryPlan(t, s, c.query, ConvOpen, now)
		if !strings.Contains(plan, "INDEX "+c.index) || (strings.Contains(c.name, "band") && strings.Contains(plan, "TEMP B-TREE FOR ORDER BY")) {
			t.Errorf("%s does not use %s:\n%s", c.name, c.index, plan)
		}
	}
	// ListView's own queries, every view and band: an index range, and the
	// views that sort their candidates join only the page's rows, after it.
	for _, v := range []View{ViewAll, ViewMine, ViewUnassigned, ViewWaiting, ViewExpiring, ViewLocked, ViewLost} {
		for _, band := range []byte{bandWaiting, bandActivity, bandLost} {
			query, args := listBandQuery(ListQuery{View: v, Agent: 3}.normal(), band, &ListCursor{Band: band, Key: 5, ID: 9}, t0, 5, 51)
			plan := queryPlan(t, s, query, args...)
			if testing.Verbose() {
				t.Logf("%s, band %c:\n%s", v, band, plan)
			}
			picked := v == ViewExpiring || v == ViewLocked
			fullScan := slices.Contains(strings.Split(plan, "\n"), "SCAN c")
			if fullScan || picked != (strings.Contains(plan, "CO-ROUTINE pick") || strings.Contains(plan, "MATERIALIZE pick")) {
				t.Errorf("%s, band %c:\n%s", v, band, plan)
			}
		}
	}
	// The unread total reads the index alone, both of its ranges.
	plan := queryPlan(t, s, unreadInViewsQuery, 3, UnreadScan)
	if strings.Count(plan, "USING COVERING INDEX conversations_by_status_assignee") != 2 {
		t.Errorf("the unread total does not read conversations_by_status_assignee alone, twice:\n%s", plan)
	}
}

func TestParseViewAndStatus(t *testing.T) {
	for _, v := range []string{"mine", "unassigned", "all", "waiting", "expiring", "locked", "lost", ""} {
		if _, err := ParseView(v); err != nil {
			t.Errorf("ParseView(%q): %v", v, err)
		}
	}
	for _, v := range []string{"Mine", "mine ", "drop table", strings.Repeat("x", 5000), "all\x00"} {
		if _, err := ParseView(v); !errors.Is(err, ErrBadView) {
			t.Errorf("ParseView(%q) = %v, want ErrBadView", v, err)
		}
	}
	if st, err := ParseStatusFilter(""); err != nil || st != ConvOpen {
		t.Errorf(`ParseStatusFilter("") = %q, %v; want open`, st, err)
	}
	for _, v := range []string{"closed", "OPEN", "any "} {
		if _, err := ParseStatusFilter(v); !errors.Is(err, ErrBadView) {
			t.Errorf("ParseStatusFilter(%q) = %v, want an error", v, err)
		}
	}
}

// The unread total of several agents at once, read the cheap way (the shared
// mark once, corrected by each agent's own), and of each agent alone (what a
// page load reads), is what each agent's marks say
// conversation by conversation, after random reads, marks unread,
// assignments, statuses and client messages.
func TestUnreadInViewsOfMatchesEachAgentsMarks(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	var agents []Agent
	for _, login := range []string{"olga", "ivan", "anna"} {
		a, err := s.EnsureAgent(ctx, login, login, "agent")
		if err != nil {
			t.Fatal(err)
		}
		agents = append(agents, a)
	}
	ids := []int64{0} // agent 0: an id without any mark or conversation
	for _, a := range agents {
		ids = append(ids, a.ID)
	}
	rng := rand.New(rand.NewPCG(3, 5))
	var convs []int64
	for step := range 300 {
		clk.Add(time.Duration(rng.IntN(60)) * time.Second)
		switch k := rng.IntN(10); {
		case k < 4 || len(convs) == 0:
			r := receive(t, s, fmt.Sprintf("+3752986%05d", rng.IntN(30)), "hi")
			if !slices.Contains(convs, r.Message.ConversationID) {
				convs = append(convs, r.Message.ConversationID)
			}
		case k < 6:
			if err := s.MarkRead(ctx, agents[rng.IntN(3)].ID, convs[rng.IntN(len(convs))]); err != nil {
				t.Fatal(err)
			}
		case k < 7:
			if err := s.MarkUnread(ctx, agents[rng.IntN(3)].ID, convs[rng.IntN(len(convs))]); err != nil {
				t.Fatal(err)
			}
		case k < 9:
			u := ConversationUpdate{Assign: true}
			if n := rng.IntN(4); n < 3 {
				u.Assignee = agents[n].Login
			}
			if _, err := s.UpdateConversation(ctx, convs[rng.IntN(len(convs))], agents[0].ID, u); err != nil {
				t.Fatal(err)
			}
		default:
			u := ConversationUpdate{Status: []string{ConvOpen, ConvPending, ConvResolved}[rng.IntN(3)]}
			if _, err := s.UpdateConversation(ctx, convs[rng.IntN(len(convs))], agents[1].ID, u); err != nil {
				t.Fatal(err)
			}
		}
		err := s.Read(ctx, func(r *Reader) error {
			got, err := r.UnreadInViewsOf(ctx, ids)
			if err != nil {
				return err
			}
			rows, err := r.ListRowsByID(ctx, convs)
			if err != nil {
				return err
			}
			for _, agent := range ids {
				marks, err := r.readMarks(ctx, agent, convs)
				if err != nil {
					return err
				}
				want := 0
				for _, row := range rows {
					mine := row.Assignee == nil || row.Assignee.ID == agent
					if row.Status == ConvOpen && mine && row.LastInID > marks[row.ID] {
						want++
					}
				}
				if got[agent] != want {
					t.Fatalf("step %d, agent %d: unread total %d, their marks say %d", step, agent, got[agent], want)
				}
				one, err := r.UnreadInViews(ctx, agent)
				if err != nil {
					return err
				}
				if one != want {
					t.Fatalf("step %d, agent %d: unread total of the agent alone %d, their marks say %d", step, agent, one, want)
				}
				// The list carries the same marks, in every view and page.
				for _, v := range []View{ViewAll, ViewMine, ViewWaiting} {
					q := ListQuery{View: v, Status: StatusAny, Agent: agent}
					var after *ListCursor
					for {
						page, next, err := r.ListView(ctx, q, after, 7)
						if err != nil {
							return err
						}
						for _, row := range page {
							if row.ReadMark != marks[row.ID] {
								t.Fatalf("step %d, agent %d, %s: the list's mark on %d is %d, readMarks says %d",
									step, agent, v, row.ID, row.ReadMark, marks[row.ID])
							}
						}
						if next == nil {
							break
						}
						after = next
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Case 9: the client writes and nobody answers before the end. The session
// costs nothing, and the conversation leaves Waiting on us for Closed
// unanswered at that moment (not before), in the lists and in the counts.
func TestCase9_UnansweredSessionIsClosedUnanswered(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Is my order ready?").Message.ConversationID
	at := func(d time.Duration) (waiting, lost []int64, counts ViewCounts, cv Conversation) {
		t.Helper()
		clk.Set(t0.Add(d))
		waiting, _ = listViewAll(t, s, ListQuery{View: ViewWaiting}, 10)
		lost, _ = listViewAll(t, s, ListQuery{View: ViewLost}, 10)
		if err := s.Read(ctx, func(r *Reader) (err error) {
			if counts, err = r.ViewCounts(ctx, "", 0); err != nil {
				return err
			}
			cv, err = r.Conversation(ctx, conv)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return waiting, lost, counts, cv
	}
	waiting, lost, counts, _ := at(24*time.Hour - time.Second)
	if len(waiting) != 1 || len(lost) != 0 || counts.Waiting != 1 || counts.Lost != 0 {
		t.Errorf("a second before the end: waiting %v lost %v counts %+v, want waiting only", waiting, lost, counts)
	}
	waiting, lost, counts, cv := at(24 * time.Hour)
	if len(waiting) != 0 || fmt.Sprint(lost) != fmt.Sprint([]int64{conv}) || counts.Waiting != 0 || counts.Lost != 1 {
		t.Errorf("at the end: waiting %v lost %v counts %+v, want Closed unanswered only", waiting, lost, counts)
	}
	if cur := cv.State.Current; cur == nil || cur.Cost() != 0 || !cur.Unanswered(clk.Now()) {
		t.Errorf("the session: %+v, want it to cost 0 and be reported unanswered", cur)
	}
}

// The views that sort their candidates (Expiring and Locked read
// conversations_by_end, a client search reads its matches) pick a page's
// rows before reading the rest of them: paged two at a time, each lists
// exactly its conversations, in the view's order as computed here from the
// rows themselves, each row whole and with its agent's mark.
func TestSortedViewsPageWholeRowsInOrder(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	olga, err := s.EnsureAgent(ctx, "olga", "Olga", "agent")
	if err != nil {
		t.Fatal(err)
	}
	var convs []int64
	for i := range 14 {
		clk.Add(5 * time.Minute)
		r := receive(t, s, fmt.Sprintf("+3752986%05d", i), fmt.Sprintf("question %d", i))
		convs = append(convs, r.Message.ConversationID)
	}
	// Replies: one answer each for some (not waiting on us any more), five for
	// three of them (locked until the client writes), the rest still waiting.
	for i, n := range map[int]int{1: 1, 4: 1, 6: 5, 9: 5, 10: 5, 11: 1, 12: 1} {
		for range n {
			clk.Add(time.Second)
			if _, err := sendText(s, convs[i], "answer", false); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, i := range []int{0, 4, 9} {
		if err := s.MarkRead(ctx, olga.ID, convs[i]); err != nil {
			t.Fatal(err)
		}
	}
	// 23 h 40 min after the first client wrote: the sessions of the first
	// eleven end within the hour (Expiring, or Locked for those locked).
	clk.Add(23*time.Hour + 40*time.Minute - 14*5*time.Minute)
	search, err := ParseSearch("+3752986")
	if err != nil {
		t.Fatal(err)
	}
	var all []ListRow
	var marks map[int64]int64
	if err := s.Read(ctx, func(r *Reader) error {
		if all, err = r.ListRowsByID(ctx, convs); err != nil {
			return err
		}
		marks, err = r.readMarks(ctx, olga.ID, convs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	waiting := func(row ListRow) bool {
		return row.LastInID > 0 && row.State.Unanswered == 0 && row.SessionEndsAt.After(now)
	}
	for _, c := range []struct {
		name string
		q    ListQuery
		in   func(ListRow) bool
	}{
		{"expiring", ListQuery{View: ViewExpiring, Agent: olga.ID}, func(row ListRow) bool {
			return row.SessionEndsAt.After(now) && !row.SessionEndsAt.After(now.Add(time.Hour)) && row.State.Unanswered < 5
		}},
		{"locked", ListQuery{View: ViewLocked, Agent: olga.ID}, func(row ListRow) bool {
			return row.SessionEndsAt.After(now) && row.State.Unanswered >= 5
		}},
		{"a client search", ListQuery{View: ViewAll, Agent: olga.ID, Contacts: search}, func(ListRow) bool { return true }},
	} {
		var want []ListRow
		for _, row := range all {
			if c.in(row) {
				want = append(want, row)
			}
		}
		slices.SortFunc(want, func(a, b ListRow) int {
			switch wa, wb := waiting(a) && c.q.View != ViewLocked, waiting(b) && c.q.View != ViewLocked; {
			case wa && !wb:
				return -1
			case wb && !wa:
				return 1
			case wa:
				return cmp.Or(a.SessionEndsAt.Compare(b.SessionEndsAt), cmp.Compare(a.ID, b.ID))
			}
			return cmp.Or(b.LastActivityAt.Compare(a.LastActivityAt), cmp.Compare(b.ID, a.ID))
		})
		if len(want) < 3 {
			t.Fatalf("%s: only %d conversations in the view; the test needs more than a page", c.name, len(want))
		}
		var got []ListRow
		var after *ListCursor
		for {
			var page []ListRow
			var next *ListCursor
			if err := s.Read(ctx, func(r *Reader) error {
				page, next, err = r.ListView(ctx, c.q, after, 2)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if next == nil {
				break
			}
			after = next
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, want %d", c.name, len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			mark := marks[w.ID]
			if g.ID != w.ID || g.Contact.Phone != w.Contact.Phone || g.Last == nil || g.Last.Body != w.Last.Body ||
				g.State.Current == nil || g.State.Current.EndsAt != w.State.Current.EndsAt || g.ReadMark != mark {
				t.Errorf("%s, row %d: conversation %d (%s, last %v, mark %d), want %d (%s, mark %d)", c.name, i,
					g.ID, g.Contact.Phone, g.Last, g.ReadMark, w.ID, w.Contact.Phone, mark)
			}
		}
	}
}

// readMarks returns agent's mark on each of these conversations, one query
// of its own: the tests' check of the marks ListView carries.
func (r *Reader) readMarks(ctx context.Context, agent int64, ids []int64) (map[int64]int64, error) {
	out := make(map[int64]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	arg, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("read marks: %w", err)
	}
	rows, err := r.q.QueryContext(ctx, `SELECT c.id, `+readMarkExpr+` FROM conversations c
		LEFT JOIN conversation_reads rd ON rd.agent_id = ? AND rd.conversation_id = c.id
		WHERE c.id IN (SELECT value FROM json_each(?))`, agent, string(arg))
	if err != nil {
		return nil, fmt.Errorf("read marks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, mark int64
		if err := rows.Scan(&id, &mark); err != nil {
			return nil, fmt.Errorf("read marks: %w", err)
		}
		out[id] = mark
	}
	return out, rows.Err()
}

// Unread is per agent: a reply reads the conversation for the agent who
// wrote it (from the API too, with no page open), and for nobody else, even
// a colleague who never opened it and so has no mark of their own.
func TestReplyReadsTheConversationOnlyForTheReplier(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	olga, ivan := agentNamed(t, s, "Olga"), agentNamed(t, s, "Ivan")
	conv := receive(t, s, "+375298603938", "hello").Message.ConversationID
	unread := func(agent int64) int {
		t.Helper()
		var n map[int64]int
		if err := s.Read(ctx, func(rd *Reader) (err error) {
			n, err = rd.UnreadCounts(ctx, agent, []int64{conv})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n[conv]
	}
	if unread(olga.ID) != 1 || unread(ivan.ID) != 1 {
		t.Fatalf("before the reply: Olga %d, Ivan %d unread, want 1 and 1", unread(olga.ID), unread(ivan.ID))
	}
	if _, err := sendAs(s, olga.ID, conv, "hi"); err != nil {
		t.Fatal(err)
	}
	if got := unread(olga.ID); got != 0 {
		t.Errorf("Olga, who replied: %d unread, want 0", got)
	}
	if got := unread(ivan.ID); got != 1 {
		t.Errorf("Ivan, who never read it: %d unread after Olga's reply, want 1", got)
	}
	// The reply assigned it to Olga: her tab counts it, read.
	var total int
	if err := s.Read(ctx, func(rd *Reader) (err error) {
		total, err = rd.UnreadInViews(ctx, olga.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if total != 0 {
		t.Errorf("Olga's tab count: %d unread conversations, want 0", total)
	}
}

// agentNamed ensures an agent of this name, its login the name in lower case.
func agentNamed(t testing.TB, s *Store, name string) Agent {
	t.Helper()
	a, err := s.EnsureAgent(context.Background(), strings.ToLower(name), name, "agent")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

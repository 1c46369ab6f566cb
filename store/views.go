package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// The views of the list: who the conversation is for (Mine, Unassigned, All)
// and where its session stands (Waiting on us, Expiring, Locked, Closed
// unanswered). Every view is answered from the conversation row alone
// (migration 00017 keeps the latest session's end on it; 00010 the unanswered
// run and the client's newest message), so a page is an index range, a count
// is an index count, and the live hub decides a row's membership in Go from
// the row it already read (ListRow.InView), without a query per page.

// View names a view of the list.
type View string

// The views, as they appear in URLs (?view=) and the API.
const (
	ViewAll        View = "all"
	ViewMine       View = "mine"
	ViewUnassigned View = "unassigned"
	ViewWaiting    View = "waiting"  // the client wrote last, unanswered, the session still open
	ViewExpiring   View = "expiring" // the session ends within the window, not locked
	ViewLocked     View = "locked"   // the unanswered limit is reached: only the client can unlock it
	ViewLost       View = "lost"     // the session ended with the client's last message unanswered
)

// Views lists every view in the sidebar's order.
var Views = []View{ViewMine, ViewUnassigned, ViewAll, ViewWaiting, ViewExpiring, ViewLocked, ViewLost}

// StatusAny, as a ListQuery's Status, lists every status.
const StatusAny = "any"

// ErrBadView is returned for a view or status this server does not know.
var ErrBadView = errors.New("unknown view")

// ParseView reads a view name; "" is All.
func ParseView(s string) (View, error) {
	if s == "" {
		return ViewAll, nil
	}
	for _, v := range Views {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("%w %q: use one of mine, unassigned, all, waiting, expiring, locked, lost", ErrBadView, s)
}

// ParseStatusFilter reads a status filter; "" is open (the views show open
// conversations unless asked otherwise).
func ParseStatusFilter(s string) (string, error) {
	switch s {
	case "":
		return ConvOpen, nil
	case ConvOpen, ConvPending, ConvSnoozed, ConvResolved, StatusAny:
		return s, nil
	}
	return "", fmt.Errorf("%w status %q: use open, pending, snoozed, resolved or any", ErrBadView, s)
}

// DefaultExpiringWithin is how close to its end a session shows in Expiring.
const DefaultExpiringWithin = time.Hour

// ListQuery is what a page of the list shows.
type ListQuery struct {
	View   View
	Status string // a status, or StatusAny; "" is open
	Agent  int64  // the signed-in agent: whose Mine it is
	// ExpiringWithin is Expiring's window (0: DefaultExpiringWithin).
	ExpiringWithin time.Duration
	// Contacts, when not empty, keeps the clients whose name or number
	// matches it (the API's q=), among the first MaxListMatches matches.
	Contacts SearchQuery

	matched string // the matching conversation ids, as a JSON array, once read
}

// MaxListMatches bounds the clients a list filtered by q= considers.
const MaxListMatches = 1000

func (q ListQuery) normal() ListQuery {
	if q.View == "" {
		q.View = ViewAll
	}
	if q.Status == "" {
		q.Status = ConvOpen
	}
	if q.ExpiringWithin <= 0 {
		q.ExpiringWithin = DefaultExpiringWithin
	}
	return q
}

// Waiting tells whether the client wrote last and nothing answered it yet
// while the session is still open at now: the top of the list.
func (c Conversation) Waiting(now time.Time) bool {
	return c.LastInID > 0 && c.State.Unanswered == 0 && c.SessionEndsAt.After(now)
}

// Lost tells whether the session ended with the client's last message unanswered.
func (c Conversation) Lost(now time.Time) bool {
	return c.LastInID > 0 && c.State.Unanswered == 0 && !c.SessionEndsAt.IsZero() && !c.SessionEndsAt.After(now)
}

// InView tells whether the conversation belongs in q's view at now, with
// maxUnanswered the S4 limit. It is the Go twin of the WHERE of ListView,
// which TestInViewMatchesTheQueries holds it to.
func (c Conversation) InView(q ListQuery, now time.Time, maxUnanswered int) bool {
	q = q.normal()
	if q.Status != StatusAny && c.Status != q.Status {
		return false
	}
	open := c.SessionEndsAt.After(now)
	switch q.View {
	case ViewMine:
		return c.Assignee != nil && c.Assignee.ID == q.Agent
	case ViewUnassigned:
		return c.Assignee == nil
	case ViewWaiting:
		return c.Waiting(now)
	case ViewExpiring:
		return open && !c.SessionEndsAt.After(now.Add(q.ExpiringWithin)) && c.State.Unanswered < maxUnanswered
	case ViewLocked:
		return open && !c.SessionEndsAt.After(now.Add(sessionHorizon)) && c.State.Unanswered >= maxUnanswered
	case ViewLost:
		return c.Lost(now)
	}
	return true
}

// The bands of the list's order, as the cursor names them.
const (
	bandWaiting  = 'w' // waiting on us: soonest session end first
	bandActivity = 'a' // the rest: newest activity first
	bandLost     = 'e' // Closed unanswered: the latest end first
)

// KeyIn is the row's place in q's view at now: waiting clients first, by
// the end of their session (the one that dies first on top), then the rest by
// last activity; Closed unanswered by the end of the session, latest first.
func (r ListRow) KeyIn(q ListQuery, now time.Time) ListCursor {
	switch {
	case q.normal().View == ViewLost:
		return ListCursor{Band: bandLost, Key: ms(r.SessionEndsAt), ID: r.ID}
	case r.Waiting(now):
		return ListCursor{Band: bandWaiting, Key: ms(r.SessionEndsAt), ID: r.ID}
	}
	return ListCursor{Band: bandActivity, Key: r.LastActivityAt.UnixMilli(), ID: r.ID}
}

// viewWhere appends q's filters (only those in use) and their arguments.
func viewWhere(q ListQuery, band byte, now time.Time, maxUnanswered int, where []string, args []any) ([]string, []any) {
	if q.Status != StatusAny {
		if q.View == ViewExpiring || q.View == ViewLocked || (q.View == ViewAll && band == bandActivity) {
			// The unary + keeps the planner off the status index: the open
			// sessions (a short range of conversations_by_end) are fewer
			// than the open conversations, and All walks the list's order
			// (conversations_by_activity) rather than sort every open one.
			where, args = append(where, `+c.status = ?`), append(args, q.Status)
		} else {
			where, args = append(where, `c.status = ?`), append(args, q.Status)
		}
	}
	if q.matched != "" {
		where, args = append(where, `c.id IN (SELECT value FROM json_each(?))`), append(args, q.matched)
	}
	switch q.View {
	case ViewMine:
		where, args = append(where, `c.assignee_id = ?`), append(args, q.Agent)
	case ViewUnassigned:
		where = append(where, `c.assignee_id IS NULL`)
	case ViewExpiring:
		where = append(where, `c.session_ends_at > ?`, `c.session_ends_at <= ?`, `c.unanswered < ?`)
		args = append(args, ms(now), ms(now.Add(q.ExpiringWithin)), maxUnanswered)
	case ViewLocked:
		where = append(where, `c.session_ends_at > ?`, `c.session_ends_at <= ?`, `c.unanswered >= ?`)
		args = append(args, ms(now), ms(now.Add(sessionHorizon)), maxUnanswered)
	}
	return where, args
}

// sessionHorizon is further ahead than any session can end (a window is at
// most a day, a client clock at most minutes ahead). Bounding "ends after
// now" by it makes the open sessions a closed range, which the planner then
// reads from conversations_by_end rather than walking the list's order.
const sessionHorizon = 7 * 24 * time.Hour

// The waiting condition, spelled as conversations_waiting's WHERE so the
// planner may use that index.
const waitingCond = `c.last_in_id > 0 AND c.unanswered = 0`

// ListView returns up to limit rows of q's view after the cursor (from the
// top when after is nil), in the view's order, each with q.Agent's read mark,
// and the next page's cursor, nil when these are the last.
func (r *Reader) ListView(ctx context.Context, q ListQuery, after *ListCursor, limit int) ([]ListRow, *ListCursor, error) {
	if limit <= 0 {
		return nil, nil, fmt.Errorf("list %s: limit %d", q.View, limit)
	}
	q = q.normal()
	if !q.Contacts.Empty() {
		ids, err := r.searchContacts(ctx, q.Contacts, MaxListMatches)
		if err != nil {
			return nil, nil, fmt.Errorf("list %s: %w", q.View, err)
		}
		if len(ids) == 0 {
			return nil, nil, nil
		}
		arg, err := json.Marshal(ids)
		if err != nil {
			return nil, nil, fmt.Errorf("list %s: %w", q.View, err)
		}
		q.matched = string(arg)
	}
	var bands []byte
	switch q.View {
	case ViewWaiting:
		bands = []byte{bandWaiting}
	case ViewLost:
		bands = []byte{bandLost}
	case ViewLocked:
		bands = []byte{bandActivity} // a locked client is never waiting on us
	default:
		bands = []byte{bandWaiting, bandActivity}
	}
	var rows []ListRow
	for _, band := range bands {
		if after != nil && bandRank(after.Band) > bandRank(band) {
			continue // the cursor is past this band
		}
		var from *ListCursor
		if after != nil && after.Band == band {
			from = after
		}
		got, err := r.listBand(ctx, q, band, from, limit+1-len(rows))
		if err != nil {
			return nil, nil, fmt.Errorf("list %s: %w", q.View, err)
		}
		if len(rows) == 0 {
			rows = got // most pages come from one band: no copy
		} else {
			rows = append(rows, got...)
		}
		if len(rows) > limit {
			break
		}
	}
	if len(rows) <= limit {
		return rows, nil, nil
	}
	rows = rows[:limit]
	next := rows[limit-1].KeyIn(q, r.now)
	return rows, &next, nil
}

func bandRank(b byte) int {
	if b == bandWaiting {
		return 0
	}
	return 1
}

// listBand reads one band of q's view.
func (r *Reader) listBand(ctx context.Context, q ListQuery, band byte, after *ListCursor, limit int) ([]ListRow, error) {
	query, args := listBandQuery(q, band, after, r.now, r.rules.MaxUnanswered, limit)
	return r.listRows(ctx, limit, true, query, args...)
}

// listBandQuery is the query of listBand, with its arguments.
func listBandQuery(q ListQuery, band byte, after *ListCursor, now time.Time, maxUnanswered, limit int) (string, []any) {
	where, args := viewWhere(q, band, now, maxUnanswered, nil, nil)
	var order string
	switch band {
	case bandWaiting:
		where, args = append(where, waitingCond, `c.session_ends_at > ?`), append(args, ms(now))
		if after != nil {
			where, args = append(where, `(c.session_ends_at, c.id) > (?, ?)`), append(args, after.Key, after.ID)
		}
		order = ` ORDER BY c.session_ends_at, c.id`
	case bandLost:
		where, args = append(where, waitingCond, `c.session_ends_at <= ?`), append(args, ms(now))
		if after != nil {
			where, args = append(where, `(c.session_ends_at, c.id) < (?, ?)`), append(args, after.Key, after.ID)
		}
		order = ` ORDER BY c.session_ends_at DESC, c.id DESC`
	default:
		if q.View != ViewLocked {
			where, args = append(where, `NOT (`+waitingCond+` AND c.session_ends_at > ?)`), append(args, ms(now))
		}
		if after != nil {
			where, args = append(where, `(c.last_activity_at, c.id) < (?, ?)`), append(args, after.Key, after.ID)
		}
		order = ` ORDER BY c.last_activity_at DESC, c.id DESC`
	}
	cond := ``
	if len(where) > 0 {
		cond = ` WHERE ` + strings.Join(where, ` AND `)
	}
	if q.View == ViewExpiring || q.View == ViewLocked || q.matched != "" {
		// These read their candidates in another order than the list's
		// (conversations_by_end, or the matched ids) and sort them all:
		// joining before the sort cost every candidate a row's whole read
		// (its contact, last message, session and mark), not only the
		// page's. So the page's ids are picked first, from the
		// conversation's own columns, and only they are joined.
		pick := `SELECT c.id FROM conversations c` + cond + order + ` LIMIT ?`
		query := listPickHead + `FROM (` + pick + `) pick CROSS JOIN conversations c ON c.id = pick.id` + listPickTail + order
		return query, append(args, limit, q.Agent)
	}
	// The others walk an index in the list's order and stop at the page.
	args = append([]any{q.Agent}, args...)
	return listMarkSelect + cond + order + ` LIMIT ?`, append(args, limit)
}

// listPickHead and listPickTail are listMarkSelect around its FROM
// conversations c, which listBand replaces by the page's picked ids.
var listPickHead, listPickTail, _ = strings.Cut(listMarkSelect, `FROM conversations c`)

// ViewCounts are the sidebar's counts: every view's, Mine per agent.
type ViewCounts struct {
	All, Unassigned, Waiting, Expiring, Locked, Lost int
	Mine                                             map[int64]int // agent id -> conversations assigned
}

// Of returns the count of view v for agent.
func (c ViewCounts) Of(v View, agent int64) int {
	switch v {
	case ViewMine:
		return c.Mine[agent]
	case ViewUnassigned:
		return c.Unassigned
	case ViewWaiting:
		return c.Waiting
	case ViewExpiring:
		return c.Expiring
	case ViewLocked:
		return c.Locked
	case ViewLost:
		return c.Lost
	}
	return c.All
}

// ViewCounts counts every view at the snapshot's time for the conversations
// of status (a status or StatusAny; "" is open). All, Mine, Unassigned and
// the waiting total come from view_counts, kept by triggers (migration
// 00018): a row per (status, assignee). What depends on the time is a short
// range of an index over the open sessions (the last day): Waiting on us of
// conversations_waiting, Expiring and Locked of conversations_by_end; Closed
// unanswered is the waiting total minus Waiting on us.
func (r *Reader) ViewCounts(ctx context.Context, status string, expiringWithin time.Duration) (ViewCounts, error) {
	q := ListQuery{Status: status, ExpiringWithin: expiringWithin}.normal()
	out := ViewCounts{Mine: make(map[int64]int)}
	var args []any
	statusCond := func(byEnd bool) []string { return nil }
	if q.Status != StatusAny {
		args = []any{q.Status}
		statusCond = func(byEnd bool) []string {
			if byEnd { // as in viewWhere: the open sessions are the shorter range
				return []string{`+status = ?`}
			}
			return []string{`status = ?`}
		}
	}
	cond := func(byEnd bool, extra ...string) string {
		all := append(statusCond(byEnd), extra...)
		if len(all) == 0 {
			return ""
		}
		return ` WHERE ` + strings.Join(all, ` AND `)
	}
	rows, err := r.q.QueryContext(ctx, `SELECT assignee_id, sum(total), sum(waiting) FROM view_counts`+cond(false)+` GROUP BY assignee_id`, args...)
	if err != nil {
		return out, fmt.Errorf("view counts: %w", err)
	}
	defer rows.Close()
	waitingTotal := 0
	for rows.Next() {
		var agent int64
		var n, waiting int
		if err := rows.Scan(&agent, &n, &waiting); err != nil {
			return out, fmt.Errorf("view counts: %w", err)
		}
		out.All += n
		waitingTotal += waiting
		if agent != 0 {
			out.Mine[agent] = n
		} else {
			out.Unassigned = n
		}
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("view counts: %w", err)
	}
	// The statement above began the snapshot: its commits are known now.
	key := timedCountsKey{status: q.Status, expiringWithin: q.ExpiringWithin, maxUnanswered: r.rules.MaxUnanswered}
	gen, exact := r.exactGeneration()
	tc, ok := timedCounts{}, false
	if exact {
		tc, ok = r.memo.timedCounts(gen, key, ms(r.now))
	}
	if !ok {
		if tc, err = r.countTimed(ctx, key, args, cond, exact); err != nil {
			return out, err
		}
		if exact {
			r.memo.keepTimedCounts(gen, key, tc)
		}
	}
	out.Waiting, out.Expiring, out.Locked = tc.waiting, tc.expiring, tc.locked
	out.Lost = waitingTotal - out.Waiting
	return out, nil
}

// countTimed counts Waiting on us, Expiring and Locked at the snapshot's time.
// With span, it also reads the span of clock readings over which the counts
// stay what they are (until the soonest open session ends, or a session
// enters the Expiring window or the horizon Locked looks over); without, the
// counts are not kept, and the span is left empty.
func (r *Reader) countTimed(ctx context.Context, key timedCountsKey, statusArgs []any, cond func(bool, ...string) string,
	span bool) (timedCounts, error) {
	now, limit := ms(r.now), key.maxUnanswered
	out := timedCounts{from: now}
	for _, c := range []struct {
		dest  *int
		byEnd bool
		where []string
		args  []any
	}{
		{&out.waiting, false, []string{`last_in_id > 0`, `unanswered = 0`, `session_ends_at > ?`}, []any{now}},
		{&out.expiring, true, []string{`session_ends_at > ?`, `session_ends_at <= ?`, `unanswered < ?`},
			[]any{now, ms(r.now.Add(key.expiringWithin)), limit}},
		{&out.locked, true, []string{`session_ends_at > ?`, `session_ends_at <= ?`, `unanswered >= ?`},
			[]any{now, ms(r.now.Add(sessionHorizon)), limit}},
	} {
		err := r.q.QueryRowContext(ctx, `SELECT count(*) FROM conversations`+cond(c.byEnd, c.where...),
			append(append([]any{}, statusArgs...), c.args...)...).Scan(c.dest)
		if err != nil {
			return out, fmt.Errorf("view counts: %w", err)
		}
	}
	if !span {
		return out, nil
	}
	// Every status's sessions count here: a boundary too early only costs a
	// count made again.
	out.until = math.MaxInt64
	for _, edge := range []time.Duration{0, key.expiringWithin, sessionHorizon} {
		var end int64
		err := r.q.QueryRowContext(ctx, `SELECT session_ends_at FROM conversations WHERE session_ends_at > ?
			ORDER BY session_ends_at LIMIT 1`, now+edge.Milliseconds()).Scan(&end)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return out, fmt.Errorf("view counts: %w", err)
		default:
			out.until = min(out.until, end-edge.Milliseconds())
		}
	}
	return out, nil
}

// Unread per agent. An agent has read a conversation up to a client message
// (conversation_reads.read_in_id); without a row, up to the mark all agents
// shared before unread was per agent (conversations.last_read_message_id).

// readMarkExpr is an agent's mark on conversation c, the agent bound as r.
const readMarkExpr = `coalesce(rd.read_in_id, c.last_read_message_id)`

// MarkRead marks every client message of the conversation read for agent;
// ErrNotFound for an unknown conversation. It emits no event: what one agent
// read changes nobody else's list.
func (s *Store) MarkRead(ctx context.Context, agent, conversationID int64) error {
	return s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		lastIn, err := lastInID(ctx, tx, conversationID)
		if err != nil {
			return false, err
		}
		return false, setReadMark(ctx, tx, agent, conversationID, lastIn)
	})
}

// clientMessageBefore is a conversation's newest client message before an
// id (0: none), read backwards on messages_by_conversation.
const clientMessageBefore = `SELECT coalesce(max(id), 0) FROM messages
	WHERE conversation_id = ? AND direction = 'in' AND id < ?`

// MarkUnread makes the client's newest message of the conversation unread
// again for agent (the others stay read); ErrNotFound for an unknown
// conversation. One the client never wrote in has nothing to be unread: it
// is left as it is.
func (s *Store) MarkUnread(ctx context.Context, agent, conversationID int64) error {
	return s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		lastIn, err := lastInID(ctx, tx, conversationID)
		if err != nil || lastIn == 0 {
			return false, err
		}
		var before int64
		err = tx.QueryRowContext(ctx, clientMessageBefore, conversationID, lastIn).Scan(&before)
		if err != nil {
			return false, fmt.Errorf("mark conversation %d unread for agent %d: %w", conversationID, agent, err)
		}
		return false, setReadMark(ctx, tx, agent, conversationID, before)
	})
}

// lastInID is the conversation's newest client message (0: none yet).
func lastInID(ctx context.Context, tx queryer, conversationID int64) (int64, error) {
	var lastIn int64
	err := tx.QueryRowContext(ctx, `SELECT last_in_id FROM conversations WHERE id = ?`, conversationID).Scan(&lastIn)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("conversation %d: %w", conversationID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("conversation %d: %w", conversationID, err)
	}
	return lastIn, nil
}

// setReadMark sets agent's mark on the conversation (no write when it holds).
func setReadMark(ctx context.Context, tx queryer, agent, conversationID, mark int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO conversation_reads (agent_id, conversation_id, read_in_id) VALUES (?, ?, ?)
		ON CONFLICT (agent_id, conversation_id) DO UPDATE SET read_in_id = excluded.read_in_id
		WHERE read_in_id <> excluded.read_in_id`, agent, conversationID, mark)
	if err != nil {
		return fmt.Errorf("read mark of conversation %d for agent %d: %w", conversationID, agent, err)
	}
	return nil
}

// unreadCountsQuery counts the client messages after an agent's read mark in
// each conversation of a JSON list of ids, the agent bound first. It reads
// the range of messages_by_conversation after the mark.
const unreadCountsQuery = `SELECT c.id, (SELECT count(*) FROM messages m
		WHERE m.conversation_id = c.id AND m.direction = 'in' AND m.id > ` + readMarkExpr + `)
	FROM conversations c
	LEFT JOIN conversation_reads rd ON rd.agent_id = ? AND rd.conversation_id = c.id
	WHERE c.id IN (SELECT value FROM json_each(?)) AND c.last_in_id > ` + readMarkExpr

// UnreadCounts returns how many client messages of each conversation agent
// has not read (conversations with none are left out).
func (r *Reader) UnreadCounts(ctx context.Context, agent int64, ids []int64) (map[int64]int, error) {
	out := make(map[int64]int)
	if len(ids) == 0 {
		return out, nil
	}
	arg, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("unread counts: %w", err)
	}
	rows, err := r.q.QueryContext(ctx, unreadCountsQuery, agent, string(arg))
	if err != nil {
		return nil, fmt.Errorf("unread counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("unread counts: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}

// UnreadScan bounds how many of the most recently active open unassigned
// conversations the unread total looks at: the tab title counts what an
// agent is about to work on, not a backlog of thousands.
const UnreadScan = 500

// UnreadInViews counts the open conversations of agent's Mine and Unassigned
// views with a client message the agent has not read: the tab title's (N).
// Every page load asks it for one agent: one statement, one pass over the
// UnreadScan most recent unassigned conversations with the agent's own mark
// probed beside each, and the range of the agent's own (UnreadInViewsOf
// counts the same for many agents at once).
func (r *Reader) UnreadInViews(ctx context.Context, agent int64) (int, error) {
	var n int
	err := r.q.QueryRowContext(ctx, unreadInViewsQuery, agent, UnreadScan).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("unread in views of agent %d: %w", agent, err)
	}
	return n, nil
}

// unreadInViewsQuery counts agent ?1's unread conversations among the ?2
// most recently active open unassigned ones and their own open ones: two
// ranges of conversations_by_status_assignee, which carries both marks so
// that neither reads a conversation's row (migration 00050).
const unreadInViewsQuery = `SELECT
	(SELECT count(*) FROM (SELECT id, last_in_id, last_read_message_id FROM conversations
	                        WHERE status = 'open' AND assignee_id IS NULL
	                        ORDER BY last_activity_at DESC LIMIT ?2) c
	   LEFT JOIN conversation_reads rd ON rd.agent_id = ?1 AND rd.conversation_id = c.id
	  WHERE c.last_in_id > ` + readMarkExpr + `)
	+ (SELECT count(*) FROM conversations c
	   LEFT JOIN conversation_reads rd ON rd.agent_id = c.assignee_id AND rd.conversation_id = c.id
	  WHERE c.status = 'open' AND c.assignee_id = ?1 AND c.last_in_id > ` + readMarkExpr + `)`

// UnreadInViewsOf is UnreadInViews for several agents at once, at a cost
// that hardly grows with them: Unassigned (its UnreadScan most recently
// active conversations) is counted once by the shared mark, then corrected by
// the agents' own marks on those conversations (a probe of
// conversation_reads_by_conversation each); Mine is one range of
// conversations_by_status_assignee per agent.
func (r *Reader) UnreadInViewsOf(ctx context.Context, agents []int64) (map[int64]int, error) {
	out := make(map[int64]int, len(agents))
	if len(agents) == 0 {
		return out, nil
	}
	arg, err := json.Marshal(agents)
	if err != nil {
		return nil, fmt.Errorf("unread in views: %w", err)
	}
	const unassigned = `SELECT id, last_in_id, last_read_message_id FROM conversations
		WHERE status = 'open' AND assignee_id IS NULL ORDER BY last_activity_at DESC LIMIT ?`
	var base int
	if err := r.q.QueryRowContext(ctx, `SELECT count(*) FROM (`+unassigned+`) u
		WHERE u.last_in_id > u.last_read_message_id`, UnreadScan).Scan(&base); err != nil {
		return nil, fmt.Errorf("unread in views: %w", err)
	}
	for _, a := range agents {
		out[a] = base
	}
	add := func(query string, args ...any) error {
		rows, err := r.q.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var agent int64
			var n int
			if err := rows.Scan(&agent, &n); err != nil {
				return err
			}
			if _, ok := out[agent]; ok {
				out[agent] += n
			}
		}
		return rows.Err()
	}
	// An agent's own mark on an unassigned conversation replaces the shared one.
	if err := add(`SELECT rd.agent_id, sum((u.last_in_id > rd.read_in_id) - (u.last_in_id > u.last_read_message_id))
		FROM (`+unassigned+`) u JOIN conversation_reads rd ON rd.conversation_id = u.id
		WHERE rd.agent_id IN (SELECT value FROM json_each(?)) GROUP BY rd.agent_id`, UnreadScan, string(arg)); err != nil {
		return nil, fmt.Errorf("unread in views: %w", err)
	}
	if err := add(`SELECT c.assignee_id, count(*) FROM conversations c
		LEFT JOIN conversation_reads rd ON rd.agent_id = c.assignee_id AND rd.conversation_id = c.id
		WHERE c.status = 'open' AND c.assignee_id IN (SELECT value FROM json_each(?))
		  AND c.last_in_id > `+readMarkExpr+` GROUP BY c.assignee_id`, string(arg)); err != nil {
		return nil, fmt.Errorf("unread in views: %w", err)
	}
	return out, nil
}

// ReadMarksBy returns the marks agents have of their own on these
// conversations (agent -> conversation -> mark) and every conversation's
// shared mark, the one of an agent without their own: one probe of
// conversation_reads_by_conversation per conversation, whatever the agents.
func (r *Reader) ReadMarksBy(ctx context.Context, ids []int64) (own map[int64]map[int64]int64, shared map[int64]int64, err error) {
	own, shared = make(map[int64]map[int64]int64), make(map[int64]int64, len(ids))
	if len(ids) == 0 {
		return own, shared, nil
	}
	arg, err := json.Marshal(ids)
	if err != nil {
		return nil, nil, fmt.Errorf("read marks: %w", err)
	}
	rows, err := r.q.QueryContext(ctx, `SELECT c.id, c.last_read_message_id, coalesce(rd.agent_id, 0), coalesce(rd.read_in_id, 0)
		FROM conversations c LEFT JOIN conversation_reads rd ON rd.conversation_id = c.id
		WHERE c.id IN (SELECT value FROM json_each(?))`, string(arg))
	if err != nil {
		return nil, nil, fmt.Errorf("read marks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, floor, agent, mark int64
		if err := rows.Scan(&id, &floor, &agent, &mark); err != nil {
			return nil, nil, fmt.Errorf("read marks: %w", err)
		}
		shared[id] = floor
		if agent != 0 {
			if own[agent] == nil {
				own[agent] = make(map[int64]int64)
			}
			own[agent][id] = mark
		}
	}
	return own, shared, rows.Err()
}

// MaxTimeMoves bounds the rows one ListRowsEndingIn returns.
const MaxTimeMoves = 500

// ListRowsEndingIn returns the rows (at most MaxTimeMoves) whose latest
// session ends in (from, to] or, with expiringWithin, enters the Expiring
// window in that time: the conversations that time alone moved between the
// session views since from. A short range of conversations_by_end each.
func (r *Reader) ListRowsEndingIn(ctx context.Context, from, to time.Time, expiringWithin time.Duration) ([]ListRow, error) {
	if !to.After(from) {
		return nil, nil
	}
	rows, err := r.listRows(ctx, 0, false, listSelect+`
		WHERE (c.session_ends_at > ? AND c.session_ends_at <= ?) OR (c.session_ends_at > ? AND c.session_ends_at <= ?)
		ORDER BY c.session_ends_at LIMIT ?`,
		ms(from), ms(to), ms(from.Add(expiringWithin)), ms(to.Add(expiringWithin)), MaxTimeMoves)
	if err != nil {
		return nil, fmt.Errorf("rows ending from %s to %s: %w", from, to, err)
	}
	return rows, nil
}

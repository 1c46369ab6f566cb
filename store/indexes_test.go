package store

import (
	"strings"
	"testing"

	"sessiondesk/session"
)

// Migration 00051 dropped messages_by_direction and sessions_report, which
// every client message wrote to. The queries they served must still read a
// range of one conversation's messages (or of start times), never the whole
// table.
func TestQueriesOfTheDroppedIndexesReadARange(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	for _, c := range []struct {
		name, query, index string
		args               []any
	}{
		{"unread counts", unreadCountsQuery, "messages_by_conversation", []any{3, "[1,2,3]"}},
		{"a client message before an id (mark unread)", clientMessageBefore, "messages_by_conversation", []any{1, 99}},
		{"the agent who last replied (reminders)", `SELECT ` + reminderAssignee + ` FROM conversations c WHERE c.id = ?`,
			"messages_by_conversation", []any{1}},
		{"unsettled messages (reconcile)", unsettledSelect + ` WHERE m.conversation_id = ? AND m.direction = 'out'
			AND m.provider_id IS NOT NULL AND m.status IN ('sent', 'unconfirmed') ORDER BY m.id DESC LIMIT ?`,
			"messages_by_conversation", []any{1, 20}},
		{"a range of sessions' report facts", sessionFactsSQL, "sessions_by_started", []any{0, 86400000}},
	} {
		plan := queryPlan(t, s, c.query, c.args...)
		scans := false
		for _, step := range strings.Split(plan, "\n") {
			// The list of ids is the one table read whole.
			scans = scans || (strings.HasPrefix(step, "SCAN ") && !strings.Contains(step, "json_each"))
		}
		if scans || !strings.Contains(plan, "INDEX "+c.index) {
			t.Errorf("%s does not read a range of %s:\n%s", c.name, c.index, plan)
		}
	}
	var n int
	if err := s.read.QueryRow(`SELECT count(*) FROM sqlite_schema
		WHERE type = 'index' AND name IN ('messages_by_direction', 'sessions_report')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d of the dropped indexes are still there", n)
	}
}

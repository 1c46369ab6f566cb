package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"sessiondesk/session"
)

// listAll walks the list (All, every status) page by page.
func listAll(t *testing.T, s *Store, size int) (ids []int64, pages int) {
	t.Helper()
	return listViewAll(t, s, ListQuery{Status: StatusAny}, size)
}

// listViewAll walks q's view page by page.
func listViewAll(t *testing.T, s *Store, q ListQuery, size int) (ids []int64, pages int) {
	t.Helper()
	var after *ListCursor
	for {
		var rows []ListRow
		var next *ListCursor
		err := s.Read(context.Background(), func(r *Reader) error {
			var err error
			rows, next, err = r.ListView(context.Background(), q, after, size)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(rows) > size {
			t.Fatalf("page of %d rows, asked for %d", len(rows), size)
		}
		for _, lr := range rows {
			ids = append(ids, lr.ID)
		}
		if next == nil {
			return ids, pages
		}
		// The cursor travels as a string, like in a URL.
		c, err := ParseListCursor(next.String())
		if err != nil {
			t.Fatal(err)
		}
		after = &c
		if pages > 100 {
			t.Fatal("the pages do not end")
		}
	}
}

// Keyset pages reach every conversation once, in list order, also when many
// share the same activity time (the clock did not move) and the same session
// end. Nobody answered: every client waits, the one whose session ends first
// on top, and writing again moves nobody (the session's end stays).
func TestListPagesReachEveryConversationOnce(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	const n = 23
	for i := range n {
		if i%3 == 0 {
			clk.Add(time.Second) // groups of three with equal activity
		}
		receive(t, s, fmt.Sprintf("+3752986000%02d", i), "hello")
	}
	// The first conversation writes again: it is now the newest.
	clk.Add(time.Second)
	receive(t, s, "+375298600000", "again")

	got, pages := listAll(t, s, 5)
	if pages != 5 {
		t.Errorf("%d pages of 5 for %d rows, want 5", pages, n)
	}
	var want []int64
	for id := int64(1); id <= n; id++ {
		want = append(want, id)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the pages list %v, want %v", got, want)
	}
	// A page size that divides the list exactly ends without an empty page.
	if _, pages := listAll(t, s, n); pages != 1 {
		t.Errorf("%d pages of %d for %d rows, want 1", pages, n, n)
	}
}

// queryPlan is SQLite's plan for q, one step a line.
func queryPlan(t *testing.T, s *Store, q string, args ...any) string {
	t.Helper()
	rows, err := s.read.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "\n")
}

func TestListPageUsesTheActivityIndex(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	for _, q := range []string{
		listSelect + ` ORDER BY c.last_activity_at DESC, c.id DESC LIMIT 51`,
		listSelect + ` WHERE (c.last_activity_at, c.id) < (1, 1) ORDER BY c.last_activity_at DESC, c.id DESC LIMIT 51`,
	} {
		all := queryPlan(t, s, q)
		if !strings.Contains(all, "conversations_by_activity") || strings.Contains(all, "TEMP B-TREE FOR ORDER BY") {
			t.Errorf("the list query does not walk the activity index:\n%s", all)
		}
	}
}

// The outbox reads its work on every wake: through the partial indexes of
// queued and unconfirmed messages, never a scan of every message stored.
func TestQueuedUsesItsIndexes(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	all := queryPlan(t, s, queuedSelect, 10)
	if strings.Contains(all, "SCAN m\n") || strings.HasSuffix(all, "SCAN m") ||
		!strings.Contains(all, "messages_queued") || !strings.Contains(all, "messages_unconfirmed") {
		t.Errorf("the outbox query scans the messages:\n%s", all)
	}
}

func TestParseListCursorRefusesWhatItDidNotMake(t *testing.T) {
	for _, s := range []string{"", ":", "1", "abc:1", "1:abc", "-1:5", "5:0", "5:-3", "1:2:3",
		"99999999999999999999:1", strings.Repeat("9", 50), "1 :2", "0x10:2"} {
		if c, err := ParseListCursor(s); err == nil {
			t.Errorf("ParseListCursor(%q) = %+v, want an error", s, c)
		}
	}
	for _, c := range []ListCursor{{Band: bandActivity, Key: 1764000000123, ID: 42},
		{Band: bandWaiting, Key: 1764000000123, ID: 42}, {Band: bandLost, Key: 5, ID: 1}} {
		if got, err := ParseListCursor(c.String()); err != nil || got != c {
			t.Errorf("round trip: %+v %v, want %+v", got, err, c)
		}
	}
	// A cursor handed out before the views is the activity band.
	if got, err := ParseListCursor("1764000000123:42"); err != nil || got.Band != bandActivity || got.Key != 1764000000123 {
		t.Errorf("old cursor: %+v %v", got, err)
	}
	for _, s := range []string{"w", "w:1", "x1:2", "e-1:2", "ww1:2"} {
		if c, err := ParseListCursor(s); err == nil {
			t.Errorf("ParseListCursor(%q) = %+v, want an error", s, c)
		}
	}
}

func TestListRowsAndMessagesByID(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	a := receive(t, s, "+375298600001", "one")
	clk.Add(time.Second)
	b := receive(t, s, "+375298600002", "two")
	clk.Add(time.Second)
	msgs, err := sendText(s, a.Message.ConversationID, "reply", false)
	if err != nil {
		t.Fatal(err)
	}
	// a gets what b has not (a flag, an assignee): one scanner reads both
	// rows, and nothing of a's may show on b's, read after it.
	ctx := context.Background()
	if _, err := s.FlagFromReport(ctx, MessageRef{ID: msgs[0].ID}, "Not Viber User"); err != nil {
		t.Fatal(err)
	}
	olga, err := s.EnsureAgent(ctx, "olga", "Olga", "agent")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateConversation(ctx, a.Message.ConversationID, olga.ID, ConversationUpdate{Assign: true, Assignee: "olga"}); err != nil {
		t.Fatal(err)
	}
	err = s.Read(ctx, func(r *Reader) error {
		rows, err := r.ListRowsByID(ctx, []int64{b.Message.ConversationID, a.Message.ConversationID, 999})
		if err != nil {
			return err
		}
		if len(rows) != 2 || rows[0].ID != a.Message.ConversationID || rows[1].ID != b.Message.ConversationID {
			t.Fatalf("rows %+v, want a (newest) then b, and no unknown id", rows)
		}
		if rows[0].LastActivityAt != t0.Add(2*time.Second) || rows[0].Last == nil || rows[0].Last.Body != "reply" {
			t.Errorf("row a: activity %v, last %+v", rows[0].LastActivityAt, rows[0].Last)
		}
		if rows[0].Assignee == nil || rows[0].Assignee.Login != "olga" || len(rows[0].Contact.Flags) != 1 {
			t.Errorf("row a: assignee %+v, flags %v, want olga and one flag", rows[0].Assignee, rows[0].Contact.Flags)
		}
		if rows[1].Assignee != nil || len(rows[1].Contact.Flags) != 0 || rows[1].Last == nil || rows[1].Last.Body != "two" ||
			rows[1].LastActivityAt != t0.Add(time.Second) || rows[1].Contact.Phone != "+375298600002" {
			t.Errorf("row b carries another row's values: assignee %+v, flags %v, last %+v, activity %v, phone %s",
				rows[1].Assignee, rows[1].Contact.Flags, rows[1].Last, rows[1].LastActivityAt, rows[1].Contact.Phone)
		}
		if rows[0].State.Current == rows[1].State.Current || rows[0].Last == rows[1].Last {
			t.Error("two rows share a session or a last message")
		}
		if none, err := r.ListRowsByID(ctx, nil); err != nil || none != nil {
			t.Errorf("no ids: %v %v", none, err)
		}
		got, err := r.MessagesByID(ctx, []int64{msgs[0].ID, a.Message.ID, 12345})
		if err != nil {
			return err
		}
		if len(got) != 2 || got[0].ID != a.Message.ID || got[1].ID != msgs[0].ID || got[1].Body != "reply" {
			t.Errorf("messages %+v, want the two known ones, oldest first", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A thread is read through one scanner: a message without an attachment,
// read after one with, has none, and two attachments are never one value.
func TestMessagesDoNotCarryTheRowBefore(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	first, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: "+375298600001", Kind: session.File, Text: "the invoice",
		MediaURL: "https://media.example/1", FileName: "invoice.pdf"})
	if err != nil {
		t.Fatal(err)
	}
	conv := first.Message.ConversationID
	clk.Add(time.Second)
	receive(t, s, "+375298600001", "and a question")
	clk.Add(time.Second)
	if _, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: "+375298600001", Kind: session.File,
		MediaURL: "https://media.example/2", FileName: "receipt.pdf"}); err != nil {
		t.Fatal(err)
	}
	err = s.Read(ctx, func(r *Reader) error {
		msgs, err := r.Messages(ctx, conv, 10)
		if err != nil {
			return err
		}
		if len(msgs) != 3 {
			t.Fatalf("%d messages, want 3", len(msgs))
		}
		if msgs[0].Attachment == nil || msgs[0].Attachment.Name != "invoice.pdf" || msgs[0].Kind != session.File {
			t.Errorf("first: kind %s, attachment %+v", msgs[0].Kind, msgs[0].Attachment)
		}
		if msgs[1].Attachment != nil || msgs[1].Kind != session.Text || msgs[1].Body != "and a question" ||
			msgs[1].MediaURL != "" || msgs[1].FileName != "" {
			t.Errorf("the text after a file carries its values: kind %s, body %q, attachment %+v, media %q, file %q",
				msgs[1].Kind, msgs[1].Body, msgs[1].Attachment, msgs[1].MediaURL, msgs[1].FileName)
		}
		if msgs[2].Attachment == nil || msgs[2].Attachment.Name != "receipt.pdf" || msgs[2].Attachment == msgs[0].Attachment ||
			msgs[0].Attachment.Name != "invoice.pdf" || !msgs[2].CreatedAt.Equal(t0.Add(2*time.Second)) {
			t.Errorf("the two files: %+v and %+v, at %s", msgs[0].Attachment, msgs[2].Attachment, msgs[2].CreatedAt)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A row's newest message names its session: the latest one, read from the
// latest session's columns, or an older one, read on its own.
func TestListRowNamesItsNewestMessagesSession(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "hello").Message.ConversationID
	clk.Add(25 * time.Hour)
	newest := receive(t, s, "+375298603938", "a day later").Message
	lastSession := func() (conversation, list int) {
		t.Helper()
		var c Conversation
		var rows []ListRow
		err := s.Read(ctx, func(r *Reader) error {
			var err error
			if c, err = r.Conversation(ctx, conv); err != nil {
				return err
			}
			rows, err = r.ListRowsByID(ctx, []int64{conv})
			return err
		})
		if err != nil || len(rows) != 1 || c.Last == nil || rows[0].Last == nil {
			t.Fatalf("read conversation %d: %v, %d rows", conv, err, len(rows))
		}
		return c.Last.SessionNumber, rows[0].Last.SessionNumber
	}
	if c, l := lastSession(); c != 2 || l != 2 {
		t.Fatalf("newest message in session %d (conversation) and %d (list), want 2", c, l)
	}
	if _, err := s.write.ExecContext(ctx, `UPDATE messages SET session_id = (SELECT id FROM sessions
		WHERE conversation_id = ? AND number = 1) WHERE id = ?`, conv, newest.ID); err != nil {
		t.Fatal(err)
	}
	if c, l := lastSession(); c != 1 || l != 1 {
		t.Fatalf("newest message of an older session: session %d and %d, want 1", c, l)
	}
}

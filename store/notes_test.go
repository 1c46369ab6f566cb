package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"sessiondesk/session"
)

// conversationRow reads what the list and the panel show of a conversation.
func conversationRow(t *testing.T, s *Store, id int64) Conversation {
	t.Helper()
	var c Conversation
	if err := s.Read(context.Background(), func(r *Reader) error {
		var err error
		c, err = r.Conversation(context.Background(), id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

func activity(t *testing.T, s *Store, id int64) int64 {
	t.Helper()
	var at int64
	if err := s.read.QueryRow(`SELECT last_activity_at FROM conversations WHERE id = ?`, id).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

func TestNoteChangesNoSessionStateAndIsNeverQueued(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	rc := receive(t, s, "+375298603938", "Hello")
	conv := rc.Message.ConversationID
	if _, err := sendText(s, conv, "Hi", false); err != nil {
		t.Fatal(err)
	}
	olga, err := s.EnsureAgent(ctx, "olga", "Olga", "agent")
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	before := conversationRow(t, s, conv)
	beforeActivity := activity(t, s, conv)
	queuedBefore, err := s.Queued(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ { // more than the unanswered limit and a session's worth
		if _, err := s.AddNote(ctx, conv, olga.ID, "checking the order"); err != nil {
			t.Fatalf("note %d: %v", i, err)
		}
	}
	after := conversationRow(t, s, conv)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("notes changed the conversation:\nbefore %+v\nafter  %+v", before, after)
	}
	if a := activity(t, s, conv); a != beforeActivity {
		t.Errorf("notes moved the conversation's activity from %d to %d", beforeActivity, a)
	}
	if err := recount(ctx, s); err != nil {
		t.Errorf("counters after notes: %v", err)
	}
	queued, err := s.Queued(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != len(queuedBefore) {
		t.Errorf("queued for the provider: %d before the notes, %d after", len(queuedBefore), len(queued))
	}
	// The session still takes exactly what it took before.
	if st := after.State; st.Unanswered != 1 || st.Current.Used != 1 {
		t.Errorf("state after notes: unanswered %d, used %d; want 1 and 1", st.Unanswered, st.Current.Used)
	}
}

func TestNoteWhenNoSessionIsOpen(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	clk.Add(48 * time.Hour) // the session is long over
	a, _ := s.EnsureAgent(ctx, "olga", "Olga", "agent")
	before := conversationRow(t, s, conv)
	n, err := s.AddNote(ctx, conv, a.ID, "client asked for a callback")
	if err != nil {
		t.Fatalf("a note on a closed session: %v", err)
	}
	if n.AgentName != "Olga" || n.Body != "client asked for a callback" || !n.CreatedAt.Equal(clk.Now().Truncate(time.Millisecond)) {
		t.Errorf("note %+v", n)
	}
	if after := conversationRow(t, s, conv); !reflect.DeepEqual(before, after) {
		t.Errorf("a note reopened or changed the closed conversation: %+v → %+v", before, after)
	}
}

func TestNoteRefusals(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	a, _ := s.EnsureAgent(ctx, "olga", "Olga", "agent")
	for _, tc := range []struct {
		name, body string
		code       session.Code
	}{
		{"empty", "", session.InvalidType},
		{"spaces and breaks", " \n\t ", session.InvalidType},
		{"invisible", "\u200b\u00a0\ufeff", session.InvalidType},
		{"too long", strings.Repeat("я", MaxNoteLen+1), session.TextTooLong},
	} {
		_, err := s.AddNote(ctx, conv, a.ID, tc.body)
		if refusalCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if _, err := s.AddNote(ctx, conv, a.ID, strings.Repeat("я", MaxNoteLen)); err != nil {
		t.Errorf("a note of exactly %d characters: %v", MaxNoteLen, err)
	}
	if _, err := s.AddNote(ctx, 9999, a.ID, "hello"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown conversation: %v, want ErrNotFound", err)
	}
	var notes []Note
	_ = s.Read(ctx, func(r *Reader) error {
		var err error
		notes, err = r.Notes(ctx, conv, time.Time{}, 100)
		return err
	})
	if len(notes) != 1 {
		t.Errorf("%d notes kept, want only the one accepted", len(notes))
	}
}

func TestNoteMentions(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	olga, _ := s.EnsureAgent(ctx, "olga@example.com", "Olga", "agent")
	ivan, _ := s.EnsureAgent(ctx, "ivan", "Ivan", "agent")
	anna, _ := s.EnsureAgent(ctx, "anna", "Anna", "admin")

	n, err := s.AddNote(ctx, conv, olga.ID,
		"@IVAN and @olga please look; mail bob@example.com, ask @nobody and @ivan again. cc @olga@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got := n.MentionLogins(); !reflect.DeepEqual(got, []string{"ivan", "olga@example.com"}) {
		t.Errorf("mentions %v, want ivan and olga (once each); bob's e-mail and @nobody are text", got)
	}
	for _, m := range n.Mentions {
		if m.Seen != (m.AgentID == olga.ID) {
			t.Errorf("mention of %s seen=%v: only one's own mention is seen at once", m.Login, m.Seen)
		}
	}
	if n.Body != "@IVAN and @olga please look; mail bob@example.com, ask @nobody and @ivan again. cc @olga@example.com" {
		t.Errorf("the text changed: %q", n.Body)
	}
	n2, err := s.AddNote(ctx, conv, anna.ID, "@ivan second")
	if err != nil {
		t.Fatal(err)
	}
	counts := func() map[int64]int {
		var c map[int64]int
		_ = s.Read(ctx, func(r *Reader) error {
			var err error
			c, err = r.UnseenMentions(ctx, []int64{olga.ID, ivan.ID, anna.ID})
			return err
		})
		return c
	}
	if c := counts(); !reflect.DeepEqual(c, map[int64]int{ivan.ID: 2}) {
		t.Errorf("unseen %v, want ivan 2 and no one else", c)
	}
	var list []MentionItem
	_ = s.Read(ctx, func(r *Reader) error {
		var err error
		list, err = r.MentionsOf(ctx, ivan.ID, 10)
		return err
	})
	if len(list) != 2 || list[0].ID != n2.ID || list[1].ID != n.ID || list[0].ContactName != "Olga" || list[0].Seen {
		t.Errorf("ivan's mentions %+v", list)
	}
	// Seen up to the first note: the later one stays unseen.
	if k, err := s.MarkMentionsSeen(ctx, ivan.ID, n.ID); err != nil || k != 1 {
		t.Errorf("mark seen: %d, %v", k, err)
	}
	if c := counts(); c[ivan.ID] != 1 {
		t.Errorf("unseen after marking the first: %v", c)
	}
	if k, _ := s.MarkMentionsSeen(ctx, ivan.ID, n2.ID); k != 1 {
		t.Errorf("second mark: %d", k)
	}
	if k, _ := s.MarkMentionsSeen(ctx, ivan.ID, n2.ID); k != 0 {
		t.Errorf("marking again: %d, want 0", k)
	}
}

func TestNoteEventNamesTheNote(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	a, _ := s.EnsureAgent(ctx, "olga", "Olga", "agent")
	var last int64
	_ = s.Read(ctx, func(r *Reader) error { last, _ = r.LastEventID(ctx); return nil })
	n, err := s.AddNote(ctx, conv, a.ID, "<b>bold</b>")
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	_ = s.Read(ctx, func(r *Reader) error { evs, err = r.EventsAfter(ctx, last, 10); return err })
	if len(evs) != 1 || evs[0].Kind != EventNote || evs[0].NoteID != n.ID || evs[0].MessageID != 0 || evs[0].ConversationID != conv {
		t.Fatalf("events after the note: %+v", evs)
	}
	var got []Note
	_ = s.Read(ctx, func(r *Reader) error { got, err = r.NotesByID(ctx, []int64{n.ID, 9999}); return err })
	if len(got) != 1 || got[0].Body != "<b>bold</b>" {
		t.Errorf("notes by id: %+v", got)
	}
}

func TestNotesSinceAndLimit(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	a, _ := s.EnsureAgent(ctx, "olga", "Olga", "agent")
	var ids []int64
	for i := 0; i < 5; i++ {
		clk.Add(time.Minute)
		n, err := s.AddNote(ctx, conv, a.ID, "n")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n.ID)
	}
	get := func(since time.Time, limit int) []int64 {
		var out []int64
		_ = s.Read(ctx, func(r *Reader) error {
			notes, err := r.Notes(ctx, conv, since, limit)
			for _, n := range notes {
				out = append(out, n.ID)
			}
			return err
		})
		return out
	}
	if got := get(time.Time{}, 3); !reflect.DeepEqual(got, ids[2:]) {
		t.Errorf("last 3: %v, want %v oldest first", got, ids[2:])
	}
	if got := get(t0.Add(4*time.Minute), 10); !reflect.DeepEqual(got, ids[3:]) {
		t.Errorf("since minute 4: %v, want %v", got, ids[3:])
	}
}

// Notes written while replies race for the last slots change none of the
// rules' outcomes.
func TestNotesDuringRacingSends(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	a, _ := s.EnsureAgent(ctx, "olga", "Olga", "agent")
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for i := 0; i < 8; i++ {
		wg.Go(func() {
			if _, err := sendText(s, conv, "reply", false); err == nil {
				mu.Lock()
				accepted++
				mu.Unlock()
			}
		})
		wg.Go(func() {
			if _, err := s.AddNote(ctx, conv, a.ID, "note"); err != nil {
				t.Errorf("note: %v", err)
			}
		})
	}
	wg.Wait()
	max := session.Defaults().MaxUnanswered
	if accepted != max {
		t.Errorf("%d replies accepted, want the unanswered limit %d", accepted, max)
	}
	if st := state(t, s, conv); st.Unanswered != max {
		t.Errorf("unanswered %d, want %d", st.Unanswered, max)
	}
	if err := recount(ctx, s); err != nil {
		t.Error(err)
	}
}

// Migration 00013 goes down (the events table is rebuilt without note_id,
// keeping every other event and the id sequence) and up again.
func TestNotesMigrationDownAndUp(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	a, _ := s.EnsureAgent(ctx, "olga", "Olga", "agent")
	if _, err := s.AddNote(ctx, conv, a.ID, "@olga hi"); err != nil {
		t.Fatal(err)
	}
	receive(t, s, "+375298603938", "again")
	var last int64
	_ = s.Read(ctx, func(r *Reader) error { last, _ = r.LastEventID(ctx); return nil })

	p, err := migrationProvider(s.write, goose.WithAllowOutofOrder(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ApplyVersion(ctx, 13, false); err != nil {
		t.Fatalf("down: %v", err)
	}
	var kinds []string
	rows, err := s.write.QueryContext(ctx, `SELECT kind FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		kinds = append(kinds, k)
	}
	rows.Close()
	if strings.Join(kinds, ",") != "message,message" {
		t.Errorf("events after the way down: %v, want the two messages'", kinds)
	}
	var seq int64
	if err := s.write.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'events'`).Scan(&seq); err != nil || seq != last {
		t.Errorf("the id sequence is %d (%v), want %d", seq, err, last)
	}
	if _, err := p.ApplyVersion(ctx, 13, true); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if _, err := s.AddNote(ctx, conv, a.ID, "after"); err != nil {
		t.Errorf("a note after the way down and up: %v", err)
	}
}

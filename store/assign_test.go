package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sessiondesk/session"
)

func conversation(t testing.TB, s *Store, id int64) Conversation {
	t.Helper()
	var c Conversation
	err := s.Read(context.Background(), func(r *Reader) error {
		var err error
		c, err = r.Conversation(context.Background(), id)
		return err
	})
	if err != nil {
		t.Fatalf("read conversation %d: %v", id, err)
	}
	return c
}

// eventsOf returns the kinds of the events about conv after event id after.
func eventsOf(t testing.TB, s *Store, conv, after int64) []string {
	t.Helper()
	var kinds []string
	err := s.Read(context.Background(), func(r *Reader) error {
		evs, err := r.EventsAfter(context.Background(), after, 1000)
		for _, e := range evs {
			if e.ConversationID == conv {
				kinds = append(kinds, e.Kind)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return kinds
}

func lastEvent(t testing.TB, s *Store) int64 {
	t.Helper()
	var id int64
	if err := s.Read(context.Background(), func(r *Reader) (err error) { id, err = r.LastEventID(context.Background()); return }); err != nil {
		t.Fatal(err)
	}
	return id
}

func setStatus(s *Store, conv, agent int64, status string, until time.Time) (bool, error) {
	return s.UpdateConversation(context.Background(), conv, agent, ConversationUpdate{Status: status, SnoozedUntil: until})
}

func assign(s *Store, conv, agent int64, login string) (bool, error) {
	return s.UpdateConversation(context.Background(), conv, agent, ConversationUpdate{Assign: true, Assignee: login})
}

func TestStatusTransitionsAuditedWithEvents(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	olga := mustAgent(t, s, "olga", "agent")
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	if c := conversation(t, s, conv); c.Status != ConvOpen || c.Assignee != nil || !c.SnoozedUntil.IsZero() {
		t.Fatalf("a new conversation is %q assigned to %v, want open and unassigned", c.Status, c.Assignee)
	}
	steps := []struct {
		status string
		until  time.Time
	}{
		{ConvPending, time.Time{}},
		{ConvResolved, time.Time{}},
		{ConvSnoozed, t0.Add(time.Hour)},
		{ConvSnoozed, t0.Add(2 * time.Hour)}, // snoozed again, later: a change
		{ConvOpen, time.Time{}},
		{ConvResolved, time.Time{}},
	}
	for _, st := range steps {
		before := lastEvent(t, s)
		changed, err := setStatus(s, conv, olga.ID, st.status, st.until)
		if err != nil || !changed {
			t.Fatalf("set %s: changed %v, %v", st.status, changed, err)
		}
		c := conversation(t, s, conv)
		if c.Status != st.status || !c.SnoozedUntil.Equal(st.until) {
			t.Errorf("after setting %s until %v: %s until %v", st.status, st.until, c.Status, c.SnoozedUntil)
		}
		if got := eventsOf(t, s, conv, before); len(got) != 1 || got[0] != EventConversation {
			t.Errorf("setting %s appended events %v, want one %q", st.status, got, EventConversation)
		}
	}
	// The same status again changes, audits and announces nothing.
	before := lastEvent(t, s)
	if changed, err := setStatus(s, conv, olga.ID, ConvResolved, time.Time{}); err != nil || changed {
		t.Errorf("resolving a resolved conversation: changed %v, %v", changed, err)
	}
	if got := eventsOf(t, s, conv, before); len(got) != 0 {
		t.Errorf("a no-op appended events %v", got)
	}
	entries := audit(t, s, AuditFilter{Action: AuditStatus})
	if len(entries) != len(steps) {
		t.Fatalf("%d status audit entries, want %d", len(entries), len(steps))
	}
	if e := entries[2]; e.AgentID != olga.ID || e.ConversationID != conv ||
		e.Summary() != "Status snoozed → snoozed until 24 Nov 2026 12:00 UTC." {
		t.Errorf("the re-snooze's entry: agent %d conv %d %q", e.AgentID, e.ConversationID, e.Summary())
	}
	if e := entries[0]; e.Summary() != "Status open → resolved." {
		t.Errorf("the last entry reads %q", e.Summary())
	}

	// Invalid changes are refused and leave it as it was.
	clk.Add(time.Minute)
	for _, tc := range []struct {
		name, status string
		until        time.Time
		field        string
	}{
		{"unknown status", "closed", time.Time{}, "status"},
		{"upper case", "Open", time.Time{}, "status"},
		{"nothing asked", "", time.Time{}, "status"},
		{"snooze without a time", ConvSnoozed, time.Time{}, "snoozed_until"},
		{"snooze in the past", ConvSnoozed, t0, "snoozed_until"},
		{"snooze now", ConvSnoozed, clk.Now(), "snoozed_until"},
		{"snooze too far", ConvSnoozed, clk.Now().Add(MaxSnooze + time.Minute), "snoozed_until"},
		{"a time without snoozing", ConvPending, clk.Now().Add(time.Hour), "snoozed_until"},
	} {
		_, err := setStatus(s, conv, olga.ID, tc.status, tc.until)
		if got := invalidField(err); got != tc.field {
			t.Errorf("%s: %v, want an invalid %s", tc.name, err, tc.field)
		}
	}
	if c := conversation(t, s, conv); c.Status != ConvResolved {
		t.Errorf("refused changes left it %s", c.Status)
	}
	if n := len(audit(t, s, AuditFilter{Action: AuditStatus})); n != len(steps) {
		t.Errorf("%d status entries after refusals, want %d", n, len(steps))
	}
	// Thirty days is allowed, to the minute.
	if _, err := setStatus(s, conv, olga.ID, ConvSnoozed, clk.Now().Add(MaxSnooze)); err != nil {
		t.Errorf("snooze for exactly 30 days: %v", err)
	}
	if _, err := setStatus(s, 9999, olga.ID, ConvOpen, time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown conversation: %v, want ErrNotFound", err)
	}
}

func TestClientMessageReopens(t *testing.T) {
	for _, from := range []string{ConvPending, ConvSnoozed, ConvResolved} {
		t.Run(from, func(t *testing.T) {
			s, clk := newStore(t, session.Defaults())
			olga := mustAgent(t, s, "olga", "agent")
			conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
			var until time.Time
			if from == ConvSnoozed {
				until = t0.Add(4 * time.Hour)
			}
			if _, err := setStatus(s, conv, olga.ID, from, until); err != nil {
				t.Fatal(err)
			}
			clk.Add(time.Minute)
			before := lastEvent(t, s)
			msg := receive(t, s, "+375298603938", "Any news?").Message
			c := conversation(t, s, conv)
			if c.Status != ConvOpen || !c.SnoozedUntil.IsZero() {
				t.Errorf("after the client wrote it is %s until %v, want open", c.Status, c.SnoozedUntil)
			}
			// The trigger's event comes first: it fires as the message is stored.
			if got := strings.Join(eventsOf(t, s, conv, before), ","); got != "conversation,message" {
				t.Errorf("events %s, want conversation,message", got)
			}
			e := audit(t, s, AuditFilter{Action: AuditStatus})[0]
			if e.AgentID != 0 || e.MessageID != msg.ID || e.ConversationID != conv || !e.At.Equal(clk.Now()) ||
				e.Summary() != "Status "+from+" → open: the client wrote." {
				t.Errorf("the reopen's entry: agent %d message %d at %v: %q", e.AgentID, e.MessageID, e.At, e.Summary())
			}
			// An open conversation stays as it is: no entry, no extra event.
			before = lastEvent(t, s)
			receive(t, s, "+375298603938", "Hello?")
			if got := strings.Join(eventsOf(t, s, conv, before), ","); got != "message" {
				t.Errorf("a message to an open conversation appended %s", got)
			}
			if n := len(audit(t, s, AuditFilter{Action: AuditStatus})); n != 2 {
				t.Errorf("%d status entries, want 2", n)
			}
		})
	}
}

func TestSnoozeWakesAtItsTime(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	olga := mustAgent(t, s, "olga", "agent")
	a := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	b := receive(t, s, "+375447771122", "Hi").Message.ConversationID
	ctx := context.Background()
	if n, next, err := s.WakeSnoozed(ctx); n != 0 || !next.IsZero() || err != nil {
		t.Fatalf("nothing snoozed: woke %d, next %v, %v", n, next, err)
	}
	if _, err := setStatus(s, a, olga.ID, ConvSnoozed, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := setStatus(s, b, olga.ID, ConvSnoozed, t0.Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(time.Hour - time.Millisecond))
	if n, next, err := s.WakeSnoozed(ctx); n != 0 || !next.Equal(t0.Add(time.Hour)) || err != nil {
		t.Errorf("a millisecond early: woke %d, next %v, %v", n, next, err)
	}
	if c := conversation(t, s, a); c.Status != ConvSnoozed {
		t.Errorf("woken early: %s", c.Status)
	}
	clk.Set(t0.Add(time.Hour))
	before := lastEvent(t, s)
	n, next, err := s.WakeSnoozed(ctx)
	if n != 1 || !next.Equal(t0.Add(4*time.Hour)) || err != nil {
		t.Errorf("at its time: woke %d, next %v, %v; want 1 and the other at +4h", n, next, err)
	}
	if c := conversation(t, s, a); c.Status != ConvOpen || !c.SnoozedUntil.IsZero() {
		t.Errorf("after its time: %s until %v", c.Status, c.SnoozedUntil)
	}
	if c := conversation(t, s, b); c.Status != ConvSnoozed {
		t.Errorf("the later one is %s", c.Status)
	}
	if got := eventsOf(t, s, a, before); len(got) != 1 || got[0] != EventConversation {
		t.Errorf("waking appended %v", got)
	}
	if e := audit(t, s, AuditFilter{Action: AuditStatus})[0]; e.AgentID != 0 || e.ConversationID != a ||
		e.Summary() != "Status snoozed → open: the snooze ended." {
		t.Errorf("the wake's entry: agent %d conv %d %q", e.AgentID, e.ConversationID, e.Summary())
	}
	// Again at once: nothing more is due.
	if n, _, err := s.WakeSnoozed(ctx); n != 0 || err != nil {
		t.Errorf("again: woke %d, %v", n, err)
	}
}

func TestAssignUnassignAndUnknownLogin(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	olga := mustAgent(t, s, "olga", "agent")
	ivan := mustAgent(t, s, "ivan", "admin")
	_, tok, err := s.CreateToken(context.Background(), olga.ID, "CRM")
	if err != nil {
		t.Fatal(err)
	}
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID

	if changed, err := assign(s, conv, olga.ID, "olga"); err != nil || !changed {
		t.Fatalf("assign to me: %v %v", changed, err)
	}
	if c := conversation(t, s, conv); c.Assignee == nil || c.Assignee.ID != olga.ID || c.Assignee.Name != "Olga" {
		t.Errorf("assignee %+v, want Olga", c.Assignee)
	}
	if changed, err := assign(s, conv, olga.ID, "olga"); err != nil || changed {
		t.Errorf("assigning to the assignee again: %v %v", changed, err)
	}
	if _, err := assign(s, conv, olga.ID, "ivan"); err != nil {
		t.Fatal(err)
	}
	for _, login := range []string{"nobody", "token:" + itoa(tok.ID), "OLGA", " olga"} {
		if _, err := assign(s, conv, olga.ID, login); invalidField(err) != "assignee" {
			t.Errorf("assign to %q: %v, want an invalid assignee", login, err)
		}
	}
	if c := conversation(t, s, conv); c.Assignee == nil || c.Assignee.ID != ivan.ID {
		t.Errorf("after refusals the assignee is %+v, want Ivan", c.Assignee)
	}
	if _, err := assign(s, conv, ivan.ID, ""); err != nil {
		t.Fatal(err)
	}
	if c := conversation(t, s, conv); c.Assignee != nil {
		t.Errorf("unassigned, but assignee %+v", c.Assignee)
	}
	var got []string
	for _, e := range audit(t, s, AuditFilter{Action: AuditAssign}) {
		got = append([]string{e.Summary()}, got...)
	}
	want := []string{"Assigned to Olga (olga).", "Assigned to Ivan (ivan), was Olga (olga).", "Unassigned, was Ivan (ivan)."}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("assignment log:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The select of agents lists people, not API tokens.
	var agents []AgentRef
	if err := s.Read(context.Background(), func(r *Reader) (err error) {
		agents, err = r.AssignableAgents(context.Background())
		return
	}); err != nil {
		t.Fatal(err)
	}
	if len(agents) != 2 || agents[0].Login != "ivan" || agents[1].Login != "olga" {
		t.Errorf("assignable agents %+v, want ivan and olga", agents)
	}
}

// Two agents press "assign to me" at the same moment, many times over: each
// press is applied whole, the last one wins, and the log tells the story in
// order (each entry's "was" is the one before's assignee).
func TestConcurrentAssignToMeLastWins(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	agents := []Agent{mustAgent(t, s, "olga", "agent"), mustAgent(t, s, "ivan", "agent")}
	ctx := context.Background()
	for round := range 10 {
		conv := receive(t, s, "+3752960"+itoa(int64(10000+round)), "Hello").Message.ConversationID
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, a := range agents {
			wg.Go(func() {
				<-start
				_, errs[i] = s.UpdateConversation(ctx, conv, a.ID, ConversationUpdate{Assign: true, Assignee: a.Login})
			})
		}
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v", round, errors.Join(errs...))
		}
		var entries []AuditEntry
		for _, e := range audit(t, s, AuditFilter{Action: AuditAssign}) {
			if e.ConversationID == conv {
				entries = append(entries, e)
			}
		}
		if len(entries) != 2 {
			t.Fatalf("round %d: %d assignment entries, want 2", round, len(entries))
		}
		last, first := entries[0], entries[1] // newest first
		c := conversation(t, s, conv)
		if c.Assignee == nil || c.Assignee.ID != last.AgentID {
			t.Errorf("round %d: assignee %+v, but the last press was agent %d's", round, c.Assignee, last.AgentID)
		}
		if first.AgentID == last.AgentID {
			t.Errorf("round %d: both entries are agent %d's", round, first.AgentID)
		}
		firstLogin := map[int64]string{agents[0].ID: "olga", agents[1].ID: "ivan"}[first.AgentID]
		if !strings.Contains(last.Summary(), "was "+strings.ToUpper(firstLogin[:1])+firstLogin[1:]) ||
			strings.Contains(first.Summary(), "was") {
			t.Errorf("round %d: entries %q then %q", round, first.Summary(), last.Summary())
		}
	}
}

func TestReplyAssignsOnlyWhenUnassigned(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	olga := mustAgent(t, s, "olga", "agent")
	ivan := mustAgent(t, s, "ivan", "agent")
	_, tok, err := s.CreateToken(context.Background(), olga.ID, "CRM")
	if err != nil {
		t.Fatal(err)
	}
	a := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	b := receive(t, s, "+375447771122", "Hi").Message.ConversationID

	// An integration's reply takes nobody's conversation.
	if _, err := sendAs(s, tok.AgentID, a, "Your order ships today"); err != nil {
		t.Fatal(err)
	}
	if c := conversation(t, s, a); c.Assignee != nil {
		t.Errorf("an API token's reply assigned it to %+v", c.Assignee)
	}
	before := lastEvent(t, s)
	if _, err := sendAs(s, olga.ID, a, "Hello, I am on it"); err != nil {
		t.Fatal(err)
	}
	if c := conversation(t, s, a); c.Assignee == nil || c.Assignee.ID != olga.ID {
		t.Errorf("after Olga's reply the assignee is %+v, want Olga", c.Assignee)
	}
	if got := strings.Join(eventsOf(t, s, a, before), ","); got != "message,conversation" {
		t.Errorf("the reply appended %s, want message,conversation", got)
	}
	e := audit(t, s, AuditFilter{Action: AuditAssign})[0]
	if e.AgentID != 0 || e.ConversationID != a || e.Summary() != "Assigned to Olga (olga): replied while unassigned." {
		t.Errorf("the reply's assignment entry: agent %d %q", e.AgentID, e.Summary())
	}
	// Ivan replies too: it stays Olga's.
	if _, err := sendAs(s, ivan.ID, a, "Adding a detail"); err != nil {
		t.Fatal(err)
	}
	if c := conversation(t, s, a); c.Assignee == nil || c.Assignee.ID != olga.ID {
		t.Errorf("after Ivan's reply the assignee is %+v, want still Olga", c.Assignee)
	}
	// A refused send assigns nothing.
	if _, err := sendAs(s, ivan.ID, b, "   "); err == nil {
		t.Fatal("a blank reply was accepted")
	}
	if c := conversation(t, s, b); c.Assignee != nil {
		t.Errorf("a refused reply assigned it to %+v", c.Assignee)
	}
	if n := len(audit(t, s, AuditFilter{Action: AuditAssign})); n != 1 {
		t.Errorf("%d assignment entries, want 1", n)
	}
}

func TestRoundRobinAmongOnlineAgents(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	var ag []Agent
	for _, l := range []string{"anna", "boris", "olga", "ivan"} {
		ag = append(ag, mustAgent(t, s, l, "agent"))
	}
	_, tok, err := s.CreateToken(ctx, ag[0].ID, "CRM")
	if err != nil {
		t.Fatal(err)
	}
	// Ivan is offline; the API token "has a page" and is skipped anyway.
	online := []int64{ag[2].ID, ag[0].ID, ag[1].ID, tok.AgentID}
	s.SetOnlineAgents(func() []int64 { return online })

	phones := func(i int) string { return "+3752960" + itoa(int64(10000+i)) }
	// Off by default: nobody is assigned.
	if on, err := s.AutoAssign(ctx); on || err != nil {
		t.Fatalf("auto-assignment %v (%v), want off by default", on, err)
	}
	c0 := receive(t, s, phones(0), "Hello").Message.ConversationID
	if c := conversation(t, s, c0); c.Assignee != nil {
		t.Fatalf("assigned to %+v while the round robin is off", c.Assignee)
	}
	admin := mustAgent(t, s, "admin", "admin")
	if err := s.SetAutoAssign(ctx, admin.ID, true); err != nil {
		t.Fatal(err)
	}
	if e := audit(t, s, AuditFilter{Action: AuditSettings})[0]; e.AgentID != admin.ID ||
		e.Summary() != "Changed settings: round-robin auto-assignment: off → on." {
		t.Errorf("the setting's entry: %q", e.Summary())
	}
	var got []string
	for i := 1; i <= 6; i++ {
		conv := receive(t, s, phones(i), "Hello").Message.ConversationID
		// A second message in the same session is no new work.
		receive(t, s, phones(i), "Anyone?")
		c := conversation(t, s, conv)
		if c.Assignee == nil {
			t.Fatalf("conversation %d unassigned", i)
		}
		got = append(got, c.Assignee.Login)
	}
	if want := "anna,boris,olga,anna,boris,olga"; strings.Join(got, ",") != want {
		t.Errorf("the rotation went %s, want %s", strings.Join(got, ","), want)
	}
	if n := len(audit(t, s, AuditFilter{Action: AuditAssign})); n != 6 {
		t.Errorf("%d assignment entries, want 6", n)
	}
	if e := audit(t, s, AuditFilter{Action: AuditAssign})[0]; e.AgentID != 0 ||
		e.Summary() != "Assigned to Olga (olga): round-robin among online agents." {
		t.Errorf("the rotation's entry: agent %d %q", e.AgentID, e.Summary())
	}

	// The unassigned first conversation's client comes back after the window:
	// a new session, so the rotation picks it up.
	clk.Add(25 * time.Hour)
	receive(t, s, phones(0), "Back again")
	if c := conversation(t, s, c0); c.Assignee == nil || c.Assignee.Login != "anna" {
		t.Errorf("a new session of an unassigned conversation went to %+v, want anna", c.Assignee)
	}
	// An assigned one's new session stays with its assignee.
	receive(t, s, phones(1), "Back again")
	if c := conversation(t, s, conversationByPhone(t, s, phones(1))); c.Assignee == nil || c.Assignee.Login != "anna" {
		t.Errorf("an assigned conversation's new session went to %+v", c.Assignee)
	}
	// Nobody online: left unassigned.
	online = nil
	c7 := receive(t, s, phones(7), "Hello").Message.ConversationID
	if c := conversation(t, s, c7); c.Assignee != nil {
		t.Errorf("with nobody online it went to %+v", c.Assignee)
	}
}

func conversationByPhone(t testing.TB, s *Store, phone string) int64 {
	t.Helper()
	var id int64
	if err := s.Read(context.Background(), func(r *Reader) error {
		c, err := r.ConversationByPhone(context.Background(), phone)
		id = c.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// The views to come read "status = ? AND assignee_id = ? ORDER BY
// last_activity_at DESC, id DESC" as one range of the index, without sorting.
func TestStatusAssigneeIndexServesTheViews(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	for _, q := range []string{
		`SELECT id FROM conversations WHERE status = 'open' AND assignee_id = 1 ORDER BY last_activity_at DESC, id DESC LIMIT 50`,
		`SELECT id FROM conversations WHERE status = 'open' AND assignee_id IS NULL ORDER BY last_activity_at DESC, id DESC LIMIT 50`,
	} {
		p := queryPlan(t, s, q)
		if !strings.Contains(p, "conversations_by_status_assignee") || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s\nplan: %s", q, p)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

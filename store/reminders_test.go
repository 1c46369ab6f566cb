package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"sessiondesk/session"
)

// A session whose client wrote last is reminded once, to the agent who last
// replied, when its end comes within the lead time; an answered one, one
// with nobody to remind, or one further out is not.
func TestTakeRemindersOncePerSession(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	olga, err := s.EnsureAgent(ctx, "olga", "Olga", "agent")
	if err != nil {
		t.Fatal(err)
	}
	reply := func(conv int64, text string) {
		t.Helper()
		if _, err := s.AcceptBusinessMessages(ctx, BusinessSend{ConversationID: conv, AgentID: olga.ID,
			Parts: []session.Part{{Kind: session.Text, Text: text}}}); err != nil {
			t.Fatal(err)
		}
	}
	// waiting: Olga answered, the client wrote again: unanswered.
	waiting := receive(t, s, "+375298600001", "hello").Message.ConversationID
	reply(waiting, "hi")
	receive(t, s, "+375298600001", "still there?")
	// answered: the client's message has an answer.
	reply(receive(t, s, "+375298600002", "hello").Message.ConversationID, "hi")
	// nobody: nobody ever replied, so there is no agent to remind.
	receive(t, s, "+375298600003", "hello")
	// later: its session ends an hour after the others.
	clk.Add(time.Hour)
	later := receive(t, s, "+375298600004", "hello").Message.ConversationID
	reply(later, "hi")
	receive(t, s, "+375298600004", "and?")
	ends := t0.Add(session.Defaults().Window)

	clk.Set(ends.Add(-16 * time.Minute))
	if got, err := s.TakeReminders(ctx, 15*time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("16 min before the end: %+v, %v; want none yet", got, err)
	}
	clk.Set(ends.Add(-14 * time.Minute))
	got, err := s.TakeReminders(ctx, 15*time.Minute)
	if err != nil || len(got) != 1 {
		t.Fatalf("14 min before the end: %+v, %v; want the waiting conversation's session", got, err)
	}
	if r := got[0]; r.ConversationID != waiting || r.AgentID != olga.ID || !r.EndsAt.Equal(ends) || r.ContactPhone != "+375298600001" {
		t.Errorf("reminder %+v, want conversation %d, agent %d, ending %s", r, waiting, olga.ID, ends)
	}
	// Never twice, even when asked at once from two places.
	var wg sync.WaitGroup
	var again [2][]Reminder
	for i := range again {
		wg.Go(func() {
			var err error
			if again[i], err = s.TakeReminders(ctx, 15*time.Minute); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(again[0])+len(again[1]) != 0 {
		t.Errorf("asked again: %+v, want nothing", again)
	}
	// The later one comes in its own time; the ended ones never.
	clk.Set(ends.Add(time.Hour - 10*time.Minute))
	got, err = s.TakeReminders(ctx, 15*time.Minute)
	if err != nil || len(got) != 1 || got[0].ConversationID != later {
		t.Errorf("an hour later: %+v, %v; want only conversation %d", got, err, later)
	}
}

// Preferences default to off, update field by field (two updates at once
// both hold), and belong to an existing agent only.
func TestAgentPrefs(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	a, err := s.EnsureAgent(ctx, "olga", "Olga", "agent")
	if err != nil {
		t.Fatal(err)
	}
	read := func() AgentPrefs {
		t.Helper()
		var p AgentPrefs
		if err := s.Read(ctx, func(r *Reader) (err error) { p, err = r.AgentPrefs(ctx, a.ID); return err }); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := read(); p != (AgentPrefs{}) {
		t.Errorf("defaults %+v, want everything off", p)
	}
	on := true
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := s.UpdateAgentPrefs(ctx, a.ID, AgentPrefsChange{Sound: &on}); err != nil {
			t.Error(err)
		}
	})
	wg.Go(func() {
		if _, err := s.UpdateAgentPrefs(ctx, a.ID, AgentPrefsChange{Desktop: &on}); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	if p := read(); !p.Sound || !p.Desktop {
		t.Errorf("after two updates at once: %+v, want both on", p)
	}
	off := false
	if p, err := s.UpdateAgentPrefs(ctx, a.ID, AgentPrefsChange{Sound: &off}); err != nil || p.Sound || !p.Desktop {
		t.Errorf("sound off: %+v, %v; want desktop kept on", p, err)
	}
	if _, err := s.UpdateAgentPrefs(ctx, a.ID+100, AgentPrefsChange{Sound: &on}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown agent: %v, want ErrNotFound", err)
	}
}

// The reminder goes to the conversation's assignee, not to whoever replied
// last; with nobody assigned, to the last agent who replied.
func TestReminderGoesToTheAssignee(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	olga, err := s.EnsureAgent(ctx, "olga", "Olga", "agent")
	if err != nil {
		t.Fatal(err)
	}
	boris, err := s.EnsureAgent(ctx, "boris", "Boris", "agent")
	if err != nil {
		t.Fatal(err)
	}
	conv := receive(t, s, "+375298600001", "hello").Message.ConversationID
	if _, err := s.AcceptBusinessMessages(ctx, BusinessSend{ConversationID: conv, AgentID: olga.ID,
		Parts: []session.Part{{Kind: session.Text, Text: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	receive(t, s, "+375298600001", "still there?")
	if _, err := s.UpdateConversation(ctx, conv, olga.ID, ConversationUpdate{Assign: true, Assignee: "boris"}); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(session.Defaults().Window - 10*time.Minute))
	got, err := s.TakeReminders(ctx, 15*time.Minute)
	if err != nil || len(got) != 1 || got[0].AgentID != boris.ID {
		t.Fatalf("reminders %+v, %v; want one, to Boris (%d), the assignee", got, err, boris.ID)
	}
}

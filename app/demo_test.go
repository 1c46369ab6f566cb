package app

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"sessiondesk/channel"
	"sessiondesk/config"
	"sessiondesk/phone"
	"sessiondesk/session"
	"sessiondesk/store"
)

// contactCount is how many contacts the database holds.
func contactCount(t *testing.T, st *store.Store) int {
	t.Helper()
	var n int
	err := st.Read(context.Background(), func(r *store.Reader) error {
		cs, err := r.Contacts(context.Background(), 1000)
		n = len(cs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The demo clients are sandbox data: with Routee configured, a new database
// stays empty, so no agent can reply to a demo client through the real provider.
func TestDemoOnlyInTheSandbox(t *testing.T) {
	ra := startRouteeApp(t, channel.OutboxOptions{}, func(c *config.Config, _ *Options) { c.NoDemo = false })
	if n := contactCount(t, ra.Store); n != 0 {
		t.Errorf("a new Routee database holds %d contacts, want none (no demo outside the sandbox)", n)
	}
	sandbox := startApp(t, func(c *config.Config) { c.NoDemo = false })
	if n := contactCount(t, sandbox.Store); n != 4 {
		t.Errorf("a new sandbox database holds %d contacts, want the 4 demo clients", n)
	}
}

// Whatever valid rules are in force, the binary starts and the demo is seeded
// whole, each client in its state: Olga and Ivan open (Ivan in the last stretch
// of his window), Anna with exactly the replies that may go unanswered (capped
// by the session's maximum), Marco closed.
func TestDemoFitsAnyRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*session.Settings)
	}{
		{"defaults", func(*session.Settings) {}},
		{"max 3", func(s *session.Settings) { s.MaxPerSession = 3 }},
		{"unanswered 3", func(s *session.Settings) { s.MaxUnanswered = 3 }},
		{"max 1 unanswered 1 window 1m", func(s *session.Settings) { s.MaxPerSession, s.MaxUnanswered, s.Window = 1, 1, time.Minute }},
		{"max 1 close", func(s *session.Settings) { s.MaxPerSession, s.AfterCap = 1, session.Close }},
		{"max 2 close", func(s *session.Settings) { s.MaxPerSession, s.AfterCap = 2, session.Close }},
		{"unanswered 1", func(s *session.Settings) { s.MaxUnanswered = 1 }},
		{"unanswered 10", func(s *session.Settings) { s.MaxUnanswered = 10 }},
		{"window 1m", func(s *session.Settings) { s.Window = time.Minute }},
		{"window 90m", func(s *session.Settings) { s.Window = 90 * time.Minute }},
		{"window 12h", func(s *session.Settings) { s.Window = 12 * time.Hour }},
		{"text max 1", func(s *session.Settings) { s.MaxTextLen = 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := startApp(t, func(c *config.Config) { c.NoDemo = false; tc.set(&c.Rules) })
			rules := ta.Store.Rules()
			want := demoClients(rules)
			ctx := context.Background()
			err := ta.Store.Read(ctx, func(r *store.Reader) error {
				now := r.Now()
				states := map[string]session.Status{}
				for _, dc := range want {
					cv, err := r.ConversationByPhone(ctx, dc.phone)
					if err != nil {
						t.Errorf("%s: %v (the demo is not fully seeded)", dc.name, err)
						continue
					}
					msgs, err := r.Messages(ctx, cv.ID, 1000)
					if err != nil {
						return err
					}
					if len(msgs) != len(dc.script) {
						t.Errorf("%s has %d messages, want the script's %d", dc.name, len(msgs), len(dc.script))
					}
					states[dc.name] = session.StatusAt(cv.State, rules, now)
				}
				if s := states["Olga Petrova"]; !s.Open {
					t.Errorf("Olga's session is not open: %+v", s)
				}
				if s := states["Ivan Kowalski"]; !s.Open || s.EndsAt.Sub(now) > scaled(time.Hour, rules.Window) {
					t.Errorf("Ivan's session should be open and in its last stretch: %+v", s)
				}
				anna := states["Anna Schmidt"]
				if n := min(rules.MaxUnanswered, rules.MaxPerSession); anna.Unanswered != n {
					t.Errorf("Anna has %d unanswered replies, want %d", anna.Unanswered, n)
				}
				if anna.CanSend {
					t.Errorf("Anna can be sent to; she should be locked or at the cap: %+v", anna)
				}
				if s := states["Marco Rossi"]; s.Open || s.Refusal == nil || s.Refusal.Code != session.WindowClosed {
					t.Errorf("Marco's session should be closed by its window: %+v", s)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A demo that fails half-way (here a reply to a conversation that does not
// exist) leaves nothing behind, and a later seeding still works.
func TestDemoSeedingIsAllOrNothing(t *testing.T) {
	ta := startApp(t)
	ctx := context.Background()
	good := demoClients(ta.Store.Rules())
	broken := append(good[:2:2], demoClient{name: "Broken", phone: demoAnna, status: store.StatusSent,
		script: []demoLine{{time.Hour, false, "a reply before the client ever wrote"}}})
	if added, err := seedClients(ctx, ta.Store, broken); err == nil || added {
		t.Fatalf("a broken demo: added=%v err=%v, want an error", added, err)
	}
	if n := contactCount(t, ta.Store); n != 0 {
		t.Errorf("a failed demo left %d contacts behind, want none", n)
	}
	var last int64
	if err := ta.Store.Read(ctx, func(r *store.Reader) error {
		var err error
		last, err = r.LastEventID(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if last != 0 {
		t.Errorf("a failed demo left events up to %d behind", last)
	}
	if added, err := seedDemo(ctx, ta.Store); err != nil || !added {
		t.Fatalf("seeding after a failure: added=%v err=%v", added, err)
	}
	if n := contactCount(t, ta.Store); n != 4 {
		t.Errorf("%d contacts after seeding, want 4", n)
	}
}

// The README's sample numbers are not the demo clients': a reader who types one
// into the sandbox creates a new client instead of writing as a demo one.
func TestReadmeNumbersAreNotDemoClients(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	digits := regexp.MustCompile(`[^0-9]`).ReplaceAllString(string(readme), "")
	for _, dc := range demoClients(session.Defaults()) {
		n, err := phone.Parse(dc.phone)
		if err != nil {
			t.Fatalf("demo client %s: %v", dc.name, err)
		}
		if strings.Contains(string(readme), phone.Display(n.E164)) || strings.Contains(digits, strings.TrimPrefix(n.E164, "+")) {
			t.Errorf("the README shows %s, the number of the demo client %s", n.E164, dc.name)
		}
	}
}

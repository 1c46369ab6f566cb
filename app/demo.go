package app

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"sessiondesk/phone"
	"sessiondesk/session"
	"sessiondesk/store"
)

// demoClient is one conversation of the demo data, played at times relative to now.
type demoClient struct {
	name, phone string
	script      []demoLine
	// status is where the business messages end up: what the phone did with them.
	status string
}

type demoLine struct {
	ago    time.Duration // how long before now it happened, for a 24-hour window
	client bool
	text   string
}

// The demo clients' numbers are in ranges set aside for fiction (Australia's
// 0491 570 156–159, North America's 555-0100–0199): valid to the phone
// parser, and never a real person's, should the data ever meet a real
// provider.
const (
	demoOlga  = "+61491570156"
	demoIvan  = "+12025550147"
	demoAnna  = "+61491570157"
	demoMarco = "+12025550172"
)

// demoDay is the window the scripts are written for; other windows scale them.
const demoDay = 24 * time.Hour

// demoClients returns the demo conversations, one for each state the session
// panel knows, fitted to the rules in force so that every business message of
// the script is one the rules accept: the fresh, closing and locked sessions
// stay open, Anna is locked with exactly the unanswered limit (capped by the
// session's maximum), and replies that would close a session at its cap are
// left out.
func demoClients(rules session.Settings) []demoClient {
	// With "close" after a cap of one, any reply closes its session.
	replyKeepsOpen := rules.AfterCap != session.Close || rules.MaxPerSession > 1
	olga := demoClient{ // a fresh session
		name: "Olga Petrova", phone: demoOlga, status: store.StatusSeen,
		script: []demoLine{{12 * time.Minute, true, "Hello, my order #1182 is late"}},
	}
	if replyKeepsOpen {
		olga.script = append(olga.script, demoLine{10 * time.Minute, false, "We are checking it now, one moment please."})
	}
	olga.script = append(olga.script, demoLine{9 * time.Minute, true, "Thank you!"})

	ivan := demoClient{ // closing within the hour
		name: "Ivan Kowalski", phone: demoIvan, status: store.StatusDelivered,
		script: []demoLine{{23*time.Hour + 20*time.Minute, true, "Can you send the invoice again? I can't find it."}},
	}
	if replyKeepsOpen && rules.MaxUnanswered > 1 { // one reply must not lock him too
		ivan.script = append(ivan.script, demoLine{23*time.Hour + 5*time.Minute, false, "Sure, I sent it to your e-mail again."})
	}

	anna := demoClient{ // locked: as many replies as may go unanswered, and no answer
		name: "Anna Schmidt", phone: demoAnna, status: store.StatusDelivered,
		script: []demoLine{{3 * time.Hour, true, "My package arrived damaged"}},
	}
	texts := []string{
		"I'm sorry to hear that! Could you send a photo of the damage?",
		"Are you still there?",
		"We can also send a replacement right away.",
		"Or refund the order, whichever you prefer.",
	}
	const last = "Please reply here when you can."
	n := min(rules.MaxUnanswered, rules.MaxPerSession)
	first, final := 170*time.Minute, 60*time.Minute
	for i := range n {
		ago := first
		if n > 1 {
			ago = first - time.Duration(i)*(first-final)/time.Duration(n-1)
		}
		text := last
		switch {
		case i == n-1:
		case i < len(texts):
			text = texts[i]
		default:
			text = fmt.Sprintf("Following up again (%d).", i+1)
		}
		anna.script = append(anna.script, demoLine{ago, false, text})
	}

	marco := demoClient{ // closed
		name: "Marco Rossi", phone: demoMarco, status: store.StatusSeen,
		script: []demoLine{
			{30 * time.Hour, true, "Do you ship to Italy?"},
			{29 * time.Hour, false, "Yes, in 3 to 5 working days."},
			{28 * time.Hour, true, "Thanks, all good!"},
		},
	}
	return []demoClient{olga, ivan, anna, marco}
}

// scaled stretches a script time written for a 24-hour window to window, so
// that every state keeps its place in the session (fresh, last hour, closed).
func scaled(ago, window time.Duration) time.Duration {
	return time.Duration(float64(ago) * (float64(window) / float64(demoDay)))
}

// fitText shortens a demo reply to the text limit in force.
func fitText(text string, max int) string {
	if utf8.RuneCountInString(text) <= max {
		return text
	}
	r := []rune(text)
	if max == 1 {
		return string(r[:1])
	}
	return string(r[:max-1]) + "…"
}

// seedDemo plays the demo conversations into an empty database, through the
// same store calls as real traffic, at past times, fitted to the rules in
// force. It is all or nothing: every write is one transaction, so a failure
// leaves the database as it was. It does nothing (and reports false) when any
// contact exists.
func seedDemo(ctx context.Context, st *store.Store) (bool, error) {
	return seedClients(ctx, st, demoClients(st.Rules()))
}

func seedClients(ctx context.Context, st *store.Store, clients []demoClient) (added bool, err error) {
	err = st.Batch(ctx, func(st *store.Store) error {
		var empty bool
		if err := st.Read(ctx, func(r *store.Reader) error {
			cs, err := r.Contacts(ctx, 1)
			empty = len(cs) == 0
			return err
		}); err != nil || !empty {
			return err
		}
		agent, err := st.EnsureAgent(ctx, "demo", "Demo agent", "agent")
		if err != nil {
			return err
		}
		for _, dc := range clients {
			if err := playDemo(ctx, st, dc, agent.ID); err != nil {
				return fmt.Errorf("demo client %s: %w", dc.name, err)
			}
		}
		added = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return added, nil
}

// playDemo plays one demo conversation inside seedDemo's transaction.
func playDemo(ctx context.Context, st *store.Store, dc demoClient, agentID int64) error {
	rules := st.Rules()
	num, err := phone.Parse(dc.phone)
	if err != nil {
		return err
	}
	// Stored times are milliseconds: decide on the same instants that are kept.
	now := st.Now().Truncate(time.Millisecond)
	var convID int64
	for _, line := range dc.script {
		at := now.Add(-scaled(line.ago, rules.Window)).Truncate(time.Millisecond)
		past := st.WithClock(func() time.Time { return at })
		if line.client {
			rec, err := past.ReceiveClientMessage(ctx, store.ClientMessage{
				Phone: num.E164, Name: dc.name, Country: num.Region, Kind: session.Text, Text: line.text, SentAt: at,
			})
			if err != nil {
				return err
			}
			convID = rec.Message.ConversationID
			continue
		}
		msgs, err := past.AcceptBusinessMessages(ctx, store.BusinessSend{
			ConversationID: convID, AgentID: agentID,
			Parts: []session.Part{{Kind: session.Text, Text: fitText(line.text, rules.MaxTextLen)}},
		})
		if err != nil {
			return fmt.Errorf("reply %q: %w", line.text, err)
		}
		// The demo's history happened: mark it as the phone reported it, so the
		// outbox does not send it again.
		for _, status := range []string{store.StatusSent, store.StatusDelivered, store.StatusSeen} {
			_, err := past.ApplyStatus(ctx, store.StatusUpdate{
				Ref: store.MessageRef{ID: msgs[0].ID}, Status: status, At: at,
				ProviderID: fmt.Sprintf("demo-%d", msgs[0].ID),
			})
			if err != nil {
				return err
			}
			if status == dc.status {
				break
			}
		}
	}
	return nil
}

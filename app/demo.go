package app

import (
	"context"
	"fmt"
	"time"

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
	ago    time.Duration // how long before now it happened
	client bool
	text   string
}

// demoClients show every state the session panel knows.
var demoClients = []demoClient{
	{ // a fresh session
		name: "Olga Petrova", phone: "+375298603938", status: store.StatusSeen,
		script: []demoLine{
			{12 * time.Minute, true, "Hello, my order #1182 is late"},
			{10 * time.Minute, false, "We are checking it now, one moment please."},
			{9 * time.Minute, true, "Thank you!"},
		},
	},
	{ // closing within the hour
		name: "Ivan Kowalski", phone: "+48601234567", status: store.StatusDelivered,
		script: []demoLine{
			{23*time.Hour + 20*time.Minute, true, "Can you send the invoice again? I can't find it."},
			{23*time.Hour + 5*time.Minute, false, "Sure, I sent it to your e-mail again."},
		},
	},
	{ // locked: five replies and no answer from the client
		name: "Anna Schmidt", phone: "+4915123456789", status: store.StatusDelivered,
		script: []demoLine{
			{3 * time.Hour, true, "My package arrived damaged"},
			{170 * time.Minute, false, "I'm sorry to hear that! Could you send a photo of the damage?"},
			{150 * time.Minute, false, "Are you still there?"},
			{120 * time.Minute, false, "We can also send a replacement right away."},
			{90 * time.Minute, false, "Or refund the order, whichever you prefer."},
			{60 * time.Minute, false, "Please reply here when you can."},
		},
	},
	{ // closed
		name: "Marco Rossi", phone: "+393471234567", status: store.StatusSeen,
		script: []demoLine{
			{30 * time.Hour, true, "Do you ship to Italy?"},
			{29 * time.Hour, false, "Yes, in 3 to 5 working days."},
			{28 * time.Hour, true, "Thanks, all good!"},
		},
	},
}

// seedDemo plays the demo conversations into an empty database, through the
// same store calls as real traffic, at past times. It does nothing (and
// reports false) when any contact exists.
func seedDemo(ctx context.Context, st *store.Store) (bool, error) {
	var empty bool
	err := st.Read(ctx, func(r *store.Reader) error {
		cs, err := r.Contacts(ctx, 1)
		empty = len(cs) == 0
		return err
	})
	if err != nil || !empty {
		return false, err
	}
	agent, err := st.EnsureAgent(ctx, "demo", "Demo agent", "agent")
	if err != nil {
		return false, err
	}
	now := st.Now()
	for _, dc := range demoClients {
		num, err := phone.Parse(dc.phone)
		if err != nil {
			return false, fmt.Errorf("demo client %s: %w", dc.name, err)
		}
		var convID int64
		for _, line := range dc.script {
			at := now.Add(-line.ago)
			past := st.WithClock(func() time.Time { return at })
			if line.client {
				rec, err := past.ReceiveClientMessage(ctx, store.ClientMessage{
					Phone: num.E164, Name: dc.name, Country: num.Region, Kind: session.Text, Text: line.text, SentAt: at,
				})
				if err != nil {
					return false, err
				}
				convID = rec.Message.ConversationID
				continue
			}
			msgs, err := past.AcceptBusinessMessages(ctx, store.BusinessSend{
				ConversationID: convID, AgentID: agent.ID, Parts: []session.Part{{Kind: session.Text, Text: line.text}},
			})
			if err != nil {
				return false, fmt.Errorf("demo reply to %s: %w", dc.name, err)
			}
			// The demo's history happened: mark it as the phone reported it, so the
			// outbox does not send it again.
			for _, status := range []string{store.StatusSent, store.StatusDelivered, store.StatusSeen} {
				_, err := past.ApplyStatus(ctx, store.StatusUpdate{
					Ref: store.MessageRef{ID: msgs[0].ID}, Status: status, At: at,
					ProviderID: fmt.Sprintf("demo-%d", msgs[0].ID),
				})
				if err != nil {
					return false, err
				}
				if status == dc.status {
					break
				}
			}
		}
	}
	return true, nil
}

// Package seed plays a month of support traffic into a store, through the
// store's own write path (client messages, agents' replies, rollovers,
// rejections), at made-up times, deterministically from a seed: the same
// options give the same database. The reports page is shown and tested on
// it, and cmd/sessiondesk-seed writes one to a data folder.
package seed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"sessiondesk/session"
	"sessiondesk/store"
)

// Options shape the traffic.
type Options struct {
	Seed uint64
	// Start is the first moment of the traffic, Days how many days it covers
	// (default 30).
	Start time.Time
	Days  int
	// Sessions is about how many client sessions to open (default 3000); each
	// client opens up to four in the period, a window apart.
	Sessions int
	// Agents is how many agents answer (default 6).
	Agents int
	// BatchSessions is how many sessions one write transaction plays
	// (default 400): a few thousand store calls.
	BatchSessions int
	// Prices are what the provider reports a session costs, by the client's
	// country (default DefaultPrices). Like the sandbox's fake Routee, it
	// puts a session's price on its first business message and the step to
	// the media price on its first image; the other messages cost 0. One
	// session in twenty is never priced (its reports did not come).
	Prices map[string]Price
}

// Price is what the provider bills a session in one country.
type Price struct{ Text, Media float64 }

// DefaultPrices are the seed's provider prices, in the rates' currency: most
// near the default flags of the seed command, Germany's above them, so the
// reports show a difference between estimate and report.
var DefaultPrices = map[string]Price{
	"BY": {0.0085, 0.0170}, "GB": {0.0085, 0.0170}, "DE": {0.0150, 0.0300},
	"FR": {0.0085, 0.0170}, "PL": {0.0085, 0.0170}, "KZ": {0.0100, 0.0200},
}

// Result says what was played.
type Result struct {
	Contacts, Sessions, ClientMessages, BusinessMessages, Rejected int
}

// countries are the clients' number prefixes, by weight.
var countries = []struct {
	code, prefix string
	weight       int
}{{"BY", "+37529", 40}, {"GB", "+447700", 20}, {"DE", "+49151", 15}, {"FR", "+336", 12}, {"PL", "+48601", 8}, {"KZ", "+7701", 5}}

var agentNames = []string{"Anna Kowalska", "Boris Ivanov", "Chloé Martin", "Dmitri Petrov", "Emma Schulz", "Farid Nurlanov",
	"Greta Nowak", "Hugo Bernard", "Inga Sidorova", "Jonas Weber"}

// Month plays the traffic into st. The store's rules apply (a send they
// refuse is skipped, as an agent would be refused); the store's clock is
// left alone: every call runs at its own made-up time.
func Month(ctx context.Context, st *store.Store, o Options) (Result, error) {
	if o.Days <= 0 {
		o.Days = 30
	}
	if o.Sessions <= 0 {
		o.Sessions = 3000
	}
	if o.Agents <= 0 {
		o.Agents = 6
	}
	if o.BatchSessions <= 0 {
		o.BatchSessions = 400
	}
	if o.Prices == nil {
		o.Prices = DefaultPrices
	}
	if o.Start.IsZero() {
		return Result{}, fmt.Errorf("seed: a start time is needed")
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5e55))
	var agents []store.Agent
	for i := range o.Agents {
		name := agentNames[i%len(agentNames)]
		login := strings.ToLower(strings.Fields(name)[0])
		if i >= len(agentNames) {
			login = fmt.Sprintf("%s%d", login, i)
		}
		a, err := st.EnsureAgent(ctx, login, name, "agent")
		if err != nil {
			return Result{}, fmt.Errorf("seed: %w", err)
		}
		agents = append(agents, a)
	}
	// Each client opens up to perClient sessions at times drawn over the
	// whole period, a window and an hour apart at least, so that each client
	// message below opens its own session.
	perClient := min(4, max(1, o.Days/2))
	clients := (o.Sessions + perClient - 1) / perClient
	period := time.Duration(o.Days) * 24 * time.Hour
	rules := st.Rules()
	gap := rules.Window + time.Hour
	var res Result
	p := &player{rng: rng, agents: agents, rules: rules, res: &res, prices: o.Prices}
	var plan []plannedSession
	for c := range clients {
		cc := pickCountry(rng)
		phone := fmt.Sprintf("%s%07d", cc.prefix, 1000000+c*37%9000000)
		name := clientName(rng, c)
		want := min(perClient, o.Sessions-c*perClient)
		var starts []time.Time
		for try := 0; len(starts) < want && try < 50; try++ {
			at := o.Start.Add(time.Duration(rng.Int64N(int64(period - time.Hour)))).Truncate(time.Second)
			if !slices.ContainsFunc(starts, func(s time.Time) bool { return s.Sub(at).Abs() < gap }) {
				starts = append(starts, at)
			}
		}
		slices.SortFunc(starts, time.Time.Compare)
		for _, at := range starts {
			plan = append(plan, plannedSession{phone: phone, country: cc.code, name: name, at: at,
				agent: agents[c%len(agents)], seed: rng.Uint64()})
		}
	}
	res.Contacts = clients
	for i := 0; i < len(plan); i += o.BatchSessions {
		batch := plan[i:min(i+o.BatchSessions, len(plan))]
		err := st.Batch(ctx, func(b *store.Store) error {
			for _, s := range batch {
				if err := p.play(ctx, b, s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("seed: %w", err)
		}
	}
	return res, nil
}

type plannedSession struct {
	phone, country, name string
	at                   time.Time
	agent                store.Agent
	seed                 uint64
}

func pickCountry(rng *rand.Rand) struct {
	code, prefix string
	weight       int
} {
	n := rng.IntN(100)
	for _, c := range countries {
		if n < c.weight {
			return c
		}
		n -= c.weight
	}
	return countries[0]
}

var firstNames = []string{"Olga", "Ivan", "Maria", "Tom", "Léa", "Jan", "Aisha", "Piotr", "Sophie", "Nurlan", "Kate", "Max"}

func clientName(rng *rand.Rand, i int) string {
	return fmt.Sprintf("%s %c.", firstNames[rng.IntN(len(firstNames))], 'A'+rune(i%26))
}

// player plays one session after another.
type player struct {
	rng    *rand.Rand
	agents []store.Agent
	rules  session.Settings
	res    *Result
	prices map[string]Price
}

// minutes draws a wait: log-normal around median minutes, at most capMin.
func minutes(rng *rand.Rand, median, capMin float64) time.Duration {
	m := math.Min(median*math.Exp(rng.NormFloat64()*1.1), capMin)
	return time.Duration(math.Max(m, 0.1) * float64(time.Minute)).Truncate(time.Second)
}

var clientTexts = []string{"Hello, where is my order?", "Is the courier coming today?", "Thanks!", "Can I change the address?",
	"The parcel arrived broken", "How do I pay by card?", "ok", "Still waiting…"}
var agentTexts = []string{"Hello! Let me check.", "Your order is on its way.", "Done, the address is changed.",
	"Sorry about that, we will send a new one.", "Anything else I can help with?", "You are welcome!"}

// play plays one session: the client opens it; most are answered, some
// exchanges long, some with an image; a few are lost, a few hit the
// unanswered limit, a few use the whole session and roll over.
func (p *player) play(ctx context.Context, b *store.Store, s plannedSession) error {
	rng := rand.New(rand.NewPCG(s.seed, 1))
	now := s.at
	at := b.WithClock(func() time.Time { return now })
	end := s.at.Add(p.rules.Window - time.Minute)
	r, err := at.ReceiveClientMessage(ctx, store.ClientMessage{Phone: s.phone, Name: s.name, Country: s.country,
		Kind: session.Text, Text: clientTexts[rng.IntN(len(clientTexts))], SentAt: now})
	if err != nil {
		return fmt.Errorf("client %s: %w", s.phone, err)
	}
	p.res.Sessions++
	p.res.ClientMessages++
	conv := r.Message.ConversationID
	agent := s.agent
	if rng.IntN(5) == 0 {
		agent = p.agents[rng.IntN(len(p.agents))]
	}
	// What the provider priced so far in the current session.
	pricedSession, textPriced, mediaPriced := 0, false, false
	unpriced := rng.IntN(20) == 0
	send := func(kind session.Kind, confirm bool) (bool, error) {
		part := session.Part{Kind: kind, Text: agentTexts[rng.IntN(len(agentTexts))]}
		req := store.BusinessSend{ConversationID: conv, AgentID: agent.ID, Parts: []session.Part{part}, ConfirmNewSession: confirm}
		if kind != session.Text {
			req.Parts[0].Text = ""
			req.Attachments = []*store.NewAttachment{{Hash: fmt.Sprintf("%064x", rng.Uint64()), Size: 48000,
				MIME: "image/jpeg", Name: "photo.jpg", Width: 800, Height: 600}}
		}
		msgs, err := at.AcceptBusinessMessages(ctx, req)
		if err != nil {
			var refusal *session.Refusal
			if errors.As(err, &refusal) {
				return false, nil // refused by the rules: the agent would see why and stop
			}
			return false, err
		}
		p.res.BusinessMessages++
		// The provider took it: it is not left queued for the outbox to send
		// now, and its report carries its price. One in fifty is refused at
		// once (not a Viber user): released.
		if rng.IntN(50) != 0 {
			m := msgs[0]
			if m.SessionNumber != pricedSession {
				pricedSession, textPriced, mediaPriced = m.SessionNumber, false, false
			}
			price := 0.0
			if !textPriced {
				price, textPriced = p.prices[s.country].Text, true
			}
			if kind != session.Text && !mediaPriced {
				price, mediaPriced = price+p.prices[s.country].Media-p.prices[s.country].Text, true
			}
			u := store.StatusUpdate{Ref: store.MessageRef{ID: m.ID}, Status: store.StatusDelivered,
				At: now.Add(3 * time.Second), ProviderID: fmt.Sprintf("seed-%d-%d", s.seed, m.ID)}
			if !unpriced {
				u.Price = &store.ReportedPrice{Amount: price, Country: s.country, At: u.At}
			}
			_, err := at.ApplyStatus(ctx, u)
			return true, err
		}
		if err := at.RejectMessage(ctx, store.MessageRef{ID: msgs[0].ID}, "Not a Viber user"); err != nil {
			return false, err
		}
		p.res.Rejected++
		return true, nil
	}
	client := func(text string) error {
		if _, err := at.ReceiveClientMessage(ctx, store.ClientMessage{Phone: s.phone, Name: s.name, Country: s.country,
			Kind: session.Text, Text: text, SentAt: now}); err != nil {
			return fmt.Errorf("client %s: %w", s.phone, err)
		}
		p.res.ClientMessages++
		return nil
	}
	switch k := rng.IntN(100); {
	case k < 8: // lost: nobody answers; sometimes the client insists
		if rng.IntN(2) == 0 {
			now = now.Add(minutes(rng, 20, 600))
			return client(clientTexts[len(clientTexts)-1])
		}
		return nil
	case k < 9: // a long exchange: the whole session, then a rollover
		now = now.Add(minutes(rng, 3, 30))
		for i := 0; i < p.rules.MaxPerSession+3 && now.Before(end); i++ {
			if i > 0 && i%3 == 0 {
				now = now.Add(time.Minute)
				if err := client("ok"); err != nil {
					return err
				}
			}
			now = now.Add(time.Minute)
			if _, err := send(session.Text, true); err != nil {
				return err
			}
		}
		return nil
	case k < 12: // the agent writes follow-ups until the unanswered limit
		now = now.Add(minutes(rng, 8, 240))
		for range p.rules.MaxUnanswered + 1 {
			if _, err := send(session.Text, false); err != nil {
				return err
			}
			now = now.Add(minutes(rng, 30, 120))
		}
		return nil
	}
	// The usual: a few exchanges, the first answer after a few minutes.
	now = now.Add(minutes(rng, 6, 360))
	for e := 1 + rng.IntN(4); e > 0 && now.Before(end); e-- {
		kind := session.Text
		if rng.IntN(9) == 0 {
			kind = session.Image
		}
		if _, err := send(kind, false); err != nil {
			return err
		}
		if rng.IntN(4) == 0 {
			return nil // the client is satisfied
		}
		now = now.Add(minutes(rng, 4, 60))
		if !now.Before(end) {
			return nil
		}
		if err := client(clientTexts[rng.IntN(len(clientTexts))]); err != nil {
			return err
		}
		now = now.Add(minutes(rng, 3, 120))
	}
	// Most agents have the last word; one client in eight is left waiting.
	if rng.IntN(8) != 0 && now.Before(end) {
		_, err := send(session.Text, false)
		return err
	}
	return nil
}

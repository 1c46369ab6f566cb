package store

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"sessiondesk/session"
)

// receiveFrom stores a client message from a number of a country.
func receiveIn(t testing.TB, s *Store, phone, country string) int64 {
	t.Helper()
	r, err := s.ReceiveClientMessage(context.Background(), ClientMessage{Phone: phone, Name: "Olga", Country: country,
		Kind: session.Text, Text: "Hello"})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return r.Message.ConversationID
}

func saveCard(t testing.TB, s *Store, edit func(*AdminSettings)) {
	t.Helper()
	set := s.Settings()
	edit(&set)
	if err := s.SaveSettings(context.Background(), 0, set); err != nil {
		t.Fatal(err)
	}
}

func mustSend(t testing.TB, s *Store, conv int64) Message {
	t.Helper()
	msgs, err := sendText(s, conv, "hi", false)
	if err != nil {
		t.Fatal(err)
	}
	return msgs[0]
}

func price(amount float64, cur string) *ReportedPrice {
	return &ReportedPrice{Amount: amount, Currency: cur, Country: "DE"}
}

func TestRecordPriceIsIdempotentAndSummedPerSession(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	saveRates(t, s, session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"})
	conv := receiveIn(t, s, "+4915112345678", "DE")
	a, b := mustSend(t, s, conv), mustSend(t, s, conv)

	// The same callback three times, and both messages' reports at once.
	var wg sync.WaitGroup
	for range 3 {
		for _, id := range []int64{a.ID, b.ID} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.RecordPrice(ctx, MessageRef{ID: id}, ReportedPrice{Amount: 0.03, Country: "DE"}); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	cur := sessionsOf(t, s, conv)[0]
	if cur.Reported.Priced != 2 || math.Abs(cur.Reported.Amount-0.06) > 1e-9 || cur.Reported.Foreign != 0 {
		t.Fatalf("reported %+v, want 2 prices summing 0.06", cur.Reported)
	}
	if cur.Cost() != 0.05 {
		t.Fatalf("estimate %v, want the frozen text rate 0.05", cur.Cost())
	}
	if d, differs := cur.CostDifference(); !differs || math.Abs(d-0.01) > 1e-9 {
		t.Fatalf("difference %v %v, want +0.01", d, differs)
	}
	// The currency was not named: the session's is taken.
	var p MessagePrice
	err := s.Read(ctx, func(r *Reader) error {
		var ok bool
		var err error
		p, ok, err = r.MessagePrice(ctx, a.ID)
		if !ok && err == nil {
			t.Error("no price read back")
		}
		return err
	})
	if err != nil || p.Currency != "EUR" || p.Country != "DE" || !p.Counted {
		t.Fatalf("price %+v, %v", p, err)
	}

	// A later report of 0 keeps the price; a corrected one replaces it.
	if changed, err := s.RecordPrice(ctx, MessageRef{ID: a.ID}, ReportedPrice{Amount: 0}); err != nil || changed {
		t.Fatalf("zero after a price: changed %v, %v", changed, err)
	}
	if _, err := s.RecordPrice(ctx, MessageRef{ID: a.ID}, ReportedPrice{Amount: 0.05}); err != nil {
		t.Fatal(err)
	}
	if r := sessionsOf(t, s, conv)[0].Reported; r.Priced != 2 || math.Abs(r.Amount-0.08) > 1e-9 {
		t.Fatalf("after the correction %+v, want 0.08", r)
	}
}

func TestRecordPriceInAnotherCurrencyIsNotSummed(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	saveRates(t, s, session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"})
	conv := receiveIn(t, s, "+4915112345678", "DE")
	a, b := mustSend(t, s, conv), mustSend(t, s, conv)
	if _, err := s.RecordPrice(ctx, MessageRef{ID: a.ID}, ReportedPrice{Amount: 0.04, Currency: "eur"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordPrice(ctx, MessageRef{ID: b.ID}, ReportedPrice{Amount: 7, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	r := sessionsOf(t, s, conv)[0].Reported
	if r.Priced != 2 || r.Foreign != 1 || math.Abs(r.Amount-0.04) > 1e-9 {
		t.Fatalf("reported %+v, want 0.04 EUR summed and one USD price apart", r)
	}
	// Back in the session's currency: summed again, counted once.
	if _, err := s.RecordPrice(ctx, MessageRef{ID: b.ID}, ReportedPrice{Amount: 0.01, Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if r := sessionsOf(t, s, conv)[0].Reported; r.Priced != 2 || r.Foreign != 0 || math.Abs(r.Amount-0.05) > 1e-9 {
		t.Fatalf("reported %+v, want 0.05 over two prices", r)
	}
}

func TestRecordPriceRefusesBadInputAndUnknownMessages(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receiveIn(t, s, "+4915112345678", "DE")
	m := mustSend(t, s, conv)
	for _, p := range []ReportedPrice{{Amount: -1}, {Amount: math.NaN()}, {Amount: math.Inf(1)}, {Amount: 2e6},
		{Amount: 1, Currency: "euro"}, {Amount: 1, Currency: "1€"}} {
		var invalid *InvalidError
		if _, err := s.RecordPrice(ctx, MessageRef{ID: m.ID}, p); !errors.As(err, &invalid) {
			t.Errorf("%+v: %v, want an InvalidError", p, err)
		}
	}
	if _, err := s.RecordPrice(ctx, MessageRef{ProviderID: "nope"}, ReportedPrice{Amount: 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown message: %v", err)
	}
	// A client message is not a business message.
	in := receive(t, s, "+4915112345678", "again").Message.ID
	if _, err := s.RecordPrice(ctx, MessageRef{ID: in}, ReportedPrice{Amount: 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("client message: %v", err)
	}
	if r := sessionsOf(t, s, conv)[0].Reported; r != (session.Reported{}) {
		t.Fatalf("refused prices were stored: %+v", r)
	}
}

func TestApplyStatusRecordsThePriceEvenWhenStale(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receiveIn(t, s, "+4915112345678", "DE")
	m := mustSend(t, s, conv)
	if _, err := s.ApplyStatus(ctx, StatusUpdate{Ref: MessageRef{ID: m.ID}, Status: StatusSeen}); err != nil {
		t.Fatal(err)
	}
	// Delivered after Seen: the status stays, the price lands.
	changed, err := s.ApplyStatus(ctx, StatusUpdate{Ref: MessageRef{ID: m.ID}, Status: StatusDelivered, Price: price(0.02, "")})
	if err != nil || !changed {
		t.Fatalf("changed %v, %v", changed, err)
	}
	if got := message(t, s, m.ID).Status; got != StatusSeen {
		t.Fatalf("status %s, want seen", got)
	}
	if r := sessionsOf(t, s, conv)[0].Reported; r.Priced != 1 || r.Amount != 0.02 {
		t.Fatalf("reported %+v", r)
	}
	// The same report again changes nothing.
	if changed, err := s.ApplyStatus(ctx, StatusUpdate{Ref: MessageRef{ID: m.ID}, Status: StatusDelivered,
		Price: price(0.02, "")}); err != nil || changed {
		t.Fatalf("repeat: changed %v, %v", changed, err)
	}
}

func TestRatesPerCountryFrozenWhenBilled(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	saveCard(t, s, func(a *AdminSettings) {
		a.Rates = session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"}
		a.CountryRates = map[string]session.CountryRates{"de": {Text: 0.02, Media: 0.04}}
		a.SenderCountry = "de"
		a.InternationalRate = 0.01
	})
	if set := s.Settings(); set.SenderCountry != "DE" || set.CountryRates["DE"].Text != 0.02 {
		t.Fatalf("settings not normalised: %+v", set)
	}
	de := receiveIn(t, s, "+4915112345678", "DE")
	by := receiveIn(t, s, "+375298603938", "BY")
	unknown := receiveIn(t, s, "+80012345678", "")
	for _, c := range []int64{de, by, unknown} {
		mustSend(t, s, c)
	}
	mustSend(t, s, by) // per message: two messages cost twice the rate
	check := func(when string, conv int64, cost float64, country string) {
		t.Helper()
		ss := sessionsOf(t, s, conv)[0]
		if math.Abs(ss.Cost()-cost) > 1e-9 || ss.Country != country || ss.BilledAt.IsZero() {
			t.Errorf("%s: conversation %d costs %v in %q (billed %v), want %v in %q", when, conv, ss.Cost(), ss.Country,
				ss.BilledAt, cost, country)
		}
	}
	check("billed", de, 0.02, "DE")
	check("billed", by, 0.02, "BY")
	check("billed", unknown, 0.05, "")

	// New rates: the sessions billed already keep theirs.
	saveCard(t, s, func(a *AdminSettings) {
		a.Rates = session.Rates{Text: 0.5, Media: 1, Currency: "EUR"}
		a.CountryRates = map[string]session.CountryRates{"DE": {Text: 0.3, Media: 0.6}}
		a.InternationalRate = 0
	})
	mustSend(t, s, by) // still the frozen per-message rate: 3 × 0.01
	check("after the change", de, 0.02, "DE")
	check("after the change", by, 0.03, "BY")
	check("after the change", unknown, 0.05, "")

	// A session billed afterwards takes the new ones.
	clk.Add(25 * time.Hour)
	receiveIn(t, s, "+375298603938", "BY")
	mustSend(t, s, by)
	check("next session", by, 0.5, "BY")
	if got := sessionsOf(t, s, by)[1].Cost(); math.Abs(got-0.03) > 1e-9 {
		t.Errorf("the earlier session now costs %v, want 0.03", got)
	}
}

func TestSaveSettingsRefusesBadRatesAndBudget(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	for name, edit := range map[string]func(*AdminSettings){
		"country code":   func(a *AdminSettings) { a.CountryRates = map[string]session.CountryRates{"DEU": {Text: 1}} },
		"country rate":   func(a *AdminSettings) { a.CountryRates = map[string]session.CountryRates{"DE": {Text: -1}} },
		"sender":         func(a *AdminSettings) { a.SenderCountry = "Germany" },
		"international":  func(a *AdminSettings) { a.InternationalRate = math.NaN() },
		"budget":         func(a *AdminSettings) { a.MonthlyBudget = -5 },
		"budget too big": func(a *AdminSettings) { a.MonthlyBudget = 1e12 },
	} {
		set := s.Settings()
		edit(&set)
		var invalid *InvalidError
		if err := s.SaveSettings(context.Background(), 0, set); !errors.As(err, &invalid) {
			t.Errorf("%s: %v, want an InvalidError", name, err)
		}
	}
	if set := s.Settings(); set.CountryRates != nil || set.MonthlyBudget != 0 || set.SenderCountry != "" {
		t.Fatalf("a refused save changed the settings: %+v", set)
	}
}

func TestRateCardSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/test.db"
	s, err := Open(context.Background(), path, Options{Rules: session.Defaults(), Rates: session.Rates{Currency: "EUR"}})
	if err != nil {
		t.Fatal(err)
	}
	saveCard(t, s, func(a *AdminSettings) {
		a.CountryRates = map[string]session.CountryRates{"DE": {Text: 0.3, Media: 0.6}}
		a.SenderCountry, a.InternationalRate, a.MonthlyBudget = "DE", 0.02, 150
	})
	s.Close()
	s, err = Open(context.Background(), path, Options{Rules: session.Defaults(), Rates: session.Rates{Currency: "EUR"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	set := s.Settings()
	if set.CountryRates["DE"] != (session.CountryRates{Text: 0.3, Media: 0.6}) || set.SenderCountry != "DE" ||
		set.InternationalRate != 0.02 || set.MonthlyBudget != 150 {
		t.Fatalf("after reopening: %+v", set)
	}
}

// The month's running totals (migration 00022) equal a sum over the month's
// sessions after every step of random traffic: sends, rollovers, images,
// prices in both currencies, refusals that unbill a session, rate changes,
// and months turning.
func TestMonthSpendMatchesTheSessions(t *testing.T) {
	rules := session.Defaults()
	rules.MaxPerSession = 3
	s, clk := newStore(t, rules)
	ctx := context.Background()
	saveCard(t, s, func(a *AdminSettings) {
		a.Rates = session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"}
		a.CountryRates = map[string]session.CountryRates{"DE": {Text: 0.02, Media: 0.04}}
		a.SenderCountry, a.InternationalRate = "DE", 0.01
	})
	rng := rand.New(rand.NewPCG(1, 2))
	phones := []struct{ phone, country string }{{"+4915112345678", "DE"}, {"+375298603938", "BY"}, {"+33612345678", ""}}
	var sent []int64
	check := func(step int) {
		t.Helper()
		for _, at := range []time.Time{clk.Now(), clk.Now().AddDate(0, -1, 0)} {
			from, to := MonthBounds(at)
			var want, got Spend
			err := s.Read(ctx, func(r *Reader) error {
				var err error
				if want, err = r.Spend(ctx, from, to, "EUR"); err != nil {
					return err
				}
				got, err = r.MonthSpend(ctx, at, "EUR")
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got.Amount-want.Amount) > 1e-6 || got.Sessions != want.Sessions || got.Reported != want.Reported {
				t.Fatalf("step %d, %s: running %+v, summed %+v", step, from.Format("2006-01"), got, want)
			}
		}
	}
	for step := range 300 {
		p := phones[rng.IntN(len(phones))]
		switch op := rng.IntN(10); {
		case op < 3:
			receiveIn(t, s, p.phone, p.country)
		case op < 6:
			conv := receiveIn(t, s, p.phone, p.country)
			kind := session.Text
			parts := []session.Part{{Kind: kind, Text: "hi"}}
			msgs, err := s.AcceptBusinessMessages(ctx, BusinessSend{ConversationID: conv, Parts: parts, ConfirmNewSession: true})
			if err == nil {
				sent = append(sent, msgs[0].ID)
			}
		case op < 8 && len(sent) > 0:
			cur := ""
			if rng.IntN(5) == 0 {
				cur = "USD"
			}
			if _, err := s.RecordPrice(ctx, MessageRef{ID: sent[rng.IntN(len(sent))]},
				ReportedPrice{Amount: float64(rng.IntN(50)) / 1000, Currency: cur}); err != nil {
				t.Fatal(err)
			}
		case op == 8 && len(sent) > 0:
			i := rng.IntN(len(sent))
			if err := s.RejectMessage(ctx, MessageRef{ID: sent[i]}, "refused"); err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
		case op == 9:
			clk.Add(time.Duration(rng.IntN(72)) * time.Hour)
			if rng.IntN(4) == 0 {
				saveCard(t, s, func(a *AdminSettings) { a.Rates.Text = float64(rng.IntN(10)) / 100 })
			}
		}
		check(step)
	}
}

// Pages and callbacks that find the budget crossed at once log each
// threshold once.
func TestCheckBudgetAtOnceLogsOnce(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	saveCard(t, s, func(a *AdminSettings) {
		a.Rates = session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"}
		a.MonthlyBudget = 0.1
	})
	for _, p := range []string{"+4915112345678", "+4915112345679"} {
		mustSend(t, s, receiveIn(t, s, p, "DE"))
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if b, _, err := s.CheckBudget(ctx); err != nil || b.Reached != 100 {
				t.Errorf("%+v, %v", b, err)
			}
		})
	}
	wg.Wait()
	var alerts []BudgetAlert
	err := s.Read(ctx, func(r *Reader) error {
		var err error
		alerts, err = r.BudgetAlerts(ctx, "2026-11")
		return err
	})
	if err != nil || len(alerts) != 2 || alerts[0].Threshold != 80 || alerts[1].Threshold != 100 {
		t.Fatalf("alerts %+v, %v; want 80 and 100 once each", alerts, err)
	}
	if n := len(audit(t, s, AuditFilter{Action: AuditBudget})); n != 2 {
		t.Fatalf("%d audit entries, want 2", n)
	}
}

package store

import (
	"context"
	"errors"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"sessiondesk/session"
)

func TestReasonFlags(t *testing.T) {
	for reason, want := range map[string][]string{
		"Not Viber User":                  {FlagNotViberUser},
		"SRVC_NOT_VIBER_USER":             {FlagNotViberUser},
		"Opted Out":                       {FlagOptedOut},
		"SRVC_USER_BLOCKED":               {FlagBlocked},
		"Unsupported Equipment":           {FlagNoSuitableDevice},
		"SRVC_NO_SUITABLE_DEVICE":         {FlagNoSuitableDevice},
		"TTL Expired":                     nil,
		"System Failure":                  nil,
		"":                                nil,
		"Unsent: insufficient balance":    nil,
		"Not Viber User; Opted Out: user": {FlagNotViberUser, FlagOptedOut},
	} {
		if got := ReasonFlags(reason); !reflect.DeepEqual(got, want) {
			t.Errorf("ReasonFlags(%q) = %v, want %v", reason, got, want)
		}
	}
}

func TestPaidSettingsPriceAndValidate(t *testing.T) {
	p := PaidSettings{Currency: " eur ", ViberRates: map[string]float64{"by": 0.031, "*": 0.05}, SMSRates: map[string]float64{"BY": 0.06}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.Currency != "EUR" {
		t.Errorf("currency %q", p.Currency)
	}
	for _, c := range []struct {
		route, country string
		want           float64
		ok             bool
	}{
		{RouteViber, "BY", 0.031, true}, {RouteViber, "PL", 0.05, true}, {RouteViber, "", 0.05, true},
		{RouteSMS, "BY", 0.06, true}, {RouteSMS, "PL", 0, false},
		{RouteFailover, "BY", 0.091, true}, {RouteFailover, "PL", 0, false}, {"fax", "BY", 0, false},
	} {
		got, ok := p.Price(c.route, c.country)
		if ok != c.ok || math.Abs(got-c.want) > 1e-9 && c.ok {
			t.Errorf("Price(%s, %s) = %v %v, want %v %v", c.route, c.country, got, ok, c.want, c.ok)
		}
	}
	for name, bad := range map[string]PaidSettings{
		"currency":      {Currency: "euro"},
		"country":       {Currency: "EUR", ViberRates: map[string]float64{"BLR": 1}},
		"negative":      {Currency: "EUR", SMSRates: map[string]float64{"*": -1}},
		"NaN":           {Currency: "EUR", ViberRates: map[string]float64{"*": math.NaN()}},
		"long sender":   {Currency: "EUR", SMSSender: "a-very-long-sender-name"},
		"digit country": {Currency: "EUR", ViberRates: map[string]float64{"B1": 1}},
	} {
		var invalid *InvalidError
		if err := bad.Validate(); !errors.As(err, &invalid) {
			t.Errorf("%s: %v, want an InvalidError", name, err)
		}
	}
}

// A paid message leaves the session's counters alone, and its rejection
// releases nothing; the client's reply naming it opens the next session.
func TestPaidMessageOutsideTheRules(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	if _, err := s.SavePaidSettings(ctx, 0, PaidSettings{Currency: "EUR", ViberRates: map[string]float64{"*": 0.05}}); err != nil {
		t.Fatal(err)
	}
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	if _, err := sendText(s, conv, "A session reply", false); err != nil {
		t.Fatal(err)
	}
	before := state(t, s, conv)
	clk.Add(25 * time.Hour)
	_, err := s.AcceptPaidMessage(ctx, PaidSend{ConversationID: conv, Text: "Order ready"})
	var ce *CostError
	if !errors.As(err, &ce) || ce.Quote.Price != 0.05 || ce.Quote.Currency != "EUR" {
		t.Fatalf("unconfirmed: %v", err)
	}
	// Two confirmed at once: two messages, neither counted.
	var wg sync.WaitGroup
	ids := make([]int64, 2)
	for i := range 2 {
		wg.Go(func() {
			m, err := s.AcceptPaidMessage(ctx, PaidSend{ConversationID: conv, Text: "Order ready", ConfirmCost: true})
			if err != nil {
				t.Error(err)
			}
			ids[i] = m.ID
			if m.Counted || m.Paid == nil || m.Paid.QuotedPrice != 0.05 || m.Status != StatusQueued {
				t.Errorf("paid message %+v", m)
			}
		})
	}
	wg.Wait()
	after := state(t, s, conv)
	if after.Current.Used != before.Current.Used || after.Unanswered != before.Unanswered || after.Current.Number != 1 {
		t.Errorf("a paid message moved the session: before %+v, after %+v", before.Current, after.Current)
	}
	if err := s.RejectMessage(ctx, MessageRef{ID: ids[0]}, "Invalid"); err != nil {
		t.Fatal(err)
	}
	if st := state(t, s, conv); st.Current.Used != before.Current.Used || st.Current.Rates != before.Current.Rates {
		t.Errorf("rejecting a paid message changed the session: %+v", st.Current)
	}
	m, _ := s.RetryMessage(ctx, ids[0], 0, true)
	if m.ID != 0 {
		t.Error("a paid message was sent again through the session rules")
	}
	if _, err := s.ApplyStatus(ctx, StatusUpdate{Ref: MessageRef{ID: ids[1]}, Status: StatusSent, ProviderID: "trk-1"}); err != nil {
		t.Fatal(err)
	}
	rec, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: "+375298603938", Kind: session.Text, Text: "Thanks",
		ReplyToProviderID: "trk-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.SessionOpened || rec.Message.SessionNumber != 2 || rec.Message.ReplyTo != ids[1] {
		t.Errorf("the reply: opened %v, %+v", rec.SessionOpened, rec.Message)
	}
	// A reference to another client's message links nothing.
	other := receive(t, s, "+375298600000", "Hi").Message.ConversationID
	rec, err = s.ReceiveClientMessage(ctx, ClientMessage{Phone: "+375298600000", Kind: session.Text, Text: "?",
		ReplyToProviderID: "trk-1"})
	if err != nil || rec.Message.ReplyTo != 0 || rec.Message.ConversationID != other {
		t.Errorf("a reply naming another client's message: %+v %v", rec.Message, err)
	}
}

// Flags: set once from reports, cleared by a client message or an admin
// (the note is required; clearing twice at once clears once).
func TestContactFlags(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	msgs, err := sendText(s, conv, "Hi", false)
	if err != nil {
		t.Fatal(err)
	}
	ref := MessageRef{ID: msgs[0].ID}
	for range 2 {
		if _, err := s.FlagFromReport(ctx, ref, "Opted Out", "Not Viber User", "Opted Out"); err != nil {
			t.Fatal(err)
		}
	}
	var flags []ContactFlag
	var contactID int64
	read := func() {
		_ = s.Read(ctx, func(r *Reader) error {
			c, err := r.Conversation(ctx, conv)
			contactID = c.Contact.ID
			if err != nil {
				return err
			}
			flags, err = r.ConversationFlags(ctx, conv)
			return err
		})
	}
	read()
	if len(flags) != 2 || flags[0].Flag != FlagNotViberUser || flags[1].Flag != FlagOptedOut || flags[1].Reason != "Opted Out" {
		t.Fatalf("flags %+v", flags)
	}
	if err := s.ClearFlag(ctx, 0, contactID, FlagOptedOut, "  "); err == nil {
		t.Error("cleared without a note")
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { errs[i] = s.ClearFlag(ctx, 0, contactID, FlagOptedOut, "asked by phone") })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), ErrNotFound) {
		t.Errorf("two clears at once: %v", errs)
	}
	receive(t, s, "+375298603938", "I use Viber")
	read()
	if len(flags) != 0 {
		t.Errorf("after the client wrote: %+v", flags)
	}
}

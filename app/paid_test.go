package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sessiondesk/channel"
	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/clock"
	"sessiondesk/config"
	"sessiondesk/store"
)

// paidApp is the app on a fake Routee with a manual clock for the session
// rules (the outbox sends at once, so nothing waits on it).
type paidApp struct {
	*routeeApp
	clk *clock.Manual
}

func startPaidApp(t *testing.T) *paidApp {
	t.Helper()
	clk := clock.NewManual(time.Now().UTC())
	ra := startRouteeApp(t, channel.OutboxOptions{}, func(c *config.Config, o *Options) { o.Now = clk.Now })
	pa := &paidApp{routeeApp: ra, clk: clk}
	status, body := ra.do(t, "PUT", "/api/v1/admin/paid-settings", "application/json",
		`{"currency":"eur","viber_rates":{"BY":0.031,"*":0.05},"sms_rates":{"*":0.06},"sms_sender":"Shop","promotional":true}`)
	if status != http.StatusOK {
		t.Fatalf("paid settings: %d %s", status, body)
	}
	return pa
}

type apiMsg struct {
	ID      int64  `json:"id"`
	Status  string `json:"status"`
	Session int    `json:"session"`
	Text    string `json:"text"`
	ReplyTo int64  `json:"reply_to"`
	Paid    *struct {
		Channel      string   `json:"channel"`
		FinalChannel string   `json:"final_channel"`
		QuotedPrice  float64  `json:"quoted_price"`
		Price        *float64 `json:"price"`
		Currency     string   `json:"currency"`
	} `json:"paid"`
}

func (pa *paidApp) messages(t *testing.T, conv int64) []apiMsg {
	t.Helper()
	_, body := pa.do(t, "GET", "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages", "", "")
	var out struct {
		Messages []apiMsg `json:"messages"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("messages: %v %s", err, body)
	}
	return out.Messages
}

func (pa *paidApp) message(t *testing.T, conv, id int64) apiMsg {
	t.Helper()
	for _, m := range pa.messages(t, conv) {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("message %d is not in conversation %d", id, conv)
	return apiMsg{}
}

func (pa *paidApp) sendPaid(t *testing.T, conv int64, body string) (int, []byte) {
	t.Helper()
	return pa.do(t, "POST", "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages", "application/json", body)
}

// sentPaid sends a confirmed paid message and waits until Routee has it.
func (pa *paidApp) sentPaid(t *testing.T, conv int64, body string) (int64, fakeroutee.Message) {
	t.Helper()
	status, ans := pa.sendPaid(t, conv, body)
	if status != http.StatusCreated {
		t.Fatalf("paid send: %d %s", status, ans)
	}
	var out struct {
		Message apiMsg `json:"message"`
	}
	_ = json.Unmarshal(ans, &out)
	label := strconv.FormatInt(out.Message.ID, 10)
	var sent fakeroutee.Message
	waitFor(t, "the paid message at Routee", func() bool {
		for _, m := range pa.fake.Messages() {
			if m.Label == label {
				sent = m
				return true
			}
		}
		return false
	})
	waitFor(t, "the paid message recorded as sent", func() bool { return pa.message(t, conv, out.Message.ID).Status == store.StatusSent })
	return out.Message.ID, sent
}

func sessionUsed(t *testing.T, pa *paidApp, conv int64) (used, unanswered int, open bool) {
	t.Helper()
	_, body := pa.do(t, "GET", "/api/v1/conversations/"+strconv.FormatInt(conv, 10), "", "")
	var cv struct {
		Session struct {
			Open       bool `json:"open"`
			Used       int  `json:"used"`
			Unanswered int  `json:"unanswered"`
		} `json:"session"`
	}
	_ = json.Unmarshal(body, &cv)
	return cv.Session.Used, cv.Session.Unanswered, cv.Session.Open
}

// The "Done when": from a closed conversation a paid message needs
// its price confirmed, goes out as POST /viber without isSessionMessage,
// counts for nothing in the session, and the client's reply naming it opens
// session 2, shown as a reply to it.
func TestPaidMessageAndReplyOpensNextSession(t *testing.T) {
	pa := startPaidApp(t)
	const from = "+375298603938" // Belarus: the BY rate
	conv := pa.clientWritesViaRoutee(t, from, "Is my order ready?")
	pa.clk.Add(25 * time.Hour) // the window closed
	if status, body := pa.sendPaid(t, conv, `{"type":"text","text":"Your order is ready"}`); status != http.StatusConflict {
		t.Fatalf("a session send after the window: %d %s", status, body)
	}

	// Without confirm_cost: 409 with the price, nothing stored.
	before := len(pa.messages(t, conv))
	status, body := pa.sendPaid(t, conv, `{"paid":true,"text":"Your order is ready"}`)
	var cost struct {
		Code     string  `json:"code"`
		Message  string  `json:"message"`
		Price    float64 `json:"price"`
		Currency string  `json:"currency"`
		Country  string  `json:"country"`
	}
	_ = json.Unmarshal(body, &cost)
	if status != http.StatusConflict || cost.Code != "needs_cost_confirmation" || cost.Price != 0.031 ||
		cost.Currency != "EUR" || cost.Country != "BY" || !strings.Contains(cost.Message, "new billed session") {
		t.Fatalf("unconfirmed paid send: %d %s", status, body)
	}
	if n := len(pa.messages(t, conv)); n != before {
		t.Fatalf("an unconfirmed paid send stored a message (%d → %d)", before, n)
	}

	id, sent := pa.sentPaid(t, conv, `{"paid":true,"confirm_cost":true,"text":"Your order is ready"}`)
	if sent.Session || sent.Route != "viber" || sent.Text != "Your order is ready" {
		t.Errorf("Routee got %+v, want a non-session Viber text", sent)
	}
	m := pa.message(t, conv, id)
	if m.Paid == nil || m.Paid.Channel != "viber" || m.Paid.QuotedPrice != 0.031 || m.Paid.Currency != "EUR" || m.Session != 1 {
		t.Errorf("the paid message shows as %+v", m)
	}
	if used, unanswered, open := sessionUsed(t, pa, conv); used != 0 || unanswered != 0 || open {
		t.Errorf("after a paid message the session counts used %d, unanswered %d, open %v; want 0, 0, closed", used, unanswered, open)
	}

	// Delivered, with Routee's price.
	if err := pa.fake.Settle(context.Background(), sent.TrackingID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivered with its price", func() bool {
		m := pa.message(t, conv, id)
		return m.Status == store.StatusDelivered && m.Paid.Price != nil && *m.Paid.Price == fakeroutee.DefaultViberPrice &&
			m.Paid.FinalChannel == "viber"
	})

	// The client answers it: the reply names it and opens session 2.
	if err := pa.fake.SendInbound(context.Background(), pa.hooks+"/inbound", fakeroutee.Inbound{From: from, Text: "Thanks, coming",
		ReferenceTrackingID: sent.TrackingID, SentAt: pa.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	msgs := pa.messages(t, conv)
	reply := msgs[len(msgs)-1]
	if reply.Text != "Thanks, coming" || reply.ReplyTo != id || reply.Session != 2 {
		t.Errorf("the reply is %+v, want a reply to %d in session 2", reply, id)
	}
	if _, _, open := sessionUsed(t, pa, conv); !open {
		t.Error("the reply did not open a session")
	}
	// And a session message can go again.
	if id := pa.agentSends(t, conv, "Great"); id == 0 {
		t.Error("no session reply after the client answered")
	}
}

// "Not Viber User": the failover's SMS step carries it, the thread shows
// which channel and the total price, and the contact is flagged; a plain
// Viber paid message is then refused with the reason, SMS offered.
func TestPaidFailoverToSMSAfterNotViberUser(t *testing.T) {
	pa := startPaidApp(t)
	const from = "+375298600001"
	conv := pa.clientWritesViaRoutee(t, from, "Hello")
	pa.clk.Add(25 * time.Hour)
	pa.fake.NotViberUser(from, true)
	status, body := pa.sendPaid(t, conv, `{"paid":true,"fallback":true,"text":"Refund sent"}`)
	if status != http.StatusConflict || !strings.Contains(string(body), `"price":0.091`) {
		t.Fatalf("failover quote (Viber 0.031 + SMS 0.06): %d %s", status, body)
	}
	id, sent := pa.sentPaid(t, conv, `{"paid":true,"fallback":true,"confirm_cost":true,"text":"Refund sent"}`)
	if sent.Route != "failover" || sent.SMSFrom != "Shop" || sent.FailoverOn != "UNDELIVERED,EXPIRED,FAILED" {
		t.Errorf("Routee got %+v", sent)
	}
	if err := pa.fake.Settle(context.Background(), sent.TrackingID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SMS step delivered", func() bool {
		m := pa.message(t, conv, id)
		return m.Status == store.StatusDelivered && m.Paid.FinalChannel == "sms" && m.Paid.Price != nil &&
			*m.Paid.Price == fakeroutee.DefaultSMSPrice
	})
	_, body = pa.do(t, "GET", "/api/v1/conversations/"+strconv.FormatInt(conv, 10), "", "")
	var cv struct {
		Contact struct {
			Flags []store.ContactFlag `json:"flags"`
		} `json:"contact"`
	}
	_ = json.Unmarshal(body, &cv)
	if len(cv.Contact.Flags) != 1 || cv.Contact.Flags[0].Flag != store.FlagNotViberUser || cv.Contact.Flags[0].Reason != "Not Viber User" {
		t.Fatalf("contact.flags = %+v (%s)", cv.Contact.Flags, body)
	}
	// The month's paid costs: one failover, carried by SMS, billed the SMS price.
	period := "?from=" + pa.clk.Now().AddDate(0, 0, -2).Format(time.DateOnly) + "&to=" + pa.clk.Now().AddDate(0, 0, 2).Format(time.DateOnly)
	_, body = pa.do(t, "GET", "/api/v1/admin/paid-costs"+period, "", "")
	var costs struct {
		Totals []store.PaidTotal `json:"totals"`
	}
	_ = json.Unmarshal(body, &costs)
	if len(costs.Totals) != 1 || costs.Totals[0].Route != "failover" || costs.Totals[0].Channel != "sms" || costs.Totals[0].Count != 1 ||
		costs.Totals[0].Billed != fakeroutee.DefaultSMSPrice || costs.Totals[0].Quoted != 0.091 || costs.Totals[0].Currency != "EUR" {
		t.Errorf("paid costs: %s", body)
	}
	if status, _ := pa.do(t, "GET", "/api/v1/admin/paid-costs?from=yesterday", "", ""); status != http.StatusUnprocessableEntity {
		t.Errorf("a bad period: %d", status)
	}
	status, body = pa.sendPaid(t, conv, `{"paid":true,"confirm_cost":true,"text":"Another"}`)
	if status != http.StatusConflict || decodeError(t, body).Code != "not_viber_user" || !strings.Contains(string(body), "SMS") {
		t.Errorf("Viber to a non-Viber user: %d %s", status, body)
	}
	// SMS directly is fine.
	if _, sent := pa.sentPaid(t, conv, `{"paid":true,"channel":"sms","confirm_cost":true,"text":"By SMS"}`); sent.Route != "sms" {
		t.Errorf("SMS went as %+v", sent)
	}
	// A client message clears it: writing on Viber shows they use Viber.
	pa.clientWritesViaRoutee(t, from, "I installed Viber")
	_, body = pa.do(t, "GET", "/api/v1/conversations/"+strconv.FormatInt(conv, 10), "", "")
	if strings.Contains(string(body), "not_viber_user") {
		t.Errorf("the flag stayed after the client wrote: %s", body)
	}
}

// A client who opted out gets no paid message: 409 contact_opted_out with a
// reason, until an admin clears the flag with a note (audited) or they write.
func TestOptedOutContactRefused(t *testing.T) {
	pa := startPaidApp(t)
	const from = "+375298600002"
	conv := pa.clientWritesViaRoutee(t, from, "Hello")
	pa.clk.Add(25 * time.Hour)
	_, sent := pa.sentPaid(t, conv, `{"paid":true,"confirm_cost":true,"text":"Offer"}`)
	if err := pa.fake.ReportStatus(context.Background(), sent.TrackingID, "Failed", "Opted Out"); err != nil {
		t.Fatal(err)
	}
	before := len(pa.messages(t, conv))
	status, body := pa.sendPaid(t, conv, `{"paid":true,"confirm_cost":true,"text":"Another offer"}`)
	e := decodeError(t, body)
	if status != http.StatusConflict || e.Code != "contact_opted_out" || !strings.Contains(e.Message, "opted out") {
		t.Fatalf("paid send to an opted-out contact: %d %s", status, body)
	}
	// Not even the price question comes first.
	if status, body := pa.sendPaid(t, conv, `{"paid":true,"text":"Another offer"}`); decodeError(t, body).Code != "contact_opted_out" {
		t.Errorf("unconfirmed: %d %s", status, body)
	}
	if n := len(pa.messages(t, conv)); n != before {
		t.Errorf("refused sends stored messages")
	}
	var contactID int64
	_ = pa.Store.Read(context.Background(), func(r *store.Reader) error {
		c, err := r.Conversation(context.Background(), conv)
		contactID = c.Contact.ID
		return err
	})
	path := "/api/v1/admin/contacts/" + strconv.FormatInt(contactID, 10) + "/flags/opted_out/clear"
	if status, body := pa.do(t, "POST", path, "application/json", `{"note":""}`); status != http.StatusUnprocessableEntity {
		t.Errorf("clear without a note: %d %s", status, body)
	}
	if status, body := pa.do(t, "POST", path, "application/json", `{"note":"Client asked by phone to get order news"}`); status != http.StatusNoContent {
		t.Fatalf("clear: %d %s", status, body)
	}
	if status, _ := pa.do(t, "POST", path, "application/json", `{"note":"again"}`); status != http.StatusNotFound {
		t.Errorf("clearing twice: %d", status)
	}
	_, audit := pa.do(t, "GET", "/admin/audit.csv", "", "")
	if !strings.Contains(string(audit), "Client asked by phone") {
		t.Error("the audit log does not hold the note")
	}
	if status, body := pa.sendPaid(t, conv, `{"paid":true,"confirm_cost":true,"text":"Order news"}`); status != http.StatusCreated {
		t.Errorf("after clearing: %d %s", status, body)
	}
}

func TestPaidInputChecked(t *testing.T) {
	pa := startPaidApp(t)
	conv := pa.clientWritesViaRoutee(t, "+375298600003", "Hello")
	before := len(pa.messages(t, conv))
	for name, body := range map[string]string{
		"empty":           `{"paid":true,"confirm_cost":true,"text":"  "}`,
		"huge":            `{"paid":true,"confirm_cost":true,"text":"` + strings.Repeat("я", 1001) + `"}`,
		"http button":     `{"paid":true,"confirm_cost":true,"text":"a","button":{"caption":"Go","url":"http://shop.example"}}`,
		"button no url":   `{"paid":true,"confirm_cost":true,"text":"a","button":{"caption":"Go"}}`,
		"image no button": `{"paid":true,"confirm_cost":true,"text":"a","image_url":"https://cdn.example/a.png"}`,
		"image http":      `{"paid":true,"confirm_cost":true,"text":"a","image_url":"http://10.0.0.1/a.png","button":{"caption":"Go","url":"https://x.example"}}`,
		"sms with image":  `{"paid":true,"confirm_cost":true,"channel":"sms","text":"a","image_url":"https://cdn.example/a.png","button":{"caption":"Go","url":"https://x.example"}}`,
		"bad channel":     `{"paid":true,"confirm_cost":true,"channel":"fax","text":"a"}`,
		"sms + fallback":  `{"paid":true,"confirm_cost":true,"channel":"sms","fallback":true,"text":"a"}`,
		"no template":     `{"paid":true,"confirm_cost":true,"text":"a","template_id":999}`,
	} {
		if status, body := pa.sendPaid(t, conv, body); status != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	if n := len(pa.messages(t, conv)); n != before {
		t.Errorf("bad input stored %d messages", n-before)
	}
	// Promotional: text, image and button go out as one message.
	_, sent := pa.sentPaid(t, conv, `{"paid":true,"confirm_cost":true,"text":"Sale","image_url":"https://cdn.example/sale.png","button":{"caption":"Shop","url":"https://shop.example/s"}}`)
	if sent.ImageURL != "https://cdn.example/sale.png" || sent.ButtonCaption != "Shop" || sent.ButtonURL != "https://shop.example/s" {
		t.Errorf("promotional message at Routee: %+v", sent)
	}
	// Two confirmed sends at once: both stored, each once.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { pa.sendPaid(t, conv, `{"paid":true,"confirm_cost":true,"text":"twice"}`) })
	}
	wg.Wait()
	waitFor(t, "both at Routee", func() bool {
		n := 0
		for _, m := range pa.fake.Messages() {
			if m.Text == "twice" {
				n++
			}
		}
		return n == 2
	})
}

// "Check with Routee": a status report that never arrived is applied from
// the tracking lookup, and the answer says what changed.
func TestReconcileRepairsDroppedCallback(t *testing.T) {
	pa := startPaidApp(t)
	conv := pa.clientWritesViaRoutee(t, "+375298600004", "Hello")
	pa.clk.Add(25 * time.Hour)
	id, sent := pa.sentPaid(t, conv, `{"paid":true,"confirm_cost":true,"text":"Your order is ready"}`)
	pa.fake.SetStatus(sent.TrackingID, "Seen", "") // its callback is lost
	status, body := pa.do(t, "POST", "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/reconcile", "application/json", "")
	var res struct {
		Checked int `json:"checked"`
		Changes []struct {
			MessageID int64   `json:"message_id"`
			From      string  `json:"from"`
			To        string  `json:"to"`
			Price     float64 `json:"price"`
		} `json:"changes"`
		RouteeSessions int `json:"routee_sessions"`
	}
	_ = json.Unmarshal(body, &res)
	if status != http.StatusOK || res.Checked != 1 || len(res.Changes) != 1 || res.Changes[0].MessageID != id ||
		res.Changes[0].From != "sent" || res.Changes[0].To != "seen" || res.Changes[0].Price != fakeroutee.DefaultViberPrice {
		t.Fatalf("reconcile: %d %s", status, body)
	}
	if m := pa.message(t, conv, id); m.Status != store.StatusSeen || m.Paid.Price == nil {
		t.Errorf("after reconcile the message is %+v", m)
	}
	// Again: nothing left to change.
	_, body = pa.do(t, "POST", "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/reconcile", "application/json", "")
	if !strings.Contains(string(body), `"changes":[]`) {
		t.Errorf("second reconcile: %s", body)
	}
	// The background job finds messages stuck in sent past the ttl.
	id2, sent2 := pa.sentPaid(t, conv, `{"paid":true,"confirm_cost":true,"text":"Second"}`)
	pa.fake.SetStatus(sent2.TrackingID, "Delivered", "")
	if n, err := pa.reconciler.Stuck(context.Background(), time.Hour, 10); err != nil || n != 0 {
		t.Errorf("not stuck yet: %d %v", n, err)
	}
	pa.clk.Add(25 * time.Hour)
	if n, err := pa.reconciler.Stuck(context.Background(), 24*time.Hour, 10); err != nil || n != 1 {
		t.Errorf("stuck job: %d %v", n, err)
	}
	if m := pa.message(t, conv, id2); m.Status != store.StatusDelivered {
		t.Errorf("after the job: %+v", m)
	}
	// Long past its ttl the job leaves a message alone (Routee settled it or never will).
	id3, sent3 := pa.sentPaid(t, conv, `{"paid":true,"confirm_cost":true,"text":"Third"}`)
	pa.fake.SetStatus(sent3.TrackingID, "Delivered", "")
	pa.clk.Add(100 * time.Hour)
	if n, err := pa.reconciler.Stuck(context.Background(), 24*time.Hour, 10); err != nil || n != 0 {
		t.Errorf("stuck job long after the ttl: %d %v", n, err)
	}
	if m := pa.message(t, conv, id3); m.Status != store.StatusSent {
		t.Errorf("a message long past its ttl: %+v", m)
	}
}

// The pages: the composer's paid mode asks to confirm the price, then
// queues; the thread marks the paid message and the reply to it; the panel
// shows the flags and the last consent; "Check with Routee" answers.
func TestPaidPages(t *testing.T) {
	pa := startPaidApp(t)
	const from = "+375298600005"
	conv := pa.clientWritesViaRoutee(t, from, "Hello")
	pa.clk.Add(25 * time.Hour)
	c := "/c/" + strconv.FormatInt(conv, 10)
	_, page := pa.do(t, "GET", c, "", "")
	for _, want := range []string{`data-testid="composer-tab-paid"`, "Send a paid Viber message", `data-testid="paid-composer"`,
		`data-testid="paid-price">0.031 EUR`, `data-testid="reconcile"`, `data-testid="last-consent"`, `data-testid="consent-export"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	hx := []string{"HX-Request", "true"}
	form := "text=Your+order+is+ready&route=viber"
	status, body := pa.do(t, "POST", c+"/paid", "application/x-www-form-urlencoded", form, hx...)
	if status != http.StatusOK || !strings.Contains(string(body), `data-testid="paid-confirm-price">0.031 EUR`) ||
		!strings.Contains(string(body), "opens a new billed session") || !strings.Contains(string(body), "Your order is ready") {
		t.Fatalf("first submit: %d %s", status, body)
	}
	if n := len(pa.fake.Messages()); n != 0 {
		t.Fatalf("%d messages went out before the confirmation", n)
	}
	if !strings.Contains(string(body), `name="confirm_price" value="0.031"`) {
		t.Error("the confirmation does not carry the price it showed")
	}
	// A confirmation of another price (an admin changed it meanwhile) asks again.
	status, body = pa.do(t, "POST", c+"/paid", "application/x-www-form-urlencoded", form+"&confirm_cost=1&confirm_price=0.02", hx...)
	if status != http.StatusOK || !strings.Contains(string(body), `data-testid="paid-confirm-price">0.031 EUR`) {
		t.Fatalf("stale confirmation: %d %s", status, body)
	}
	if n := len(pa.fake.Messages()); n != 0 {
		t.Fatalf("a message went out on a stale price")
	}
	status, body = pa.do(t, "POST", c+"/paid", "application/x-www-form-urlencoded", form+"&confirm_cost=1&confirm_price=0.031", hx...)
	if status != http.StatusOK || !strings.Contains(string(body), `data-testid="paid-sent"`) {
		t.Fatalf("confirmed submit: %d %s", status, body)
	}
	waitFor(t, "the paid message at Routee", func() bool { return len(pa.fake.Messages()) == 1 })
	sent := pa.fake.Messages()[0]
	if err := pa.fake.ReportStatus(context.Background(), sent.TrackingID, "Failed", "Opted Out"); err != nil {
		t.Fatal(err)
	}
	_, page = pa.do(t, "GET", c, "", "")
	for _, want := range []string{`data-flag="opted_out"`, `data-testid="paid-blocked"`, `data-testid="flag-clear"`,
		`title="The client opted out" data-testid="row-flag"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("after the opt-out the page lacks %s", want)
		}
	}
	if err := pa.fake.ReportStatus(context.Background(), sent.TrackingID, "Failed", "Unsupported Equipment"); err != nil {
		t.Fatal(err)
	}
	_, page = pa.do(t, "GET", c, "", "")
	if !strings.Contains(string(page), `data-testid="paid-warning">The client has no suitable device`) {
		t.Error("the paid mode does not warn of the client's device")
	}
	if err := pa.fake.SendInbound(context.Background(), pa.hooks+"/inbound", fakeroutee.Inbound{From: from, Text: "Stop please",
		ReferenceTrackingID: sent.TrackingID, SentAt: pa.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	_, page = pa.do(t, "GET", c, "", "")
	for _, want := range []string{`data-testid="paid-badge">Paid Viber message`, `data-testid="reply-to"`, "Stop please"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the thread lacks %s", want)
		}
	}
	// The reply cleared the opt-out (writing is consent): no flag in the panel.
	if strings.Contains(string(page), `data-flag="opted_out"`) {
		t.Error("the opted-out flag stayed after the client wrote")
	}
	status, body = pa.do(t, "POST", c+"/reconcile", "application/x-www-form-urlencoded", "", hx...)
	if status != http.StatusOK || !strings.Contains(string(body), "Checked") {
		t.Errorf("Check with Routee: %d %s", status, body)
	}
}

// The sandbox phone plays "not a Viber user": a paid message with fallback
// fails on Viber and arrives by SMS, with its price; with Viber again, the
// client's reply to a paid message names it and opens the next session.
func TestSandboxPaidMessages(t *testing.T) {
	ta := startApp(t)
	const from = "+375298603938"
	conv := ta.clientWrites(t, from, "Hello")
	if status, body := ta.do(t, "PUT", "/api/v1/admin/paid-settings", "application/json",
		`{"currency":"EUR","viber_rates":{"*":0.03},"sms_rates":{"*":0.06},"sms_sender":"Shop"}`); status != http.StatusOK {
		t.Fatalf("settings: %d %s", status, body)
	}
	ta.clock.Add(25 * time.Hour)
	if status, _ := ta.do(t, "POST", "/sandbox/not-viber", "application/x-www-form-urlencoded", "phone=%2B375298603938&on=1"); status != http.StatusOK {
		t.Fatalf("play not a Viber user: %d", status)
	}
	_, page := ta.do(t, "GET", "/sandbox?phone=%2B375298603938", "", "")
	if !strings.Contains(string(page), `data-testid="sandbox-not-viber-on"`) {
		t.Fatal("the phone does not say it plays a number without Viber")
	}
	path := "/api/v1/conversations/" + strconv.FormatInt(conv, 10) + "/messages"
	status, body := ta.do(t, "POST", path, "application/json", `{"paid":true,"fallback":true,"confirm_cost":true,"text":"Refund sent"}`)
	if status != http.StatusCreated {
		t.Fatalf("paid send: %d %s", status, body)
	}
	var out struct {
		Message struct{ ID int64 } `json:"message"`
	}
	_ = json.Unmarshal(body, &out)
	id := out.Message.ID
	waitStatus(t, ta, id, store.StatusSent)
	// The phone shows it: Routee says Not Viber User, then the SMS step delivers it.
	if status, _ := ta.do(t, "POST", "/sandbox/messages/"+strconv.FormatInt(id, 10)+"/seen", "", ""); status != http.StatusNoContent {
		t.Fatalf("seen: %d", status)
	}
	waitStatus(t, ta, id, store.StatusDelivered)
	var m store.Message
	_ = ta.Store.Read(context.Background(), func(r *store.Reader) error {
		var err error
		m, err = r.Message(context.Background(), id)
		return err
	})
	if m.Paid == nil || m.Paid.FinalChannel != "sms" || m.Paid.Price == nil || *m.Paid.Price != 0.05 {
		t.Errorf("the paid message is %+v, want carried by SMS at the fake's price", m.Paid)
	}
	_, page = ta.do(t, "GET", "/c/"+strconv.FormatInt(conv, 10), "", "")
	if !strings.Contains(string(page), "Carried by SMS") || !strings.Contains(string(page), `data-flag="not_viber_user"`) {
		t.Error("the thread or panel does not show the SMS fallback and the flag")
	}
	_, page = ta.do(t, "GET", "/sandbox?phone=%2B375298603938", "", "")
	if !strings.Contains(string(page), `data-testid="sandbox-paid">SMS from the business`) {
		t.Error("the phone does not show the paid message as an SMS")
	}
	// Viber again; a plain paid Viber message, then the client answers it.
	ta.do(t, "POST", "/sandbox/not-viber", "application/x-www-form-urlencoded", "phone=%2B375298603938&on=0")
	ta.clientWrites(t, from, "I have Viber now") // clears the flag, opens session 2
	ta.clock.Add(25 * time.Hour)
	status, body = ta.do(t, "POST", path, "application/json", `{"paid":true,"confirm_cost":true,"text":"Order ready"}`)
	if status != http.StatusCreated {
		t.Fatalf("paid send: %d %s", status, body)
	}
	_ = json.Unmarshal(body, &out)
	waitStatus(t, ta, out.Message.ID, store.StatusSent)
	_, page = ta.do(t, "GET", "/sandbox?phone=%2B375298603938", "", "")
	if !strings.Contains(string(page), `data-testid="sandbox-paid">Business message`) {
		t.Error("the phone does not mark the paid Viber message")
	}
	ta.clientWrites(t, from, "Coming!")
	var reply store.Message
	_ = ta.Store.Read(context.Background(), func(r *store.Reader) error {
		msgs, err := r.Messages(context.Background(), conv, 10)
		reply = msgs[len(msgs)-1]
		return err
	})
	if reply.Body != "Coming!" || reply.ReplyTo != out.Message.ID || reply.SessionNumber != 3 {
		t.Errorf("the reply is %+v, want a reply to %d opening session 3", reply, out.Message.ID)
	}
}

// Admins keep the prices and templates on their page; with templates
// required, a paid message must be one of them, unchanged.
func TestPaidAdminAndTemplates(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	form := "currency=usd&viber_rates=BY+0.031%0A*+0.05&sms_rates=&sms_sender=&require_template=1"
	if status, body := ta.do(t, "POST", "/admin/paid", "application/x-www-form-urlencoded", form); status != http.StatusOK ||
		!strings.Contains(string(body), `data-testid="paid-settings-saved"`) || !strings.Contains(string(body), "BY 0.031") {
		t.Fatalf("save: %d %.400s", status, body)
	}
	if status, body := ta.do(t, "POST", "/admin/paid", "application/x-www-form-urlencoded", "currency=EUR&viber_rates=Belarus"); status != http.StatusUnprocessableEntity ||
		!strings.Contains(string(body), "Line 1") {
		t.Errorf("bad rates: %d", status)
	}
	status, body := ta.do(t, "POST", "/api/v1/admin/paid-templates", "application/json", `{"name":"Order ready","body":"Your order is ready."}`)
	if status != http.StatusCreated {
		t.Fatalf("template: %d %s", status, body)
	}
	var tmpl store.PaidTemplate
	_ = json.Unmarshal(body, &tmpl)
	path := "/api/v1/conversations/" + strconv.FormatInt(conv, 10) + "/messages"
	if status, body := ta.do(t, "POST", path, "application/json", `{"paid":true,"confirm_cost":true,"text":"Free text"}`); status != http.StatusUnprocessableEntity ||
		!strings.Contains(string(body), `"field":"template_id"`) {
		t.Errorf("free text with templates required: %d %s", status, body)
	}
	id := strconv.FormatInt(tmpl.ID, 10)
	if status, body := ta.do(t, "POST", path, "application/json", `{"paid":true,"confirm_cost":true,"text":"Your order is ready!!","template_id":`+id+`}`); status != http.StatusUnprocessableEntity {
		t.Errorf("a changed template: %d %s", status, body)
	}
	status, body = ta.do(t, "POST", path, "application/json", `{"paid":true,"template_id":`+id+`}`)
	if status != http.StatusConflict || !strings.Contains(string(body), `"currency":"USD"`) {
		t.Errorf("template, unconfirmed: %d %s", status, body)
	}
	if status, body := ta.do(t, "POST", path, "application/json", `{"paid":true,"confirm_cost":true,"template_id":`+id+`}`); status != http.StatusCreated ||
		!strings.Contains(string(body), "Your order is ready.") {
		t.Errorf("template: %d %s", status, body)
	}
	_, page := ta.do(t, "GET", "/c/"+strconv.FormatInt(conv, 10), "", "")
	if !strings.Contains(string(page), `data-testid="paid-template"`) || !strings.Contains(string(page), "Order ready") {
		t.Error("the paid mode does not offer the template")
	}
	if status, _ := ta.do(t, "DELETE", "/api/v1/admin/paid-templates/"+id, "", ""); status != http.StatusNoContent {
		t.Errorf("delete: %d", status)
	}
	if status, _ := ta.do(t, "POST", path, "application/json", `{"paid":true,"confirm_cost":true,"template_id":`+id+`}`); status != http.StatusUnprocessableEntity {
		t.Errorf("a deleted template: %d", status)
	}
	_, audit := ta.do(t, "GET", "/admin/audit.csv", "", "")
	for _, want := range []string{"paid_settings", "paid_template", "paid_send"} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("the audit log lacks %s", want)
		}
	}
}

// Routee takes a paid message and its answer is lost (a 500 after it was
// recorded): the lookups cannot tell by content, so it stays unconfirmed for
// an agent and is never sent (billed) twice on its own.
func TestPaidSendAnswerLostIsNeverResent(t *testing.T) {
	clk := clock.NewManual(time.Now().UTC())
	ra := startRouteeApp(t, channel.OutboxOptions{CheckAfter: 20 * time.Millisecond, Settle: time.Millisecond, MaxChecks: 2},
		func(c *config.Config, o *Options) { o.Now = clk.Now })
	if status, body := ra.do(t, "PUT", "/api/v1/admin/paid-settings", "application/json",
		`{"currency":"EUR","viber_rates":{"*":0.05}}`); status != http.StatusOK {
		t.Fatalf("settings: %d %s", status, body)
	}
	conv := ra.clientWritesViaRoutee(t, "+375298600009", "Hello")
	clk.Add(25 * time.Hour)
	ra.fake.AcceptThen(1, fakeroutee.ServerError, http.StatusInternalServerError)
	status, body := ra.do(t, "POST", "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages", "application/json",
		`{"paid":true,"confirm_cost":true,"text":"Order ready"}`)
	if status != http.StatusCreated {
		t.Fatalf("paid send: %d %s", status, body)
	}
	var out struct {
		Message struct{ ID int64 } `json:"message"`
	}
	_ = json.Unmarshal(body, &out)
	label := strconv.FormatInt(out.Message.ID, 10)
	// The outbox's lookups run on the manual clock: move it past each.
	waitFor(t, "the lookups to give up", func() bool {
		clk.Add(time.Minute)
		var m store.Message
		_ = ra.Store.Read(context.Background(), func(r *store.Reader) error {
			var err error
			m, err = r.Message(context.Background(), out.Message.ID)
			return err
		})
		return m.Status == store.StatusUnconfirmed && strings.Contains(m.StatusReason, "Could not confirm")
	})
	if n := ra.fake.Count(label); n != 1 {
		t.Errorf("Routee took the paid message %d times, want 1", n)
	}
}

package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"sessiondesk/channel"
	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/session"
	"sessiondesk/store"
)

// apiState is what these tests read of GET /api/v1/conversations/{id}.
type apiState struct {
	Session struct {
		Number        int       `json:"number"`
		StartedAt     time.Time `json:"started_at"`
		EndsAt        time.Time `json:"ends_at"`
		Used          int       `json:"used"`
		Cost          float64   `json:"cost"`
		Currency      string    `json:"currency"`
		CanSend       bool      `json:"can_send"`
		Code          string    `json:"code"`
		UnansweredEnd bool      `json:"unanswered_end"`
	} `json:"session"`
	Sessions []struct {
		Number        int       `json:"number"`
		StartedAt     time.Time `json:"started_at"`
		EndsAt        time.Time `json:"ends_at"`
		Ended         bool      `json:"ended"`
		Used          int       `json:"used"`
		Cost          float64   `json:"cost"`
		Currency      string    `json:"currency"`
		UnansweredEnd bool      `json:"unanswered_end"`
	} `json:"sessions"`
}

func (ta *testApp) conversationState(t *testing.T, conv int64) apiState {
	t.Helper()
	status, body := ta.do(t, "GET", "/api/v1/conversations/"+strconv.FormatInt(conv, 10), "", "")
	if status != http.StatusOK {
		t.Fatalf("GET conversation: %d %s", status, body)
	}
	var out apiState
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// apiSend posts a text through the API and returns the status and the new
// message's id (0 when refused) or the refusal's code.
func (ta *testApp) apiSend(t *testing.T, conv int64, text string, confirm bool) (int, int64, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"type": "text", "text": text, "confirm_new_session": confirm})
	status, body := ta.do(t, "POST", "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages", "application/json", string(b))
	if status == http.StatusCreated {
		var out struct {
			Message struct{ ID int64 } `json:"message"`
		}
		_ = json.Unmarshal(body, &out)
		return status, out.Message.ID, ""
	}
	return status, 0, decodeError(t, body).Code
}

func (ta *testApp) waitFailed(t *testing.T, id int64) {
	t.Helper()
	waitFor(t, "message "+strconv.FormatInt(id, 10)+" to fail", func() bool {
		return ta.message(t, id).Status == store.StatusFailed
	})
}

func setCap(t *testing.T, s *store.Store, max int) {
	t.Helper()
	set := s.Settings()
	set.Rules.MaxPerSession = max
	if err := s.SaveSettings(context.Background(), 0, set); err != nil {
		t.Fatal(err)
	}
}

// Case 18 through the API and the Routee channel: the confirmed message that
// begins session 2 is rejected by the provider at once → session 2 never
// happened; the next send asks for confirmation again and starts its own window.
func TestCase18_RejectedRolloverThroughTheAPI(t *testing.T) {
	ra := startRouteeApp(t, channel.OutboxOptions{})
	setCap(t, ra.Store, 2)
	phone := phoneOf(18)
	conv := ra.clientWritesViaRoutee(t, phone, "Hello")
	for _, text := range []string{"one", "two"} {
		status, id, code := ra.apiSend(t, conv, text, false)
		if status != http.StatusCreated {
			t.Fatalf("send %q: %d %s", text, status, code)
		}
		waitFor(t, text+" to go out", func() bool { return ra.fake.Count(strconv.FormatInt(id, 10)) == 1 })
	}
	if status, _, code := ra.apiSend(t, conv, "three", false); status != http.StatusConflict || code != "needs_confirmation" {
		t.Fatalf("third without confirmation: %d %s, want 409 needs_confirmation", status, code)
	}
	ra.fake.RejectTo(phone, "400005", "Not Viber User")
	status, third, code := ra.apiSend(t, conv, "three", true)
	if status != http.StatusCreated {
		t.Fatalf("confirmed third: %d %s", status, code)
	}
	ra.waitFailed(t, third)

	st := ra.conversationState(t, conv)
	if st.Session.Number != 1 || st.Session.Used != 2 || st.Session.Code != "needs_confirmation" {
		t.Fatalf("after the rejection: session %+v, want session 1 (2 used) asking for confirmation", st.Session)
	}
	ra.fake.RejectTo(phone, "", "")
	if status, _, code := ra.apiSend(t, conv, "again", false); status != http.StatusConflict || code != "needs_confirmation" {
		t.Fatalf("next send without confirmation: %d %s, want 409 needs_confirmation", status, code)
	}
	before := time.Now().Add(-time.Millisecond)
	if status, _, code := ra.apiSend(t, conv, "again", true); status != http.StatusCreated {
		t.Fatalf("next confirmed send: %d %s", status, code)
	}
	st = ra.conversationState(t, conv)
	if st.Session.Number != 2 || st.Session.Used != 1 || st.Session.StartedAt.Before(before) ||
		!st.Session.EndsAt.Equal(st.Session.StartedAt.Add(24*time.Hour)) {
		t.Fatalf("session 2 = %+v, want it to start with the new send (after %s)", st.Session, before)
	}
}

// Case 19 through the API: "send again" on one failed message, many times at
// once → one new message, every other try 409 already_retried; and the open
// page redraws the failed message without its button.
func TestCase19_SendAgainOnceThroughTheAPI(t *testing.T) {
	ra := startRouteeApp(t, channel.OutboxOptions{})
	phone := phoneOf(19)
	conv := ra.clientWritesViaRoutee(t, phone, "Hello")
	ra.fake.RejectTo(phone, "400005", "Not Viber User")
	_, id, _ := ra.apiSend(t, conv, "are you there?", false)
	ra.waitFailed(t, id)
	ra.fake.RejectTo(phone, "", "")

	convPath := "/c/" + strconv.FormatInt(conv, 10)
	status, page := ra.do(t, "GET", convPath, "", "")
	doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(page))
	bubble := "#msg-" + strconv.FormatInt(id, 10)
	if status != 200 || doc.Find(bubble+` [data-testid="message-retry"]`).Length() != 1 {
		t.Fatalf("the failed message shows no \"Send again\" (%d)", status)
	}
	cursor, _ := strconv.ParseInt(doc.Find("#live-cursor").AttrOr("data-last-event-id", ""), 10, 64)
	conn, _, err := ra.dial(t, "/ws?conversation="+strconv.FormatInt(conv, 10)+"&after="+strconv.FormatInt(cursor, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	const tries = 8
	retry := "/api/v1/conversations/" + strconv.FormatInt(conv, 10) + "/messages/" + strconv.FormatInt(id, 10) + "/retry"
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		codes    = map[string]int{}
	)
	start := make(chan struct{})
	for range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("POST", ra.base+retry, nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			var e apiError
			_ = json.NewDecoder(res.Body).Decode(&e)
			mu.Lock()
			statuses[res.StatusCode]++
			codes[e.Code]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if statuses[http.StatusCreated] != 1 || statuses[http.StatusConflict] != tries-1 || codes["already_retried"] != tries-1 {
		t.Fatalf("%d tries at once: statuses %v codes %v, want one 201 and %d × 409 already_retried", tries, statuses, codes, tries-1)
	}
	var texts int
	_ = ra.Store.Read(context.Background(), func(r *store.Reader) error {
		msgs, err := r.Messages(context.Background(), conv, 100)
		for _, m := range msgs {
			if m.Body == "are you there?" {
				texts++
			}
		}
		return err
	})
	if texts != 2 {
		t.Fatalf("%d messages with the text, want the failed one and one new", texts)
	}

	// The open page is told to redraw the failed message without the button.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_ = conn.SetReadDeadline(deadline)
		_, data, err := readLive(conn)
		if err != nil {
			t.Fatalf("no frame redrew the failed message without its button: %v", err)
		}
		d, _ := goquery.NewDocumentFromReader(bytes.NewReader(data))
		if b := d.Find(bubble + `[hx-swap-oob]`); b.Length() > 0 && b.Find(`[data-testid="message-retry"]`).Length() == 0 {
			break
		}
	}
	// And a fresh page shows no button either.
	_, page = ra.do(t, "GET", convPath, "", "")
	doc, _ = goquery.NewDocumentFromReader(bytes.NewReader(page))
	if doc.Find(bubble+` [data-testid="message-retry"]`).Length() != 0 {
		t.Fatal("a fresh page still offers \"Send again\" on the retried message")
	}
}

// Case 20 through the Routee webhook and the API: a client message stamped
// 2 min ahead of the server's clock, the agent replies at once → allowed; the
// session ends 24 h after the client's stamp.
func TestCase20_ClientClockAheadThroughTheAPI(t *testing.T) {
	ra := startRouteeApp(t, channel.OutboxOptions{})
	phone := phoneOf(20)
	stamp := time.Now().Add(2 * time.Minute).Truncate(time.Second)
	if err := ra.fake.SendInbound(context.Background(), ra.hooks+"/inbound",
		fakeroutee.Inbound{From: phone, Text: "Hello", SentAt: stamp}); err != nil {
		t.Fatal(err)
	}
	var conv int64
	_ = ra.Store.Read(context.Background(), func(r *store.Reader) error {
		c, err := r.ConversationByPhone(context.Background(), phone)
		conv = c.ID
		return err
	})
	st := ra.conversationState(t, conv)
	if !st.Session.StartedAt.Equal(stamp) || !st.Session.CanSend {
		t.Fatalf("session %+v, want it to start at the client's stamp %s and take a reply now", st.Session, stamp)
	}
	if status, _, code := ra.apiSend(t, conv, "Hi!", false); status != http.StatusCreated {
		t.Fatalf("reply at once: %d %s, want 201", status, code)
	}
	if st := ra.conversationState(t, conv); !st.Session.EndsAt.Equal(stamp.Add(24*time.Hour)) || st.Session.Used != 1 {
		t.Fatalf("session %+v, want it to end 24 h after the client's stamp", st.Session)
	}
}

// Case 21 through the API and the composer: a text of only spaces, line
// breaks and other invisible characters is refused like an empty text, and
// nothing is stored.
func TestCase21_BlankTextRefusedThroughTheAPI(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	before := ta.messageCount(t)
	for _, blank := range []string{" ", "  \n \n ", "\t\r\n", "\u00a0", "\u2003\u3000", "\u200b", " \ufeff\u200d "} {
		if status, _, code := ta.apiSend(t, conv, blank, false); status != http.StatusUnprocessableEntity || code != "invalid_type" {
			t.Errorf("API text %q: %d %s, want 422 invalid_type", blank, status, code)
		}
		form := url.Values{"text": {blank}}.Encode()
		status, body := ta.do(t, "POST", "/c/"+strconv.FormatInt(conv, 10)+"/messages", "application/x-www-form-urlencoded", form, "HX-Request", "true")
		doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(body))
		if errText := doc.Find(`[data-testid="composer-error"]`).Text(); status != 200 || errText == "" {
			t.Errorf("composer text %q: %d, error %q; want the refusal shown", blank, status, errText)
		}
	}
	if after := ta.messageCount(t); after != before {
		t.Fatalf("blank texts stored %d messages", after-before)
	}
	if st := ta.conversationState(t, conv); st.Session.Used != 0 {
		t.Fatalf("blank texts counted: %+v", st.Session)
	}
}

// Case 9 through the API and the page: a session in which the client wrote
// and nobody answered before it ended is reported unanswered in the session
// history, with its number, times, use and cost.
func TestCase09_UnansweredSessionReportedThroughTheAPI(t *testing.T) {
	ta := startApp(t)
	phone := "+375298603938"
	conv := ta.clientWrites(t, phone, "Hello") // session 1, 10:00: nobody answers
	ta.clock.Set(t0.Add(24 * time.Hour))
	st := ta.conversationState(t, conv)
	if !st.Session.UnansweredEnd || len(st.Sessions) != 1 || !st.Sessions[0].UnansweredEnd || !st.Sessions[0].Ended {
		t.Fatalf("at the end of session 1: %+v / %+v, want it reported unanswered", st.Session, st.Sessions)
	}
	// While it is still the latest session, the panel says so too.
	if _, ended := ta.do(t, "GET", "/c/"+strconv.FormatInt(conv, 10), "", ""); !bytes.Contains(ended, []byte(`data-testid="session-unanswered"`)) {
		t.Errorf("the panel of the ended session 1 does not say it ended unanswered")
	}
	ta.clock.Add(time.Hour)
	ta.clientWrites(t, phone, "Anyone?") // session 2, answered
	if status, _, code := ta.apiSend(t, conv, "Sorry, here", false); status != http.StatusCreated {
		t.Fatalf("reply: %d %s", status, code)
	}
	st = ta.conversationState(t, conv)
	if len(st.Sessions) != 2 || st.Sessions[0].Number != 2 || st.Sessions[0].UnansweredEnd || st.Sessions[0].Ended ||
		st.Sessions[1].Number != 1 || !st.Sessions[1].UnansweredEnd || st.Sessions[1].Used != 0 || st.Sessions[1].Cost != 0 ||
		!st.Sessions[1].StartedAt.Equal(t0) || !st.Sessions[1].EndsAt.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("history %+v, want session 2 (answered, open) then session 1 (unanswered, 0 used, 0 cost)", st.Sessions)
	}
	if st.Session.UnansweredEnd {
		t.Fatal("the open, answered session 2 is reported unanswered")
	}
	// The conversation page lists session 1 below the current one, marked.
	_, page := ta.do(t, "GET", "/c/"+strconv.FormatInt(conv, 10), "", "")
	doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(page))
	past := doc.Find(`[data-testid="session-history"] [data-testid="past-session"]`)
	if past.Length() != 1 || past.AttrOr("data-session-number", "") != "1" ||
		past.Find(`[data-testid="past-session-unanswered"]`).Length() != 1 ||
		!strings.Contains(past.Find(`[data-testid="past-session-used"]`).Text(), "0 messages") {
		t.Fatalf("panel history: %d entries, %q", past.Length(), past.Text())
	}
	// Session 2 ends with the agent's reply last: not unanswered.
	ta.clock.Set(t0.Add(49 * time.Hour))
	if st := ta.conversationState(t, conv); st.Sessions[0].UnansweredEnd || !st.Sessions[0].Ended {
		t.Fatalf("answered session 2 after its end: %+v", st.Sessions[0])
	}
}

// A session's cost stays what its rates were when it was first billed; a
// session billed after a rate change uses the new rates (through the API).
func TestRatesFrozenPerSessionThroughTheAPI(t *testing.T) {
	ta := startApp(t)
	set := ta.Store.Settings()
	set.Rates = session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"}
	if err := ta.Store.SaveSettings(context.Background(), 0, set); err != nil {
		t.Fatal(err)
	}
	phone := "+375298603938"
	conv := ta.clientWrites(t, phone, "Hello")
	if status, _, code := ta.apiSend(t, conv, "hi", false); status != http.StatusCreated {
		t.Fatalf("send: %d %s", status, code)
	}
	set.Rates = session.Rates{Text: 0.07, Media: 0.2, Currency: "USD"}
	if err := ta.Store.SaveSettings(context.Background(), 0, set); err != nil {
		t.Fatal(err)
	}
	if st := ta.conversationState(t, conv); st.Session.Cost != 0.05 || st.Session.Currency != "EUR" {
		t.Fatalf("after the rate change: cost %v %s, want 0.05 EUR (frozen)", st.Session.Cost, st.Session.Currency)
	}
	ta.clock.Set(t0.Add(25 * time.Hour))
	ta.clientWrites(t, phone, "again")
	if status, _, code := ta.apiSend(t, conv, "hi again", false); status != http.StatusCreated {
		t.Fatalf("send: %d %s", status, code)
	}
	if st := ta.conversationState(t, conv); st.Session.Cost != 0.07 || st.Session.Currency != "USD" {
		t.Fatalf("session 2: cost %v %s, want 0.07 USD", st.Session.Cost, st.Session.Currency)
	}
}

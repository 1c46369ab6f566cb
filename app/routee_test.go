package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"sessiondesk/channel"
	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/config"
	"sessiondesk/store"
)

const testWebhookSecret = "0123456789abcdef-test"

// routeeApp is a whole Sessiondesk on the Routee channel, talking over HTTP to
// a fake Routee that checks every request against the documented shape.
type routeeApp struct {
	*testApp
	fake  *fakeroutee.Server
	hooks string // the webhook base URL, secret included
}

// startRouteeApp starts the app on a fake Routee; setup may change its
// configuration and options first (a test's media servers, for one, must be
// named in Options.MediaAllow, or the downloader refuses plain http on loopback).
func startRouteeApp(t *testing.T, outbox channel.OutboxOptions, setup ...func(*config.Config, *Options)) *routeeApp {
	t.Helper()
	fake := fakeroutee.New(fakeroutee.Options{AppID: "app-id", AppSecret: "app-secret"})
	provider := httptest.NewServer(fake.Handler())
	t.Cleanup(provider.Close)
	t.Cleanup(func() {
		if v := fake.Violations(); len(v) > 0 {
			t.Errorf("requests that break Routee's documented shape: %v", v)
		}
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	env := map[string]string{
		"ROUTEE_APP_ID": "app-id", "ROUTEE_APP_SECRET": "app-secret", "ROUTEE_SENDER_ID": "sender-1",
		"ROUTEE_API_URL": provider.URL, "ROUTEE_AUTH_URL": provider.URL,
		"SESSIONDESK_PUBLIC_URL": public, "SESSIONDESK_WEBHOOK_SECRET": testWebhookSecret,
	}
	cfg, err := config.Parse([]string{"--addr", ln.Addr().String(), "--data", t.TempDir(), "--no-demo"},
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Listener: ln, Outbox: outbox}
	for _, f := range setup {
		f(&cfg, &opts)
	}
	// The real clock: the fake Routee's tokens and the outbox's retries run on it.
	ta := runApp(t, cfg, nil, opts)
	return &routeeApp{testApp: ta, fake: fake, hooks: public + "/webhooks/routee/" + testWebhookSecret}
}

// clientWritesViaRoutee has the fake post a client's message to the inbound webhook.
func (ra *routeeApp) clientWritesViaRoutee(t *testing.T, from, text string) int64 {
	t.Helper()
	if err := ra.fake.SendInbound(context.Background(), ra.hooks+"/inbound", fakeroutee.Inbound{From: from, Text: text}); err != nil {
		t.Fatalf("inbound: %v", err)
	}
	var conv int64
	_ = ra.Store.Read(context.Background(), func(r *store.Reader) error {
		c, err := r.ConversationByPhone(context.Background(), from)
		conv = c.ID
		return err
	})
	return conv
}

func (ra *routeeApp) agentSends(t *testing.T, conv int64, text string) int64 {
	t.Helper()
	status, body := ra.do(t, "POST", "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages", "application/json",
		`{"type":"text","text":"`+text+`"}`)
	if status != http.StatusCreated {
		t.Errorf("send %q: %d %s", text, status, body)
		return 0
	}
	var out struct {
		Message struct{ ID int64 } `json:"message"`
	}
	_ = json.Unmarshal(body, &out)
	return out.Message.ID
}

func phoneOf(i int) string { return fmt.Sprintf("+3752960%05d", 10000+i) }

// The outage test: Routee is down for 30 s while agents send 200
// messages across 20 clients; once it is back, every message is delivered
// once, in order per client, and the inbox shows them sent.
func TestRouteeOutageDeliversEveryMessageOnceInOrder(t *testing.T) {
	down := 30 * time.Second
	if testing.Short() {
		down = 3 * time.Second
	}
	ra := startRouteeApp(t, channel.OutboxOptions{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	const clients, perClient = 20, 10
	convs := make([]int64, clients)
	for i := range clients {
		convs[i] = ra.clientWritesViaRoutee(t, phoneOf(i), "Hello")
	}

	ra.fake.SetDown(true)
	wentDown := time.Now()
	accepted := make([][]int64, clients) // our ids per client, in acceptance order
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for n := range perClient {
				if n == perClient/2 { // five unanswered is the limit: the client answers
					ra.clientWritesViaRoutee(t, phoneOf(i), "ok, go on")
				}
				if id := ra.agentSends(t, convs[i], fmt.Sprintf("reply %d to client %d", n, i)); id != 0 {
					accepted[i] = append(accepted[i], id)
				}
			}
		})
	}
	wg.Wait()
	if q, _ := ra.Store.Queued(context.Background(), 1000); len(q) != clients*perClient {
		t.Fatalf("%d messages queued during the outage, want %d", len(q), clients*perClient)
	}
	time.Sleep(time.Until(wentDown.Add(down)))
	ra.fake.SetDown(false)
	back := time.Now()

	deadline := time.Now().Add(30 * time.Second)
	for {
		q, err := ra.Store.Queued(context.Background(), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(q) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still queued 30 s after Routee came back", len(q))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("all %d messages out %s after Routee came back", clients*perClient, time.Since(back).Round(time.Millisecond))

	// At the provider: each message once, each client's in acceptance order.
	got := make(map[string][]int64)
	for _, m := range ra.fake.Messages() {
		id, _ := strconv.ParseInt(m.Label, 10, 64)
		got[m.To] = append(got[m.To], id)
		if n := ra.fake.Count(m.Label); n != 1 {
			t.Errorf("message %s reached Routee %d times", m.Label, n)
		}
	}
	for i := range clients {
		if !slices.Equal(got[phoneOf(i)], accepted[i]) {
			t.Errorf("client %d: Routee got %v, want %v in that order", i, got[phoneOf(i)], accepted[i])
		}
	}
	// In the inbox: all sent, with Routee's tracking ids.
	_ = ra.Store.Read(context.Background(), func(r *store.Reader) error {
		for _, ids := range accepted {
			for _, id := range ids {
				m, err := r.Message(context.Background(), id)
				if err != nil || m.Status != store.StatusSent || m.ProviderID == "" {
					t.Errorf("message %d: %s %q %v, want sent with a tracking id", id, m.Status, m.ProviderID, err)
				}
			}
		}
		return nil
	})
}

func (ra *routeeApp) post(t *testing.T, path string, body []byte) int {
	t.Helper()
	res, err := http.Post(ra.hooks+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// Each inbound message posted three times is stored once.
func TestRouteeInboundRetriesStoredOnce(t *testing.T) {
	ra := startRouteeApp(t, channel.OutboxOptions{})
	at := time.Now().UTC().Truncate(time.Millisecond)
	for i := range 3 {
		payload := ra.fake.InboundPayload(fakeroutee.Inbound{From: phoneOf(i), To: "sender-1", Text: "Hello " + strconv.Itoa(i), SentAt: at})
		for range 3 {
			if status := ra.post(t, "/inbound", payload); status != 200 {
				t.Fatalf("inbound: %d", status)
			}
		}
	}
	if n := ra.messageCount(t); n != 3 {
		t.Errorf("stored %d messages from 3 deliveries posted 3 times each, want 3", n)
	}
	// "fileName" is accepted as well as "filename", and a media message is kept.
	status := ra.post(t, "/inbound", []byte(`{"from":"`+phoneOf(7)+`","message":"the invoice","media":"https://media.example/x","fileName":"invoice.pdf","sentDate":"2026-11-24T10:00:00.000Z"}`))
	if status != 200 {
		t.Fatalf("inbound with fileName: %d", status)
	}
	for _, tc := range []struct {
		path, body string
		status     int
	}{
		{"/inbound", `not json`, 400},
		{"/inbound", `{"message":"no sender"}`, 400},
		{"/inbound", `{"from":"hello","message":"bad number"}`, 400},
	} {
		if got := ra.post(t, tc.path, []byte(tc.body)); got != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.path, tc.body, got, tc.status)
		}
	}
	if n := ra.messageCount(t); n != 4 {
		t.Errorf("after bad posts: %d messages, want 4", n)
	}
	// A wrong secret is a 404, like any unknown path.
	res, err := http.Post(ra.base+"/webhooks/routee/wrong-secret-0000000/inbound", "application/json",
		bytes.NewReader(ra.fake.InboundPayload(fakeroutee.Inbound{From: phoneOf(9), Text: "x"})))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 || ra.messageCount(t) != 4 {
		t.Errorf("wrong secret: %d, messages %d", res.StatusCode, ra.messageCount(t))
	}
}

// 1,000 status callbacks in shuffled order leave every message in its furthest state.
func TestRouteeStatusCallbacksShuffled(t *testing.T) {
	ra := startRouteeApp(t, channel.OutboxOptions{})
	var ids []int64
	for i := range 20 {
		conv := ra.clientWritesViaRoutee(t, phoneOf(i), "Hello")
		for n := range 5 {
			ids = append(ids, ra.agentSends(t, conv, fmt.Sprintf("reply %d", n)))
		}
	}
	waitFor(t, "all 100 sent", func() bool {
		q, _ := ra.Store.Queued(context.Background(), 1000)
		return len(q) == 0
	})
	tracking := make(map[int64]string)
	for _, m := range ra.fake.Messages() {
		id, _ := strconv.ParseInt(m.Label, 10, 64)
		tracking[id] = m.TrackingID
	}

	// Every message gets ten reports: its real path plus duplicates and stale ones.
	want := make(map[int64]string)
	var payloads [][]byte
	for i, id := range ids {
		path := []string{"Queued", "Sent", "Delivered", "Seen", "Delivered", "Sent", "Seen", "Queued", "Delivered", "Sent"}
		want[id] = store.StatusSeen
		if i%4 == 0 { // never reached the phone
			path = []string{"Queued", "Sent", "Undelivered", "Sent", "Queued", "Undelivered", "Sent", "Queued", "Sent", "Undelivered"}
			want[id] = store.StatusUndelivered
		}
		for _, st := range path {
			reason := ""
			if st == "Undelivered" {
				reason = "Not Viber User"
			}
			p, err := ra.fake.StatusPayload(tracking[id], st, reason)
			if err != nil {
				t.Fatal(err)
			}
			payloads = append(payloads, p)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(payloads), func(i, j int) { payloads[i], payloads[j] = payloads[j], payloads[i] })
	if len(payloads) != 1000 {
		t.Fatalf("%d callbacks, want 1000", len(payloads))
	}
	work := make(chan []byte)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for p := range work {
				if status := ra.post(t, "/status", p); status != 200 {
					t.Errorf("status callback: %d", status)
				}
			}
		})
	}
	for _, p := range payloads {
		work <- p
	}
	close(work)
	wg.Wait()

	_ = ra.Store.Read(context.Background(), func(r *store.Reader) error {
		for _, id := range ids {
			m, _ := r.Message(context.Background(), id)
			if m.Status != want[id] {
				t.Errorf("message %d: %s, want %s", id, m.Status, want[id])
			}
			if want[id] == store.StatusUndelivered && m.StatusReason != "Not Viber User" {
				t.Errorf("message %d: reason %q", id, m.StatusReason)
			}
			// Failures reported later still count (S6).
			if !m.Counted {
				t.Errorf("message %d no longer counts", id)
			}
		}
		return nil
	})
	// A report for a tracking id nobody knows: 200, nothing created.
	before := ra.messageCount(t)
	unknown := []byte(`{"trackingId":"no-such-id","status":{"name":"Delivered"},"label":"","to":"+375296000000"}`)
	if status := ra.post(t, "/status", unknown); status != 200 || ra.messageCount(t) != before {
		t.Errorf("unknown tracking id: %d, messages %d → %d", status, before, ra.messageCount(t))
	}
}

// A synchronous rejection (Not Viber User) fails the message with Routee's
// reason and releases its slot (S6, case 14).
func TestRouteeRejectionReleasesSlot(t *testing.T) {
	ra := startRouteeApp(t, channel.OutboxOptions{})
	conv := ra.clientWritesViaRoutee(t, phoneOf(1), "Hello")
	ra.fake.RejectTo(phoneOf(1), "400005", "Not Viber User")
	id := ra.agentSends(t, conv, "are you there?")
	waitFor(t, "the rejection", func() bool {
		var m store.Message
		_ = ra.Store.Read(context.Background(), func(r *store.Reader) error {
			m, _ = r.Message(context.Background(), id)
			return nil
		})
		return m.Status == store.StatusFailed
	})
	_, body := ra.do(t, "GET", "/api/v1/conversations/"+strconv.FormatInt(conv, 10), "", "")
	var got struct {
		Session struct {
			Used       int `json:"used"`
			Unanswered int `json:"unanswered"`
		} `json:"session"`
	}
	_ = json.Unmarshal(body, &got)
	if got.Session.Used != 0 || got.Session.Unanswered != 0 {
		t.Errorf("after rejection: %+v, want the slot released", got.Session)
	}
	_, body = ra.do(t, "GET", "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages", "", "")
	if !bytes.Contains(body, []byte("Not Viber User")) {
		t.Errorf("the reason is not shown: %s", body)
	}

	// Once the number works, the agent sends it again: a new message, counted anew.
	ra.fake.RejectTo(phoneOf(1), "", "")
	retryPath := "/api/v1/conversations/" + strconv.FormatInt(conv, 10) + "/messages/" + strconv.FormatInt(id, 10) + "/retry"
	status, body := ra.do(t, "POST", retryPath, "", "")
	if status != http.StatusCreated {
		t.Fatalf("retry: %d %s", status, body)
	}
	var retried struct {
		Message struct {
			ID   int64  `json:"id"`
			Text string `json:"text"`
		} `json:"message"`
	}
	_ = json.Unmarshal(body, &retried)
	if retried.Message.ID == id || retried.Message.Text != "are you there?" {
		t.Errorf("retry made %+v, want a new message with the same text", retried.Message)
	}
	waitFor(t, "the retried message to go out", func() bool {
		return ra.fake.Count(strconv.FormatInt(retried.Message.ID, 10)) == 1
	})
	// A message that did not fail cannot be retried.
	again := "/api/v1/conversations/" + strconv.FormatInt(conv, 10) + "/messages/" + strconv.FormatInt(retried.Message.ID, 10) + "/retry"
	if status, _ := ra.do(t, "POST", again, "", ""); status != http.StatusUnprocessableEntity {
		t.Errorf("retry of a sent message: %d, want 422", status)
	}
	// Nor one of another conversation.
	other := ra.clientWritesViaRoutee(t, phoneOf(2), "Hi")
	wrong := "/api/v1/conversations/" + strconv.FormatInt(other, 10) + "/messages/" + strconv.FormatInt(id, 10) + "/retry"
	if status, _ := ra.do(t, "POST", wrong, "", ""); status != http.StatusNotFound {
		t.Errorf("retry through another conversation: %d, want 404", status)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// S8: every business message carries the ttl; one Routee reports expired is
// shown as such, and still counts (S6: the provider opened the billed session).
func TestS8_TTLGoesOutAndExpiredIsShown(t *testing.T) {
	ra := startRouteeApp(t, channel.OutboxOptions{})
	conv := ra.clientWritesViaRoutee(t, phoneOf(5), "Hello")
	id := ra.agentSends(t, conv, "Are you there?")
	waitFor(t, "the send", func() bool { return len(ra.fake.Messages()) == 1 })
	sent := ra.fake.Messages()[0]
	if sent.TTL != 86400 {
		t.Errorf("ttl sent to Routee = %d, want 86400 (the default)", sent.TTL)
	}
	payload, err := ra.fake.StatusPayload(sent.TrackingID, "Expired", "TTL Expired")
	if err != nil {
		t.Fatal(err)
	}
	if status := ra.post(t, "/status", payload); status != 200 {
		t.Fatalf("status callback: %d", status)
	}
	_, body := ra.do(t, "GET", "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages", "", "")
	var msgs struct {
		Messages []struct {
			ID           int64  `json:"id"`
			Status       string `json:"status"`
			StatusReason string `json:"status_reason"`
		} `json:"messages"`
	}
	_ = json.Unmarshal(body, &msgs)
	last := msgs.Messages[len(msgs.Messages)-1]
	if last.ID != id || last.Status != store.StatusExpired || last.StatusReason != "TTL Expired" {
		t.Errorf("expired message shows as %+v", last)
	}
	_, body = ra.do(t, "GET", "/api/v1/conversations/"+strconv.FormatInt(conv, 10), "", "")
	var cv struct {
		Session struct {
			Used int `json:"used"`
		} `json:"session"`
	}
	_ = json.Unmarshal(body, &cv)
	if cv.Session.Used != 1 {
		t.Errorf("after expiry the session counts %d, want 1 (S6)", cv.Session.Used)
	}
	// The thread says so too.
	_, page := ra.do(t, "GET", "/c/"+strconv.FormatInt(conv, 10), "", "")
	if !bytes.Contains(page, []byte(`data-status="expired"`)) || !bytes.Contains(page, []byte("TTL Expired")) {
		t.Error("the thread does not show the message as expired with its reason")
	}
}

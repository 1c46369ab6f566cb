package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"sessiondesk/channel"
	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/config"
	"sessiondesk/store"
)

const testMetricsToken = "metrics-token-0123456789"

// scrape GETs /metrics with client (the default one when nil) and returns the
// status and body.
func scrape(t *testing.T, client *http.Client, base string, header ...string) (int, string) {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// families scrapes /metrics from loopback and parses the text format.
func families(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	status, body := scrape(t, nil, base)
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v\n%s", err, body)
	}
	return fams
}

// metricValue is the value of the series of name with exactly labels (a
// counter's, a gauge's, or a histogram's count); -1 when there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// pricedStatus is the fake Routee's status callback for trackingID with a
// price, as Routee sends it (the fake itself reports 0).
func pricedStatus(t *testing.T, fake *fakeroutee.Server, trackingID, status string, price float64) []byte {
	t.Helper()
	raw, err := fake.StatusPayload(trackingID, status, "")
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	p["price"] = price
	b, _ := json.Marshal(p)
	return b
}

// message is a message as stored.
func (ta *testApp) message(t *testing.T, id int64) store.Message {
	t.Helper()
	var m store.Message
	if err := ta.Store.Read(context.Background(), func(r *store.Reader) error {
		var err error
		m, err = r.Message(context.Background(), id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

// The metrics test: traffic goes through the real app (webhooks in
// the fake Routee's wire format, sends through the outbox to the fake over
// HTTP), /metrics is scraped and parsed, and every figure is the traffic's.
func TestMetricsCountTheTrafficSent(t *testing.T) {
	ra := startRouteeApp(t, channel.OutboxOptions{Backoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	ctx := context.Background()
	phoneA, phoneB, phoneC := phoneOf(1), phoneOf(2), phoneOf(3)

	// In: three clients open a session each; A's first message is delivered twice.
	first := ra.fake.InboundPayload(fakeroutee.Inbound{From: phoneA, Text: "Hello", SentAt: time.Now().Add(-time.Second)})
	for range 2 {
		if status := ra.post(t, "/inbound", first); status != http.StatusOK {
			t.Fatalf("inbound: %d", status)
		}
	}
	var convA int64
	if err := ra.Store.Read(ctx, func(r *store.Reader) error {
		c, err := r.ConversationByPhone(ctx, phoneA)
		convA = c.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	convB := ra.clientWritesViaRoutee(t, phoneB, "Hi")
	convC := ra.clientWritesViaRoutee(t, phoneC, "Hey")

	// Out: two to A and one to B go out; C's number is refused by Routee.
	ra.fake.RejectTo(phoneC, "400005", "Not Viber User")
	a1, a2 := ra.agentSends(t, convA, "one"), ra.agentSends(t, convA, "two")
	b1 := ra.agentSends(t, convB, "three")
	c1 := ra.agentSends(t, convC, "four")
	for _, id := range []int64{a1, a2, b1} {
		waitFor(t, "the send", func() bool { return ra.message(t, id).Status == store.StatusSent })
	}
	waitFor(t, "the refusal", func() bool { return ra.message(t, c1).Status == store.StatusFailed })

	// Delivery reports with prices; B's delivery is reported twice.
	report := func(id int64, status string, price float64) {
		t.Helper()
		if code := ra.post(t, "/status", pricedStatus(t, ra.fake, ra.message(t, id).ProviderID, status, price)); code != http.StatusOK {
			t.Fatalf("status %s: %d", status, code)
		}
	}
	report(a1, "Delivered", 0.0125)
	report(a2, "Seen", 0.0125) // its Delivered was lost
	report(b1, "Delivered", 0.03)
	report(b1, "Delivered", 0.03) // Routee retries a callback: nothing moves
	if err := ra.fake.ReportStatus(ctx, ra.message(t, b1).ProviderID, "Seen", ""); err != nil {
		t.Fatal(err)
	}
	// Webhook errors: a wrong secret, a body that is not JSON, an unknown message.
	wrong := strings.Replace(ra.hooks, testWebhookSecret, "not-the-secret-0123456", 1)
	if res, err := http.Post(wrong+"/status", "application/json", strings.NewReader(`{}`)); err != nil {
		t.Fatal(err)
	} else if res.Body.Close(); res.StatusCode != http.StatusNotFound {
		t.Errorf("wrong secret: %d, want 404", res.StatusCode)
	}
	if status := ra.post(t, "/inbound", []byte("<xml/>")); status != http.StatusBadRequest {
		t.Errorf("not JSON: %d, want 400", status)
	}
	if status := ra.post(t, "/status", []byte(`{"trackingId":"no-such-id","status":{"name":"Delivered"}}`)); status != http.StatusOK {
		t.Errorf("unknown message: %d, want 200", status)
	}

	fams := families(t, ra.base)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sessiondesk_messages_in_total", []string{"kind", "text"}, 3},
		{"sessiondesk_messages_out_total", []string{"status", "sent"}, 3},
		{"sessiondesk_messages_out_total", []string{"status", "failed"}, 1},
		{"sessiondesk_messages_out_total", []string{"status", "delivered"}, 2},
		{"sessiondesk_messages_out_total", []string{"status", "seen"}, 2},
		{"sessiondesk_provider_send_duration_seconds", []string{"outcome", "ok"}, 3},
		{"sessiondesk_provider_send_duration_seconds", []string{"outcome", "rejected"}, 1},
		{"sessiondesk_messages_out_total", []string{"status", "queued"}, 4},
		{"sessiondesk_sessions_opened_total", []string{"opened_by", "client"}, 3},
		{"sessiondesk_sessions_opened_total", []string{"opened_by", "rollover"}, 0},
		// C's too: billed when the send was accepted, before Routee refused it.
		{"sessiondesk_sessions_billed_total", nil, 3},
		{"sessiondesk_outbox_messages", []string{"status", "queued"}, 0},
		{"sessiondesk_outbox_messages", []string{"status", "unconfirmed"}, 0},
		{"sessiondesk_outbox_oldest_queued_age_seconds", nil, 0},
		{"sessiondesk_webhook_errors_total", []string{"webhook", "status", "kind", "secret"}, 1},
		{"sessiondesk_webhook_errors_total", []string{"webhook", "inbound", "kind", "payload"}, 1},
		{"sessiondesk_webhook_errors_total", []string{"webhook", "status", "kind", "unknown_message"}, 1},
		{"sessiondesk_http_request_duration_seconds",
			[]string{"method", "POST", "route", "/api/v1/conversations/:id/messages", "code", "201"}, 4},
		{"sessiondesk_http_request_duration_seconds",
			[]string{"method", "POST", "route", "/webhooks/routee/:secret/inbound", "code", "200"}, 4},
		{"sessiondesk_live_pages", nil, 0},
	} {
		if got := metricValue(fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The index follows on its own: at most the three client messages and
	// four sends behind, never negative.
	if f := fams["sessiondesk_search_index_behind_messages"]; f == nil {
		t.Error("no sessiondesk_search_index_behind_messages")
	} else if got := metricValue(fams, "sessiondesk_search_index_behind_messages"); got < 0 || got > 7 {
		t.Errorf("search index behind by %v messages, want 0 to 7", got)
	}
	// Every write above committed, some perhaps sharing a commit: at least
	// one commit, never more than the writes.
	commits, writes := metricValue(fams, "sessiondesk_store_commits_total"), metricValue(fams, "sessiondesk_store_writes_total")
	if commits < 1 || writes < commits {
		t.Errorf("store commits %v and writes %v: want at least 1 commit and no fewer writes", commits, writes)
	}
	// The writes above were checkpointed in the background, without a failure.
	waitFor(t, "a background checkpoint", func() bool { return ra.Store.Checkpoints().Passes > 0 })
	fams = families(t, ra.base)
	if got := metricValue(fams, "sessiondesk_wal_checkpoints_total", "result", "done"); got < 1 {
		t.Errorf("wal checkpoints done: %v, want at least 1", got)
	}
	if got := metricValue(fams, "sessiondesk_wal_checkpoints_total", "result", "failed"); got != 0 {
		t.Errorf("wal checkpoints failed: %v, want 0", got)
	}
	// How much of the WAL a pass could copy depends on the live pages'
	// reads at that moment (store's TestCheckpointsInTheBackground checks
	// the copy itself): here, that both are there.
	for _, state := range []string{"copied", "not_copied"} {
		if got := metricValue(fams, "sessiondesk_wal_pages", "state", state); got < 0 {
			t.Errorf("wal pages %s: %v (missing or negative)", state, got)
		}
	}
	if got, want := metricValue(fams, "sessiondesk_cost_reported_total", "currency", "EUR"), 0.0125+0.0125+0.03; math.Abs(got-want) > 1e-9 {
		t.Errorf("cost reported %v, want %v", got, want)
	}
	// Route labels are templates: no id and no secret ever becomes a label.
	rawPath := regexp.MustCompile(`/(conversations|c)/[0-9]`)
	for _, m := range fams["sessiondesk_http_request_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && (rawPath.MatchString(l.GetValue()) || strings.Contains(l.GetValue(), testWebhookSecret)) {
				t.Errorf("route label %q is a URL, not its route", l.GetValue())
			}
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing: the Go and process collectors are not registered", name)
		}
	}

	// A live page is counted while it is open.
	conn, _, err := ra.dial(t, "/ws")
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	waitFor(t, "the live page", func() bool {
		return metricValue(families(t, ra.base), "sessiondesk_live_pages") == 1
	})
	conn.Close()

	// Routee goes down: what is accepted waits in the outbox, and the failed
	// tries are timed as errors.
	ra.fake.SetDown(true)
	ra.clientWritesViaRoutee(t, phoneA, "still there?")
	d1, d2 := ra.agentSends(t, convA, "five"), ra.agentSends(t, convA, "six")
	waitFor(t, "a failed try", func() bool { return ra.message(t, d1).Attempts > 0 })
	accepted := ra.message(t, d1).CreatedAt
	fams = families(t, ra.base)
	scraped := time.Now()
	if got := metricValue(fams, "sessiondesk_outbox_messages", "status", "queued"); got != 2 {
		t.Errorf("queued during the outage: %v, want 2 (%d and %d)", got, d1, d2)
	}
	age := metricValue(fams, "sessiondesk_outbox_oldest_queued_age_seconds")
	if maxAge := scraped.Sub(accepted).Seconds(); age <= 0 || age > maxAge {
		t.Errorf("oldest queued age %v s, want in (0, %v] (the first was accepted at %s)", age, maxAge, accepted)
	}
	if got := metricValue(fams, "sessiondesk_provider_send_duration_seconds", "outcome", "error"); got < 1 {
		t.Errorf("failed tries timed: %v, want at least 1", got)
	}
	if got := metricValue(fams, "sessiondesk_messages_in_total", "kind", "text"); got != 4 {
		t.Errorf("messages in after a fourth: %v", got)
	}
	ra.fake.SetDown(false)
}

// /metrics answers without the login only to the allowed peer addresses or
// with the right token; X-Forwarded-For grants nothing.
func TestMetricsAccess(t *testing.T) {
	ta := startApp(t, func(c *config.Config) {
		c.MetricsAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.MetricsToken = testMetricsToken
	})
	// Another loopback address is another peer: 127.0.0.2 is not allowed.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")},
	}).DialContext}}
	defer other.CloseIdleConnections()
	for _, c := range []struct {
		what   string
		client *http.Client
		header []string
		want   int
	}{
		{"allowed address", nil, nil, http.StatusOK},
		{"other address", other, nil, http.StatusForbidden},
		{"other address claiming an allowed one", other, []string{"X-Forwarded-For", "127.0.0.1"}, http.StatusForbidden},
		{"other address claiming one in X-Real-IP", other, []string{"X-Real-IP", "127.0.0.1"}, http.StatusForbidden},
		{"allowed address through a proxy", nil, []string{"X-Forwarded-For", "203.0.113.9"}, http.StatusForbidden},
		{"wrong token", other, []string{"Authorization", "Bearer " + testMetricsToken + "x"}, http.StatusUnauthorized},
		{"token as another scheme", other, []string{"Authorization", "Basic " + testMetricsToken}, http.StatusUnauthorized},
		{"wrong token from an allowed address", nil, []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"right token", other, []string{"Authorization", "Bearer " + testMetricsToken}, http.StatusOK},
		{"right token through a proxy", other, []string{"Authorization", "Bearer " + testMetricsToken,
			"X-Forwarded-For", "203.0.113.9"}, http.StatusOK},
	} {
		status, body := scrape(t, c.client, ta.base, c.header...)
		if status != c.want {
			t.Errorf("%s: %d, want %d (%s)", c.what, status, c.want, body)
			continue
		}
		switch {
		case status == http.StatusOK && !strings.Contains(body, "sessiondesk_outbox_messages"):
			t.Errorf("%s: 200 without the metrics", c.what)
		case status != http.StatusOK && (strings.Contains(body, "sessiondesk_outbox") || !strings.Contains(body, "/metrics")):
			t.Errorf("%s: refusal body %q does not say why, or leaks figures", c.what, body)
		}
	}
}

// A token from the configuration is required to be long, and the address
// list must parse; the default is loopback only.
func TestMetricsSettings(t *testing.T) {
	parse := func(env map[string]string) (config.Config, error) {
		return config.Parse([]string{"--data", t.TempDir()}, func(k string) string { return env[k] }, io.Discard)
	}
	cfg, err := parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cfg.MetricsAllow); got != "[127.0.0.0/8 ::1/128]" || cfg.MetricsToken != "" {
		t.Errorf("default metrics access: %s, token %q", got, cfg.MetricsToken)
	}
	cfg, err = parse(map[string]string{"SESSIONDESK_METRICS_ALLOW": " 10.1.2.3, 192.168.0.0/16 ,::ffff:10.9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cfg.MetricsAllow); got != "[10.1.2.3/32 192.168.0.0/16 10.9.9.9/32]" {
		t.Errorf("parsed allow list: %s", got)
	}
	if cfg, err = parse(map[string]string{"SESSIONDESK_METRICS_ALLOW": "none"}); err != nil || len(cfg.MetricsAllow) != 0 {
		t.Errorf("none: %v %v", cfg.MetricsAllow, err)
	}
	for _, bad := range []map[string]string{
		{"SESSIONDESK_METRICS_ALLOW": "10.0.0.0/33"},
		{"SESSIONDESK_METRICS_ALLOW": "everyone"},
		{"SESSIONDESK_METRICS_ALLOW": " , "},
		{"SESSIONDESK_METRICS_TOKEN": "short"},
	} {
		if _, err := parse(bad); err == nil || !strings.Contains(err.Error(), "SESSIONDESK_METRICS_") {
			t.Errorf("%v: %v, want an error naming the setting", bad, err)
		}
	}
}

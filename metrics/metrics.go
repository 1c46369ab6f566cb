// Package metrics keeps Sessiondesk's Prometheus metrics in a registry of its
// own (never the library's global one): counters the inbox's parts add to as
// things happen, figures read from the database at each scrape, and the Go
// runtime's and the process's own. Handler serves them at /metrics behind an
// address list or a bearer token (access.go).
//
// Every method is safe on a nil *Metrics and then does nothing, so that a
// part built without metrics (a unit test's outbox) needs no stand-in.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sessiondesk/store"
)

// namespace prefixes every metric of the inbox's own.
const namespace = "sessiondesk"

// scrapeTimeout bounds the database read of one scrape.
const scrapeTimeout = 5 * time.Second

// Sources are what the scrape-time figures are read from.
type Sources struct {
	// Store answers the outbox depth.
	Store *store.Store
	// Now is the clock the age of the oldest queued message is taken on;
	// nil means time.Now.
	Now func() time.Time
	// Log receives the scrape-time read failures; nil discards them.
	Log *slog.Logger
}

// Metrics holds the registry and the metrics the inbox adds to.
type Metrics struct {
	reg *prometheus.Registry

	in          *prometheus.CounterVec
	out         *prometheus.CounterVec
	sendLatency *prometheus.HistogramVec
	hookErrors  *prometheus.CounterVec
	cost        *prometheus.CounterVec
	requests    *prometheus.HistogramVec
	opened      *prometheus.CounterVec
	billed      prometheus.Counter

	db *dbCollector
}

// New creates a registry with the inbox's metrics, the Go runtime's and the
// process's collectors, and the collector that reads src at each scrape.
func New(src Sources) *Metrics {
	if src.Now == nil {
		src.Now = time.Now
	}
	if src.Log == nil {
		src.Log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.in = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "messages_in_total",
		Help: "Client messages received through the provider's webhook and stored (a redelivery is not counted), by kind.",
	}, []string{"kind"})
	m.out = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "messages_out_total",
		Help: "Business messages that reached a status: queued (accepted from an agent or the API), sent (the provider " +
			"took it), unconfirmed (its answer was lost), failed (refused or given up), and the provider's delivery " +
			"reports (delivered, seen, undelivered, expired, failed).",
	}, []string{"status"})
	m.sendLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "provider_send_duration_seconds",
		Help:    "Time the provider took to answer a send, by outcome (ok, rejected, uncertain, error).",
		Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"outcome"})
	m.hookErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "webhook_errors_total",
		Help: "Provider webhooks not applied, by webhook (inbound, status) and kind: secret (wrong secret path), " +
			"body (too large or unreadable), payload (not the documented format), store (not kept; the provider retries), " +
			"unknown_message (a status for a message the inbox does not know).",
	}, []string{"webhook", "kind"})
	m.cost = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "cost_reported_total",
		Help: "Price the provider reported for business messages, by currency (\"\" when the report names none).",
	}, []string{"currency"})
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by method, route template and status code.",
		Buckets: prometheus.DefBuckets,
	}, []string{"method", "route", "code"})
	m.opened = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "sessions_opened_total",
		Help: "Sessions opened, by who opened them: client (a client's message) or rollover (a business message past the cap).",
	}, []string{"opened_by"})
	m.billed = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "sessions_billed_total",
		Help: "Sessions billed: a business message was accepted into a session with none counted yet (a rollover is billed at once).",
	})
	for _, by := range []string{"client", "rollover"} {
		m.opened.WithLabelValues(by) // both series exist from the start, at 0
	}
	m.db = &dbCollector{src: src}
	m.reg.MustRegister(m.in, m.out, m.sendLatency, m.hookErrors, m.cost, m.requests, m.opened, m.billed, m.db,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the metrics are in (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetPages sets where the count of live pages comes from; the live hub exists
// only once the routes are built.
func (m *Metrics) SetPages(pages func() int) {
	if m != nil {
		m.db.pages.Store(&pages)
	}
}

// MessageIn counts a client message stored, of the given kind.
func (m *Metrics) MessageIn(kind string) {
	if m != nil {
		m.in.WithLabelValues(kind).Inc()
	}
}

// SessionOpened counts a session a client's message opened.
func (m *Metrics) SessionOpened() {
	if m != nil {
		m.opened.WithLabelValues("client").Inc()
	}
}

// Accepted counts what an accepted send began: its messages (queued), the
// sessions it opened past the cap, the sessions it billed. Give it to
// store.Store.OnAccept.
func (m *Metrics) Accepted(a store.Accepted) {
	if m != nil {
		m.out.WithLabelValues(store.StatusQueued).Add(float64(a.Messages))
		m.opened.WithLabelValues("rollover").Add(float64(a.Rollovers))
		m.billed.Add(float64(a.Billed))
	}
}

// MessageOut counts a business message that moved to status.
func (m *Metrics) MessageOut(status string) {
	if m != nil {
		m.out.WithLabelValues(status).Inc()
	}
}

// Send outcomes, for SendDone.
const (
	SendOK        = "ok"        // the provider took the message
	SendRejected  = "rejected"  // it refused it for good
	SendUncertain = "uncertain" // its answer was lost: it may have it
	SendError     = "error"     // it could not be reached, or said "not now"
)

// SendDone records how long the provider took to answer one send, and how
// it ended (SendOK, SendRejected, SendUncertain or SendError).
func (m *Metrics) SendDone(outcome string, took time.Duration) {
	if m != nil {
		m.sendLatency.WithLabelValues(outcome).Observe(took.Seconds())
	}
}

// Webhook errors' kinds, for WebhookError.
const (
	HookSecret         = "secret"
	HookBody           = "body"
	HookPayload        = "payload"
	HookStore          = "store"
	HookUnknownMessage = "unknown_message"
)

// WebhookError counts a webhook (inbound or status) not applied, and why.
func (m *Metrics) WebhookError(webhook, kind string) {
	if m != nil {
		m.hookErrors.WithLabelValues(webhook, kind).Inc()
	}
}

// CostReported adds a price the provider reported for a business message, in
// currency ("" when the report names none). Call it once per price taken in:
// where prices are stored per message, when the stored price is set (with the
// difference when a later report replaces it), so a repeated callback adds
// nothing. A negative or zero amount adds nothing.
func (m *Metrics) CostReported(currency string, amount float64) {
	if m != nil && amount > 0 {
		m.cost.WithLabelValues(currency).Add(amount)
	}
}

// Handler serves the metrics in the Prometheus text format (or OpenMetrics
// when the scraper asks), to whoever access lets in.
func (m *Metrics) Handler(access Access) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// A failed scrape-time read is logged and leaves its figures out; the
		// rest is still served.
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       scrapeTimeout,
	})
	return access.guard(h)
}

// knownMethods bounds the method label: any other method is "other", so a
// client cannot make up label values.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// Middleware times every request by its route template (c.Path(), such as
// "/c/:id", never the URL itself: the number of label values stays that of
// the routes). Put it outside the middleware that writes errors, so that the
// status is the one answered.
func (m *Metrics) Middleware(next echo.HandlerFunc) echo.HandlerFunc {
	if m == nil {
		return next
	}
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		method := c.Request().Method
		if !knownMethods[method] {
			method = "other"
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		code := strconv.Itoa(c.Response().Status)
		m.requests.WithLabelValues(method, route, code).Observe(time.Since(start).Seconds())
		return nil
	}
}

// scrapeContext bounds one scrape's database read.
func scrapeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), scrapeTimeout)
}

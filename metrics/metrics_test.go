package metrics

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The request timer labels by route template; an unknown path or a made-up
// method cannot add label values.
func TestMiddlewareLabelsByRoute(t *testing.T) {
	m := New(Sources{})
	e := echo.New()
	e.Use(m.Middleware)
	e.GET("/c/:id", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	e.GET("/boom", func(c echo.Context) error { return echo.NewHTTPError(http.StatusTeapot, "no") })
	srv := httptest.NewServer(e)
	defer srv.Close()
	for _, req := range []struct{ method, path string }{
		{"GET", "/c/1"}, {"GET", "/c/2"}, {"GET", "/c/3?x=1"}, {"GET", "/boom"},
		{"GET", "/nothing/here/1"}, {"GET", "/nothing/here/2"}, {"BREW", "/c/4"},
	} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, nil)
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if n := testutil.CollectAndCount(m.requests); n != 4 {
		t.Errorf("%d request series, want 4 (the route, the error, one for unknown paths, one for the odd method)", n)
	}
	for _, c := range []struct {
		labels []string
		want   uint64
	}{
		{[]string{"GET", "/c/:id", "204"}, 3},
		{[]string{"GET", "/boom", "418"}, 1},
		{[]string{"other", "/c/:id", "405"}, 1},
	} {
		if got := sampleCount(t, m, c.labels); got != c.want {
			t.Errorf("%v: %d requests, want %d", c.labels, got, c.want)
		}
	}
}

func sampleCount(t *testing.T, m *Metrics, labels []string) uint64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "sessiondesk_http_request_duration_seconds" {
			continue
		}
	next:
		for _, s := range f.GetMetric() {
			for i, l := range s.GetLabel() { // sorted: code, method, route
				if want := map[int]string{0: labels[2], 1: labels[0], 2: labels[1]}[i]; l.GetValue() != want {
					continue next
				}
			}
			return s.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// A nil *Metrics counts nothing and fails nothing; a price of 0 or less adds
// nothing.
func TestNilMetricsAndPrices(t *testing.T) {
	var none *Metrics
	none.MessageIn("text")
	none.MessageOut("sent")
	none.SendDone(SendOK, time.Second)
	none.WebhookError("status", HookPayload)
	none.CostReported("EUR", 1)
	none.SetPages(func() int { return 1 })

	m := New(Sources{})
	m.CostReported("EUR", 0.25)
	m.CostReported("EUR", 0)
	m.CostReported("EUR", -3)
	m.CostReported("USD", 0.5)
	if got := testutil.ToFloat64(m.cost.WithLabelValues("EUR")); got != 0.25 {
		t.Errorf("EUR %v, want 0.25", got)
	}
	m.SetPages(func() int { return 7 })
	srv := httptest.NewServer(m.Handler(Access{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := testutil.ScrapeAndCompare(srv.URL, strings.NewReader(`
# HELP sessiondesk_live_pages Inbox pages open with a live connection (websocket) right now.
# TYPE sessiondesk_live_pages gauge
sessiondesk_live_pages 7
`), "sessiondesk_live_pages"); err != nil {
		t.Error(err)
	}
}

package main

import (
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sessiondesk/cmd/sessiondesk-load/internal/product"
)

func TestQuickShrinksEverythingButExplicitFlags(t *testing.T) {
	o, err := parseFlags([]string{"--quick", "--agents", "7"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.runs != 1 || o.conversations != 300 || o.messages != 1500 || o.duration != 500*time.Millisecond || len(o.pageSizes) != 0 {
		t.Errorf("--quick: %+v", o)
	}
	if o.agents != 7 {
		t.Errorf("--agents 7 with --quick gave %d agents", o.agents)
	}
	full, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if full.runs != 3 || full.messages != 1_000_000 || len(full.scenarios) != len(allScenarios) {
		t.Errorf("defaults: %+v", full)
	}
}

func TestBadFlagsAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--scenarios", "live,nope"},
		{"--scenarios", ","},
		{"--runs", "0"},
		{"--conversations", "10", "--messages", "5"},
		{"--rates", "100,fast"},
		{"--sockets", "-5"},
		{"--duration", "1ms"},
		{"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestOnlyLoopbackIsDialled(t *testing.T) {
	dialled := ""
	dial := loopbackOnly(func(_ context.Context, _, addr string) (net.Conn, error) {
		dialled = addr
		return nil, nil
	})
	for _, addr := range []string{"10.0.0.1:80", "example.com:443", "[2001:db8::1]:80", "garbage"} {
		if _, err := dial(context.Background(), "tcp", addr); err == nil || dialled != "" {
			t.Errorf("dialled %q", addr)
		}
	}
	if _, err := dial(context.Background(), "tcp", "127.0.0.1:8080"); err != nil || dialled != "127.0.0.1:8080" {
		t.Errorf("loopback refused: %v", err)
	}
}

// The ratio is the median of each run's own ratio, not the ratio of medians.
func TestReportRatiosAreMediansOfRunRatios(t *testing.T) {
	r := &report{Runs: 3}
	f := r.fig("ingest", "msg/s", "", "")
	for _, run := range [][2]float64{{10, 100}, {30, 100}, {20, 40}} {
		f.addWith(run[0], "raw", "tx/s", run[1])
	}
	r.fig("never shown", "", "0", "").add(math.NaN())
	lat := r.fig("live p50", "ms", "", "")
	for _, v := range []float64{math.Inf(1), 20, math.Inf(1)} { // two runs showed nothing
		lat.add(v)
	}
	r.finish()
	if !math.IsInf(lat.Median, 1) {
		t.Errorf("median of two runs with nothing shown and one at 20 ms = %v, want none shown", lat.Median)
	}
	if f.Median != 20 || f.BaseMedian != 100 || f.RatioMedian != 0.3 {
		t.Errorf("median %v, baseline %v, ratio %v; want 20, 100, 0.3", f.Median, f.BaseMedian, f.RatioMedian)
	}
	var md strings.Builder
	r.writeMarkdown(&md)
	if !strings.Contains(md.String(), "| ingest | 20 msg/s | raw: 100 tx/s | 30% |") || !strings.Contains(md.String(), "| live p50 | none shown |") {
		t.Errorf("markdown:\n%s", md.String())
	}
	var js strings.Builder
	if err := r.writeJSON(&js); err != nil || strings.Contains(js.String(), "NaN") || strings.Contains(js.String(), "Inf") {
		t.Errorf("JSON with NaN or failing (%v):\n%s", err, js.String())
	}
}

// An agent resumes after the last event id its frames carried.
func TestLatestCursor(t *testing.T) {
	for _, tc := range []struct {
		frame string
		want  int64
	}{
		{``, 0},
		{`<div id="x"></div>`, 0},
		{`<div id="live-cursor" hidden data-last-event-id="42" hx-swap-oob="true"></div>`, 42},
		{`<div data-last-event-id="7"></div><li>row</li><div data-last-event-id="1234567"></div>`, 1234567},
		{`<div data-last-event-id="12x"></div>`, 0},
		{`<div data-last-event-id=""></div>`, 0},
		{`<div data-last-event-id="9`, 0},
	} {
		if got := latestCursor([]byte(tc.frame)); got != tc.want {
			t.Errorf("latestCursor(%q) = %d, want %d", tc.frame, got, tc.want)
		}
	}
}

// The writer's counts are read from the product's /metrics in the Prometheus
// text format; a product without them (an older binary) is an error, not a 0.
func TestWriterCountsReadTheMetrics(t *testing.T) {
	var body atomic.Value // the server's goroutine reads it
	body.Store("# TYPE sessiondesk_store_commits_total counter\nsessiondesk_store_commits_total 40\n" +
		"# TYPE sessiondesk_store_writes_total counter\nsessiondesk_store_writes_total 300\n" +
		"# TYPE sessiondesk_live_pages gauge\nsessiondesk_live_pages 3\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, body.Load().(string)) //nolint:errcheck // the test reads what arrives
	}))
	defer srv.Close()
	r := newRunner(options{}, "", t.TempDir(), io.Discard)
	defer r.close()
	commits, writes, err := r.writerCounts(context.Background(), &product.Product{URL: srv.URL})
	if err != nil || commits != 40 || writes != 300 {
		t.Errorf("writerCounts = %v, %v, %v; want 40, 300", commits, writes, err)
	}
	body.Store("# TYPE sessiondesk_live_pages gauge\nsessiondesk_live_pages 3\n")
	if _, _, err := r.writerCounts(context.Background(), &product.Product{URL: srv.URL}); err == nil ||
		!strings.Contains(err.Error(), "sessiondesk_store_commits_total") {
		t.Errorf("metrics without the counts: %v, want an error naming the missing one", err)
	}
}

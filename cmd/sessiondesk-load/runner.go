package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"sessiondesk/cmd/sessiondesk-load/internal/baseline"
	"sessiondesk/cmd/sessiondesk-load/internal/dataset"
	"sessiondesk/cmd/sessiondesk-load/internal/product"
	"sessiondesk/config"
)

// runner plays the scenarios of every run and collects the report.
type runner struct {
	o      options
	bin    string
	work   string // this invocation's temporary folder
	log    io.Writer
	client *http.Client
	rep    *report
	phase  int // numbers the latency measurements, so their markers differ
}

func buildProduct(ctx context.Context, dir string) (string, error) { return product.Build(ctx, dir) }

func newRunner(o options, bin, work string, log io.Writer) *runner {
	tr := &http.Transport{
		DialContext:         loopbackOnly((&net.Dialer{Timeout: 10 * time.Second}).DialContext),
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     30 * time.Second,
	}
	return &runner{o: o, bin: bin, work: work, log: log,
		client: &http.Client{Transport: tr, Timeout: 60 * time.Second},
		rep:    &report{Machine: machine(), Runs: o.runs, Date: time.Now().UTC()}}
}

// loopbackOnly refuses to dial anything but 127.0.0.1: the tool loads nothing else.
func loopbackOnly(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil || !config.IsLoopbackHost(host) {
			return nil, fmt.Errorf("sessiondesk-load only talks to loopback, not %q", addr)
		}
		return dial(ctx, network, addr)
	}
}

func (r *runner) close() { r.client.CloseIdleConnections() }

func (r *runner) say(format string, args ...any) {
	fmt.Fprintf(r.log, "sessiondesk-load: "+format+"\n", args...)
}

// all runs every run and returns the finished report.
func (r *runner) all(ctx context.Context) (*report, error) {
	main := dataset.Spec{Conversations: r.o.conversations, Messages: r.o.messages}
	r.rep.Dataset = fmt.Sprintf("Dataset %d conversations / %d messages", main.Conversations, main.Messages)
	r.say("dataset %d conversations / %d messages (cache %s)", main.Conversations, main.Messages, r.o.cacheDir)
	mainPath, took, err := dataset.Cached(ctx, r.o.cacheDir, main, r.log)
	if err != nil {
		return nil, err
	}
	if took > 0 {
		r.rep.Import = fmt.Sprintf("%s (%.0f messages/s)", took.Round(time.Second), float64(main.Messages)/took.Seconds())
	}
	var small []dataset.Spec
	if r.o.scenarios["pages"] {
		for _, n := range r.o.pageSizes {
			if n < main.Conversations {
				small = append(small, dataset.Spec{Conversations: n, Messages: 10 * n})
			}
		}
	}
	smallPaths := make([]string, len(small))
	for i, s := range small {
		if smallPaths[i], _, err = dataset.Cached(ctx, r.o.cacheDir, s, r.log); err != nil {
			return nil, err
		}
	}
	for run := 1; run <= r.o.runs; run++ {
		for i, s := range small {
			r.say("run %d: pages at %d conversations", run, s.Conversations)
			if err := r.withProduct(ctx, fmt.Sprintf("run%d-small%d", run, i), smallPaths[i], func(p *product.Product) error {
				return r.pages(ctx, p, s)
			}); err != nil {
				return nil, err
			}
		}
		r.say("run %d: main dataset", run)
		if err := r.withProduct(ctx, fmt.Sprintf("run%d-main", run), mainPath, func(p *product.Product) error {
			return r.mainRun(ctx, p, main)
		}); err != nil {
			return nil, err
		}
		if r.o.scenarios["sockets"] || r.o.scenarios["churn"] {
			r.say("run %d: sockets, on a product that has only started", run)
			if err := r.withProduct(ctx, fmt.Sprintf("run%d-sockets", run), mainPath, func(p *product.Product) error {
				return r.socketsRun(ctx, p, main)
			}); err != nil {
				return nil, err
			}
		}
	}
	r.rep.finish()
	return r.rep, nil
}

// withProduct starts the product on a fresh copy of the dataset, runs fn, and
// stops it.
func (r *runner) withProduct(ctx context.Context, name, ds string, fn func(p *product.Product) error) error {
	dir := filepath.Join(r.work, name)
	if err := dataset.CopyTo(ds, filepath.Join(dir, "sessiondesk.db")); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logf, err := os.Create(filepath.Join(r.work, name+".log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	var plog io.Writer = logf
	if r.o.verbose {
		plog = io.MultiWriter(logf, r.log)
	}
	p, err := product.Start(ctx, product.Config{Binary: r.bin, DataDir: dir, Log: plog})
	if err != nil {
		return fmt.Errorf("%w\n%s", err, tail(logf.Name()))
	}
	if len(p.ExtraFlags) > 0 {
		r.note(fmt.Sprintf("The product was started with %v (found in its -h).", p.ExtraFlags))
	}
	ferr := fn(p)
	r.client.CloseIdleConnections()
	serr := p.Stop()
	if ferr != nil {
		return fmt.Errorf("%w\nproduct log:\n%s", ferr, tail(logf.Name()))
	}
	if serr != nil {
		return fmt.Errorf("%w\n%s", serr, tail(logf.Name()))
	}
	return nil
}

// note adds a remark to the report once.
func (r *runner) note(n string) {
	for _, have := range r.rep.Notes {
		if have == n {
			return
		}
	}
	r.rep.Notes = append(r.rep.Notes, n)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// mainRun plays the scenarios on the main dataset, in an order that keeps
// each measurement clean: memory and pages first, on the untouched dataset.
func (r *runner) mainRun(ctx context.Context, p *product.Product, spec dataset.Spec) error {
	sc := r.o.scenarios
	size := sizeName(spec)
	if sc["coldstart"] {
		r.rep.fig("cold start, "+size, "ms", "≤ 300 ms at 1M messages", "").add(ms(p.ColdStart))
	}
	if sc["rss"] {
		time.Sleep(time.Second) // let start-up settle
		rss, err := p.RSS()
		if err != nil {
			return err
		}
		r.rep.fig("idle RSS, "+size, "MB", "≤ 30 MB", "23 MB").add(float64(rss) / (1 << 20))
		anon, err := p.AnonRSS()
		if err != nil {
			return err
		}
		r.rep.fig("idle RSS, anonymous (without the executable's pages), "+size, "MB", "", "").add(float64(anon) / (1 << 20))
	}
	if sc["pages"] {
		if err := r.pages(ctx, p, spec); err != nil {
			return err
		}
	}
	var raw float64
	if sc["ingest"] || sc["send"] {
		var err error
		if raw, err = r.rawSQLite(ctx); err != nil {
			return err
		}
	}
	if sc["ingest"] {
		if err := r.ingest(ctx, p, spec, raw, nil); err != nil {
			return err
		}
	}
	if (sc["ingest"] || sc["live"]) && r.o.agents > 0 {
		agents, err := r.openAgents(ctx, p, r.o.agents)
		if err != nil {
			return err
		}
		err = func() error {
			defer agents.close()
			if sc["ingest"] {
				if err := r.ingest(ctx, p, spec, raw, agents); err != nil {
					return err
				}
			}
			if sc["live"] {
				for _, rate := range r.o.rates {
					agents.quiet(ctx, r.o.wait) // the backlog of the previous step is not this one's
					name := fmt.Sprintf("live, %d msg/s, %d agents", rate, len(agents.list))
					if err := r.live(ctx, p, spec, agents, rate, name, nil); err != nil {
						return err
					}
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	if sc["send"] {
		if err := r.send(ctx, p, raw); err != nil {
			return err
		}
	}
	return nil
}

// socketsRun measures what idle and churning websockets cost, on a product of
// its own that has done nothing but start: in the process that had just taken
// the ingest, live and send scenarios, the heap they left behind and the
// collector's timing moved the RSS by tens of kilobytes per socket, which
// measured those scenarios rather than the sockets.
func (r *runner) socketsRun(ctx context.Context, p *product.Product, spec dataset.Spec) error {
	if r.o.scenarios["sockets"] {
		for _, n := range r.o.sockets {
			if err := r.idleSockets(ctx, p, n); err != nil {
				return err
			}
		}
	}
	if r.o.scenarios["churn"] {
		if err := r.churn(ctx, p, spec); err != nil {
			return err
		}
	}
	return nil
}

func sizeName(s dataset.Spec) string {
	return short(s.Conversations) + " conv / " + short(s.Messages) + " msgs"
}

func short(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	default:
		return strconv.Itoa(n)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rawSQLite measures the baseline of the write paths on the disk of the
// product's database.
func (r *runner) rawSQLite(ctx context.Context) (float64, error) {
	rate, err := rawTxRate(ctx, filepath.Join(r.work, "raw-baseline.db"), r.o.duration)
	if err != nil {
		return 0, err
	}
	r.rep.fig("raw SQLite one-row transactions (baseline)", "tx/s", "", "").add(rate)
	return rate, nil
}

// postInbound delivers a client's message through the Routee webhook and
// returns once the product answered (it answers after the commit).
func (r *runner) postInbound(ctx context.Context, p *product.Product, phone, text string) error {
	return r.postWebhook(ctx, inboundURL(p.URL, p.WebhookSecret), phone, text)
}

// inboundURL is the Routee inbound webhook of the server at base.
func inboundURL(base, secret string) string { return base + "/webhooks/routee/" + secret + "/inbound" }

// postWebhook posts a client's message in the Routee inbound format to url.
// Like Routee's own, it carries no message id (Routee documents none): the
// product keys the delivery by a hash of its content, as it does in
// production, which puts each key at a random place of its index. The
// callers' texts differ, so no two posts are taken for one.
func (r *runner) postWebhook(ctx context.Context, url, phone, text string) error {
	body, err := json.Marshal(baseline.Inbound{From: phone, To: "sessiondesk", Message: text, Direction: "Inbound",
		SentDate: time.Now().UTC().Format("2006-01-02T15:04:05.000Z")})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook: HTTP %d: %s", resp.StatusCode, out)
	}
	return nil
}

// closedLoop runs k senders, each posting a client's message of the dataset
// to url and the next once answered, for the measurement's duration; it
// returns the answered posts per second, the failed posts and the first error.
func (r *runner) closedLoop(ctx context.Context, spec dataset.Spec, k int, url string) (rate float64, failed int64, firstErr any) {
	var ok, bad atomic.Int64
	var first atomic.Value
	deadline := time.Now().Add(r.o.duration)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range k {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil && i < 10_000_000; i++ {
				phone := dataset.Phone(rng.IntN(spec.Conversations))
				if err := r.postWebhook(ctx, url, phone, fmt.Sprintf("Ingest %d/%d: where is my order?", w, i)); err != nil {
					bad.Add(1)
					first.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(start).Seconds(), bad.Load(), first.Load()
}

// ingest runs the closed-loop webhook senders, with the agents' sockets open
// when agents is not nil.
func (r *runner) ingest(ctx context.Context, p *product.Product, spec dataset.Spec, raw float64, agents *agentSet) error {
	na := 0
	if agents != nil {
		na = len(agents.list)
	}
	url := inboundURL(p.URL, p.WebhookSecret)
	for _, k := range r.o.senders {
		if agents != nil {
			agents.quiet(ctx, r.o.wait) // the backlog of the previous step is not this one's
		}
		// A binary older than these counters (the tool measures old
		// commits too) or one whose /metrics is closed to loopback still
		// runs the step, without this figure.
		startCommits, startWrites, countErr := r.writerCounts(ctx, p)
		rate, failed, firstErr := r.closedLoop(ctx, spec, k, url)
		if rate == 0 {
			return fmt.Errorf("ingest with %d senders: no webhook succeeded (%v)", k, firstErr)
		}
		commits, writes, err := r.writerCounts(ctx, p)
		if countErr == nil {
			countErr = err
		}
		if failed > 0 {
			r.note(fmt.Sprintf("ingest, %d senders, %d agents: %d webhook posts failed, e.g. %v", k, na, failed, firstErr))
		}
		name := fmt.Sprintf("ingest, %d senders, %d agents", k, na)
		target, before := "", ""
		if na > 0 {
			target, before = "≥ 25% of raw", "0.2–0.3% of raw"
		}
		r.rep.fig(name, "msg/s", target, before).addWith(rate, "raw SQLite", "tx/s", raw)
		if na > 0 {
			zero := r.rep.fig(fmt.Sprintf("ingest, %d senders, 0 agents", k), "msg/s", "", "")
			if len(zero.Values) > 0 {
				r.rep.fig(fmt.Sprintf("ingest, %d senders: %d agents vs 0", k, na), "msg/s", "≥ 80% of 0 agents", "").
					addWith(rate, "0 agents", "msg/s", zero.Values[len(zero.Values)-1])
			}
		}
		if countErr != nil {
			r.note(fmt.Sprintf("ingest: no writes per commit: %v", countErr))
			r.say("ingest %d senders, %d agents: %.0f msg/s", k, na, rate)
		} else {
			// How many writes shared a commit: the writer's group commit at
			// work (the agents' own writes, read marks, count too).
			perCommit := (writes - startWrites) / max(commits-startCommits, 1)
			r.rep.fig(name+": writes per commit", "writes", "", "").add(perCommit)
			r.say("ingest %d senders, %d agents: %.0f msg/s, %.1f writes per commit", k, na, rate, perCommit)
		}
		if na == 0 {
			if err := r.bareWebhook(ctx, spec, k, rate, raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// writerCounts reads the product's commits and committed writes so far from
// its /metrics (loopback may read it without a token by default).
func (r *runner) writerCounts(ctx context.Context, p *product.Product) (commits, writes float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("read the writer's counts: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("read the writer's counts: GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, 0, fmt.Errorf("read the writer's counts: %w", err)
	}
	counter := func(name string) (float64, error) {
		f := fams[name]
		if f == nil || len(f.GetMetric()) != 1 {
			return 0, fmt.Errorf("read the writer's counts: /metrics has no %s", name)
		}
		return f.GetMetric()[0].GetCounter().GetValue(), nil
	}
	if commits, err = counter("sessiondesk_store_commits_total"); err != nil {
		return 0, 0, err
	}
	writes, err = counter("sessiondesk_store_writes_total")
	return commits, writes, err
}

// bareWebhook runs the same senders against a bare Echo handler of the
// webhook (baseline.ServeWebhook): the rate the HTTP round trip alone allows
// on this machine, as a share of raw SQLite's, beside the product's.
func (r *runner) bareWebhook(ctx context.Context, spec dataset.Spec, k int, ingest, raw float64) error {
	bare, err := baseline.ServeWebhook()
	if err != nil {
		return err
	}
	defer bare.Close()
	rate, failed, firstErr := r.closedLoop(ctx, spec, k, inboundURL(bare.URL, "bare"))
	if rate == 0 || failed > 0 {
		return fmt.Errorf("bare echo webhook with %d senders: %d posts failed (%v)", k, failed, firstErr)
	}
	r.rep.fig(fmt.Sprintf("bare Echo webhook (no store), %d senders", k), "req/s", "", "").addWith(rate, "raw SQLite", "tx/s", raw)
	r.rep.fig(fmt.Sprintf("ingest, %d senders, 0 agents vs bare Echo webhook", k), "msg/s", "", "").
		addWith(ingest, "bare Echo webhook", "req/s", rate)
	r.say("bare echo webhook %d senders: %.0f req/s", k, rate)
	return nil
}

// cursorPrefix starts the attribute with the event id a frame resumes after.
var cursorPrefix = []byte(`data-last-event-id="`)

// latestCursor returns the last event id a frame carries, or 0. It is read
// from every frame of every agent, so it scans once from the end instead of
// running a regular expression over the whole frame (12% of the tool's CPU
// with a hundred agents under ingest).
func latestCursor(frame []byte) int64 {
	i := bytes.LastIndex(frame, cursorPrefix)
	if i < 0 {
		return 0
	}
	digits := frame[i+len(cursorPrefix):]
	end := bytes.IndexByte(digits, '"')
	if end <= 0 {
		return 0
	}
	n, err := strconv.ParseInt(string(digits[:end]), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// infIfNone is v, or +Inf when there were no samples (nothing was shown).
func infIfNone(n int, v float64) float64 {
	if n == 0 {
		return math.Inf(1)
	}
	return v
}

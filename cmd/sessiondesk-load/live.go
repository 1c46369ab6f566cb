package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"sessiondesk/clock"
	"sessiondesk/cmd/sessiondesk-load/internal/baseline"
	"sessiondesk/cmd/sessiondesk-load/internal/browser"
	"sessiondesk/cmd/sessiondesk-load/internal/dataset"
	"sessiondesk/cmd/sessiondesk-load/internal/marker"
	"sessiondesk/cmd/sessiondesk-load/internal/product"
	"sessiondesk/cmd/sessiondesk-load/internal/stats"
)

func rawTxRate(ctx context.Context, path string, d time.Duration) (float64, error) {
	return baseline.SQLiteTxRate(ctx, path, d)
}

// frameFunc is what an agent does with a frame.
type frameFunc = func(frame []byte, at time.Time)

// agent is one agent's browser with the inbox open. Like the page's script, it
// reconnects when the product drops its websocket, after a second, resuming
// after the last event id its frames carried.
type agent struct {
	login   string
	observe atomic.Pointer[frameFunc] // swapped per measurement
	cursor  atomic.Int64              // the last event id its frames carried
	frames  atomic.Int64              // over every connection
	drops   atomic.Int64              // connections the product ended
	lastErr atomic.Value              // why the last one ended

	mu      sync.Mutex
	sock    *browser.Socket
	closing bool
	done    chan struct{}
}

func (a *agent) onFrame(frame []byte, at time.Time) {
	a.frames.Add(1)
	if c := latestCursor(frame); c > 0 {
		a.cursor.Store(c)
	}
	if f := a.observe.Load(); f != nil {
		(*f)(frame, at)
	}
}

// keep reconnects until close; it owns a.done.
func (a *agent) keep(ctx context.Context, p *product.Product) {
	defer close(a.done)
	for {
		a.mu.Lock()
		s := a.sock
		a.mu.Unlock()
		if s != nil {
			<-s.Done()
		}
		a.mu.Lock()
		if a.closing || ctx.Err() != nil {
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		if s != nil {
			a.drops.Add(1)
			a.lastErr.Store(fmt.Sprint(s.Err))
		}
		if !clock.Sleep(ctx, time.Second) {
			return
		}
		next, err := browser.Dial(ctx, p.URL, a.login, product.Group, a.cursor.Load(), a.onFrame)
		if err != nil {
			a.lastErr.Store(err.Error())
			next = nil
		}
		a.mu.Lock()
		a.sock = next
		if a.closing && next != nil {
			a.mu.Unlock()
			next.Close()
			return
		}
		a.mu.Unlock()
	}
}

func (a *agent) close() {
	a.mu.Lock()
	a.closing = true
	s := a.sock
	a.mu.Unlock()
	if s != nil {
		s.Close()
	}
	<-a.done
}

// agentSet is the agents of the ingest and live scenarios.
type agentSet struct {
	list []*agent
	stop context.CancelFunc
}

// openAgents signs in n distinct agents, each loading the inbox page for its
// cursor and opening its websocket.
func (r *runner) openAgents(ctx context.Context, p *product.Product, n int) (*agentSet, error) {
	ctx, stop := context.WithCancel(ctx)
	set := &agentSet{list: make([]*agent, n), stop: stop}
	errs := make([]error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			a := &agent{login: fmt.Sprintf("agent-%04d", i), done: make(chan struct{})}
			after, err := browser.Cursor(ctx, r.client, p.URL, a.login, product.Group)
			if err != nil {
				errs[i] = err
				return
			}
			a.cursor.Store(after)
			if a.sock, errs[i] = browser.Dial(ctx, p.URL, a.login, product.Group, after, a.onFrame); errs[i] != nil {
				return
			}
			go a.keep(ctx, p)
			set.list[i] = a
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		set.close()
		return nil, fmt.Errorf("agents: %w", err)
	}
	r.say("%d agents connected", n)
	return set, nil
}

func (s *agentSet) close() {
	var wg sync.WaitGroup
	for _, a := range s.list {
		if a != nil {
			wg.Go(a.close)
		}
	}
	wg.Wait()
	s.stop()
}

// quiet waits until no agent received a frame for 300 ms, at most for wait:
// the product has caught up with what the last measurement left behind.
func (s *agentSet) quiet(ctx context.Context, wait time.Duration) {
	frames := func() (n int64) {
		for _, a := range s.list {
			n += a.frames.Load()
		}
		return n
	}
	deadline := time.Now().Add(wait)
	last := frames()
	for time.Now().Before(deadline) && clock.Sleep(ctx, 300*time.Millisecond) {
		now := frames()
		if now == last {
			return
		}
		last = now
	}
}

// drops counts the connections the product ended, and gives one reason.
func (s *agentSet) drops() (n int64, why string) {
	for _, a := range s.list {
		n += a.drops.Load()
		if e, ok := a.lastErr.Load().(string); ok && why == "" {
			why = e
		}
	}
	return n, why
}

// live offers client messages through the webhook at a fixed rate for the
// measurement's duration and times each from the POST to the frame at every
// agent. during, when set, runs alongside (the churn) and stops when ctx does.
func (r *runner) live(ctx context.Context, p *product.Product, spec dataset.Spec, agents *agentSet, rate int, name string, during func(ctx context.Context)) error {
	r.phase++
	dropsBefore, _ := agents.drops()
	n := max(1, int(float64(rate)*r.o.duration.Seconds()))
	tr := marker.New(r.phase, n, len(agents.list))
	for i, a := range agents.list {
		f := frameFunc(tr.Observer(i))
		a.observe.Store(&f)
	}
	defer func() {
		for _, a := range agents.list {
			a.observe.Store(nil)
		}
	}()
	duringCtx, stopDuring := context.WithCancel(ctx)
	var duringWG sync.WaitGroup
	if during != nil {
		duringWG.Go(func() { during(duringCtx) })
		time.Sleep(time.Second) // let it reach its steady state
	}
	defer func() { stopDuring(); duringWG.Wait() }()

	// Different conversations for every message, so that one never hides
	// another's preview in the list; beyond the dataset, new clients.
	base := rand.IntN(max(spec.Conversations, 1))
	span := max(spec.Conversations, n)
	interval := time.Second / time.Duration(rate)
	var failed atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, 512) // in-flight posts; a slower product lowers the offered rate
	var wg sync.WaitGroup
	start := time.Now()
	sent := 0
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		sent++
		wg.Go(func() {
			defer func() { <-sem }()
			tr.Sent(i, time.Now())
			if err := r.postInbound(ctx, p, dataset.Phone((base+i)%span), tr.Text(i)); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		})
	}
	offered := float64(sent) / (time.Since(start) + interval).Seconds()
	wg.Wait()
	want := int64(sent-int(failed.Load())) * int64(len(agents.list))
	deadline := time.Now().Add(r.o.wait)
	for tr.Seen() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	lat, never := tr.Result(sent)
	drops, why := agents.drops()
	if drops > dropsBefore {
		r.note(fmt.Sprintf("%s: the product ended %d agent websockets (the agents reconnected like the page does), e.g. %s", name, drops-dropsBefore, why))
	}
	r.rep.fig(name+": agent websockets the product dropped", "", "", "").add(float64(drops - dropsBefore))
	if failed.Load() == int64(sent) {
		return fmt.Errorf("%s: no webhook succeeded (%v)", name, firstErr.Load())
	}
	if failed.Load() > 0 {
		r.note(fmt.Sprintf("%s: %d webhook posts failed, e.g. %v", name, failed.Load(), firstErr.Load()))
	}
	sum := stats.Summarise(lat)
	p50Target, p50Before, p99Target := "≤ 20 ms at 200 msg/s, 100 agents", "6.5 s at 100 msg/s offered", "≤ 100 ms at 200 msg/s, 100 agents"
	if during != nil {
		p50Target, p50Before, p99Target = "", "", "≤ 200 ms"
	}
	// A run in which no pair was shown is slower than any that showed some:
	// +Inf, so that the median over runs does not skip it.
	r.rep.fig(name+": p50", "ms", p50Target, p50Before).add(infIfNone(sum.N, ms(sum.P50)))
	r.rep.fig(name+": p99", "ms", p99Target, "").add(infIfNone(sum.N, ms(sum.P99)))
	r.rep.fig(name+": max", "ms", "", "").add(infIfNone(sum.N, ms(sum.Max)))
	r.rep.fig(name+": pairs never shown", fmt.Sprintf("of %d", sent*len(agents.list)), "0", "").add(float64(never))
	r.rep.fig(name+": offered rate", "msg/s", "", "").add(offered)
	r.say("%s: offered %.0f msg/s, p50 %s p99 %s max %s, never shown %d of %d pairs", name, offered,
		sum.P50.Round(time.Millisecond), sum.P99.Round(time.Millisecond), sum.Max.Round(time.Millisecond), never, sent*len(agents.list))
	return nil
}

// idleSockets opens n websockets that receive nothing (no traffic) and
// measures the product's memory per socket.
func (r *runner) idleSockets(ctx context.Context, p *product.Product, n int) error {
	after, err := browser.Cursor(ctx, r.client, p.URL, "idle-0000", product.Group)
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	before, err := p.RSS()
	if err != nil {
		return err
	}
	socks := make([]*browser.Socket, n)
	var failed atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			// Ten tabs per agent: under any per-agent cap.
			s, err := browser.Dial(ctx, p.URL, fmt.Sprintf("idle-%04d", i/10), product.Group, after, nil)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			socks[i] = s
		})
	}
	wg.Wait()
	defer func() {
		var cw sync.WaitGroup
		for _, s := range socks {
			if s != nil {
				cw.Go(s.Close)
			}
		}
		cw.Wait()
	}()
	open := n - int(failed.Load())
	if open == 0 {
		return fmt.Errorf("idle sockets: none connected (%v)", firstErr.Load())
	}
	if failed.Load() > 0 {
		r.note(fmt.Sprintf("idle sockets: %d of %d did not connect, e.g. %v", failed.Load(), n, firstErr.Load()))
	}
	time.Sleep(2 * time.Second) // every socket upgraded and parked
	after2, err := p.RSS()
	if err != nil {
		return err
	}
	per := float64(after2-before) / float64(open) / 1024
	target := ""
	if n >= 5000 {
		target = "≤ 12 KB"
	}
	r.rep.fig(fmt.Sprintf("RSS per idle websocket, %d sockets", n), "KB", target, "29–33 KB").add(per)
	r.rep.fig(fmt.Sprintf("RSS with %d idle websockets", n), "MB", "", "").add(float64(after2) / (1 << 20))
	r.say("%d idle sockets: %.1f KB each", open, per)
	return nil
}

// churn keeps r.o.churn sockets connecting and leaving (each stays 1–5 s,
// then connects again after the measuring agent's latest event id, as a
// reloaded page would) while one agent measures live latency.
func (r *runner) churn(ctx context.Context, p *product.Product, spec dataset.Spec) error {
	agents, err := r.openAgents(ctx, p, 1)
	if err != nil {
		return err
	}
	defer agents.close()
	var connects, failed atomic.Int64
	var firstErr atomic.Value
	during := func(ctx context.Context) {
		var wg sync.WaitGroup
		for i := range r.o.churn {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(i), 7))
				// Spread the first connections over a second.
				if !clock.Sleep(ctx, time.Duration(rng.IntN(1000))*time.Millisecond) {
					return
				}
				for ctx.Err() == nil {
					s, err := browser.Dial(ctx, p.URL, fmt.Sprintf("churn-%04d", i), product.Group, agents.list[0].cursor.Load(), nil)
					if err != nil {
						if ctx.Err() == nil {
							failed.Add(1)
							firstErr.CompareAndSwap(nil, err.Error())
							clock.Sleep(ctx, 100*time.Millisecond)
						}
						continue
					}
					connects.Add(1)
					clock.Sleep(ctx, time.Duration(1000+rng.IntN(4000))*time.Millisecond)
					s.Close()
				}
			})
		}
		wg.Wait()
	}
	start := time.Now()
	name := fmt.Sprintf("live, %d msg/s, 1 agent, %d sockets churning", r.o.churnRate, r.o.churn)
	if err := r.live(ctx, p, spec, agents, r.o.churnRate, name, during); err != nil {
		return err
	}
	if connects.Load() == 0 {
		return fmt.Errorf("churn: no socket connected (%v)", firstErr.Load())
	}
	if failed.Load() > 0 {
		r.note(fmt.Sprintf("churn: %d connections failed, e.g. %v", failed.Load(), firstErr.Load()))
	}
	r.rep.fig("churn: websocket connections", "per s", "", "").add(float64(connects.Load()) / time.Since(start).Seconds())
	return nil
}

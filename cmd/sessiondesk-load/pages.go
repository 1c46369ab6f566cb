package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"sessiondesk/cmd/sessiondesk-load/internal/baseline"
	"sessiondesk/cmd/sessiondesk-load/internal/browser"
	"sessiondesk/cmd/sessiondesk-load/internal/dataset"
	"sessiondesk/cmd/sessiondesk-load/internal/product"
	"sessiondesk/cmd/sessiondesk-load/internal/stats"
)

// maxRequests bounds one page measurement besides its duration.
const maxRequests = 2000

// timed fetches url with headers one request at a time (a closed loop of one)
// for the measurement's duration, after a warm-up, and returns the latencies
// and the last body.
func (r *runner) timed(ctx context.Context, url string, h http.Header) ([]time.Duration, []byte, string, error) {
	get := func() ([]byte, string, time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, "", 0, err
		}
		req.Header = h.Clone()
		start := time.Now()
		resp, err := r.client.Do(req)
		if err != nil {
			return nil, "", 0, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		took := time.Since(start)
		resp.Body.Close()
		if err != nil {
			return nil, "", 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, "", 0, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
		}
		return body, resp.Header.Get("Content-Type"), took, nil
	}
	var (
		body  []byte
		ctype string
		lat   []time.Duration
	)
	for range 5 {
		var err error
		if body, ctype, _, err = get(); err != nil {
			return nil, nil, "", err
		}
	}
	deadline := time.Now().Add(r.o.duration)
	for len(lat) < maxRequests && time.Now().Before(deadline) {
		b, ct, took, err := get()
		if err != nil {
			return nil, nil, "", err
		}
		body, ctype = b, ct
		lat = append(lat, took)
	}
	return lat, body, ctype, nil
}

// pages measures the inbox page, a conversation's page and the JSON list
// against a bare Echo handler serving a body of the same size.
func (r *runner) pages(ctx context.Context, p *product.Product, spec dataset.Spec) error {
	size := sizeName(spec)
	h := browser.Headers("pages-agent", product.Group)
	h.Set("Accept", "text/html")
	conv := dataset.ConversationID(spec.Conversations / 2)
	for _, pg := range []struct{ name, path, target, before string }{
		{"inbox page", "/", "≤ 5 ms and ≤ 10× bare Echo at 100k conv", "22 ms (64× bare)"},
		{"conversation page", fmt.Sprintf("/c/%d", conv), "≤ 5 ms and ≤ 10× bare Echo at 100k conv", ""},
		{"JSON list, page of 50", "/api/v1/conversations?limit=50", "≤ 3 ms", ""},
		// The views (issue 11): each page draws every view's count too.
		{"inbox page, Waiting on us", "/?view=waiting", "≤ 5 ms at 100k conv", ""},
		{"inbox page, Mine", "/?view=mine", "≤ 5 ms at 100k conv", ""},
		{"JSON view Closed unanswered, page of 50", "/api/v1/conversations?view=lost&limit=50", "≤ 3 ms", ""},
		{"JSON view Expiring, page of 50", "/api/v1/conversations?view=expiring&limit=50", "≤ 3 ms", ""},
	} {
		lat, body, ctype, err := r.timed(ctx, p.URL+pg.path, h)
		if err != nil {
			return fmt.Errorf("%s: %w", pg.name, err)
		}
		bare, err := baseline.ServeBody(body, ctype)
		if err != nil {
			return err
		}
		blat, _, _, err := r.timed(ctx, bare.URL+"/", http.Header{})
		bare.Close()
		if err != nil {
			return fmt.Errorf("bare echo: %w", err)
		}
		s, b := stats.Summarise(lat), stats.Summarise(blat)
		// The body's size is a figure of its own: it varies a little between
		// runs, and a name must not, for the medians.
		name := pg.name + ", " + size
		if pg.name == "JSON list, page of 50" {
			var list struct {
				Conversations []json.RawMessage `json:"conversations"`
			}
			if json.Unmarshal(body, &list) == nil && len(list.Conversations) != 50 {
				name = fmt.Sprintf("JSON list, page of %d (asked 50), %s", len(list.Conversations), size)
			}
		}
		r.rep.fig(name+": body", "KB", "", "").add(float64(len(body)) / 1024)
		r.rep.fig(name+": p50", "ms", pg.target, pg.before).addWith(ms(s.P50), "bare Echo p50", "ms", ms(b.P50))
		r.rep.fig(name+": p99", "ms", "", "").addWith(ms(s.P99), "bare Echo p99", "ms", ms(b.P99))
		r.say("%s: p50 %s p99 %s (bare %s)", name, s.P50, s.P99, b.P50)
	}
	return nil
}

// send measures sending through the JSON API: closed-loop senders, each
// message to a conversation whose client wrote last (a refused send reopens
// the conversation with a client message, untimed).
func (r *runner) send(ctx context.Context, p *product.Product, raw float64) error {
	h := browser.Headers("api-sender", product.Group)
	resp, err := r.getJSON(ctx, p.URL+"/api/v1/conversations", h)
	if err != nil {
		return err
	}
	var list struct {
		Conversations []struct {
			ID      int64 `json:"id"`
			Contact struct {
				Phone string `json:"phone"`
			} `json:"contact"`
		} `json:"conversations"`
	}
	if err := json.Unmarshal(resp, &list); err != nil || len(list.Conversations) == 0 {
		return fmt.Errorf("send: no conversations to send to (%v)", err)
	}
	convs := list.Conversations
	for _, c := range convs { // a client message opens the session and resets the unanswered count
		if err := r.postInbound(ctx, p, c.Contact.Phone, "Hello, can you help me?"); err != nil {
			return fmt.Errorf("send: open a session: %w", err)
		}
	}
	const senders = 8
	var (
		mu       sync.Mutex
		lat      []time.Duration
		refused  atomic.Int64
		failed   atomic.Int64
		firstErr atomic.Value
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(r.o.duration)
	start := time.Now()
	for range senders {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil && i < 1_000_000; i++ {
				c := convs[int(next.Add(1))%len(convs)]
				body := []byte(`{"type":"text","text":"Your order is on its way."}`)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/api/v1/conversations/%d/messages", p.URL, c.ID), bytes.NewReader(body))
				if err != nil {
					return
				}
				req.Header = h.Clone()
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := r.client.Do(req)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				took := time.Since(t0)
				switch resp.StatusCode {
				case http.StatusCreated:
					mu.Lock()
					lat = append(lat, took)
					mu.Unlock()
				case http.StatusConflict: // the rules refuse: the client writes again
					refused.Add(1)
					_ = r.postInbound(ctx, p, c.Contact.Phone, "Still there?")
				default:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, out))
				}
			}
		})
	}
	wg.Wait()
	if len(lat) == 0 {
		return fmt.Errorf("send: no message accepted (%d refused, %d failed, e.g. %v)", refused.Load(), failed.Load(), firstErr.Load())
	}
	if failed.Load() > 0 {
		r.note(fmt.Sprintf("send: %d API sends failed, e.g. %v", failed.Load(), firstErr.Load()))
	}
	rate := float64(len(lat)) / time.Since(start).Seconds()
	s := stats.Summarise(lat)
	r.rep.fig(fmt.Sprintf("send through the API, %d senders", senders), "msg/s", "", "").addWith(rate, "raw SQLite", "tx/s", raw)
	r.rep.fig(fmt.Sprintf("send through the API, %d senders: p50", senders), "ms", "", "").add(ms(s.P50))
	r.rep.fig(fmt.Sprintf("send through the API, %d senders: p99", senders), "ms", "", "").add(ms(s.P99))
	r.say("send: %.0f msg/s, p50 %s, %d refusals answered by a client message", rate, s.P50, refused.Load())
	return nil
}

func (r *runner) getJSON(ctx context.Context, url string, h http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header = h.Clone()
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d: %.200s", url, resp.StatusCode, body)
	}
	return body, nil
}

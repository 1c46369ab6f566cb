package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sessiondesk/app"
	"sessiondesk/clock"
	"sessiondesk/config"
	"sessiondesk/session"
	"sessiondesk/store"
)

// t0 is where every test's manual clock starts.
var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// testApp is a whole Sessiondesk on a random loopback port, with a temporary
// data folder and a manual clock.
type testApp struct {
	*app.App
	clock *clock.Manual
	// base is where the browser opens pages (the proxy's address when there is one).
	base string
	// direct is the app's own address, for the test's HTTP calls.
	direct string
}

type appOptions struct {
	publicURL string
	// env is the app's environment (SESSIONDESK_AUTH and the like); nil: none.
	env map[string]string
	// listener, when set, is served (its URL the public URL, when none is given).
	listener net.Listener
}

// startApp starts an app; it stops at the end of the test. Its logs are shown
// when the test fails.
func startApp(t *testing.T, opts appOptions) *testApp {
	t.Helper()
	needBrowser(t) // skip before anything starts
	args := []string{"--addr", "127.0.0.1:0", "--data", t.TempDir(), "--no-demo"}
	if opts.listener != nil {
		args[1] = opts.listener.Addr().String()
		if opts.publicURL == "" {
			opts.publicURL = "http://" + args[1]
		}
	}
	if opts.publicURL != "" {
		args = append(args, "--public-url", opts.publicURL)
	}
	cfg, err := config.Parse(args, func(k string) string { return opts.env[k] }, io.Discard)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	clk := clock.NewManual(t0)
	a, err := app.New(context.Background(), cfg, app.Options{
		Now:      clk.Now,
		Listener: opts.listener,
		Log:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("app run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("the app did not stop within 20 s")
		}
		if t.Failed() {
			t.Logf("app logs:\n%s", logs.String())
		}
	})
	return &testApp{App: a, clock: clk, base: a.URL(), direct: "http://" + a.Addr().String()}
}

// clientWrites plays a sandbox client writing to the business, through the
// sandbox's HTTP API, and returns the conversation's id.
func (ta *testApp) clientWrites(t *testing.T, from, name, text string) int64 {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"from": from, "name": name, "text": text})
	res, err := http.Post(ta.direct+"/sandbox/messages", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("client %s writes: %v", from, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("client %s writes: %d %s", from, res.StatusCode, b)
	}
	var out struct {
		Message struct {
			ConversationID int64 `json:"conversation_id"`
		} `json:"message"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Message.ConversationID == 0 {
		t.Fatalf("client %s writes: answer %s (%v)", from, b, err)
	}
	return out.Message.ConversationID
}

// receive stores a client message straight through the store (the fast way to
// build up a long conversation).
func (ta *testApp) receive(t *testing.T, phone, name, text string) int64 {
	t.Helper()
	rec, err := ta.Store.ReceiveClientMessage(context.Background(), store.ClientMessage{
		Phone: phone, Name: name, Kind: session.Text, Text: text,
	})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return rec.Message.ConversationID
}

// reply stores an agent's reply straight through the store.
func (ta *testApp) reply(t *testing.T, conv int64, text string) {
	t.Helper()
	if _, err := ta.Store.AcceptBusinessMessages(context.Background(), store.BusinessSend{
		ConversationID: conv, Parts: []session.Part{{Kind: session.Text, Text: text}},
	}); err != nil {
		t.Fatalf("reply: %v", err)
	}
}

// lastEventID is the id of the newest event in the store.
func (ta *testApp) lastEventID(t *testing.T) int64 {
	t.Helper()
	var id int64
	if err := ta.Store.Read(context.Background(), func(r *store.Reader) error {
		var err error
		id, err = r.LastEventID(context.Background())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// syncBuffer is a bytes.Buffer safe for the app's concurrent logging.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// flakyProxy is a reverse proxy in front of the app that can cut every open
// websocket abruptly (the browser sees close code 1006, as when a network
// drops) and refuse new ones until it is told to let them through again.
type flakyProxy struct {
	ln       net.Listener
	srv      *http.Server
	down     atomic.Bool
	upgrades atomic.Int32 // websocket upgrades let through

	mu     sync.Mutex
	tunnel map[net.Conn]struct{} // hijacked browser connections (open websockets)
}

// listenProxy binds the proxy's port first, so that the app can be configured
// with the proxy's URL as its public URL.
func listenProxy(t *testing.T) *flakyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return &flakyProxy{ln: ln, tunnel: map[net.Conn]struct{}{}}
}

func (p *flakyProxy) URL() string { return "http://" + p.ln.Addr().String() }

// serve proxies to the app at target until the test ends.
func (p *flakyProxy) serve(t *testing.T, target string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
	}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
				if p.down.Load() {
					http.Error(w, "proxy: down", http.StatusServiceUnavailable)
					return
				}
				p.upgrades.Add(1)
			}
			rp.ServeHTTP(w, r)
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateHijacked {
				p.mu.Lock()
				p.tunnel[c] = struct{}{}
				p.mu.Unlock()
			}
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("proxy: %v", err)
		}
	}()
	t.Cleanup(func() {
		p.cut()
		_ = p.srv.Close()
	})
}

// cut closes every open websocket without a close frame.
func (p *flakyProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.tunnel {
		_ = c.Close()
		delete(p.tunnel, c)
	}
}

// goDown cuts the open websockets and refuses new ones; goUp lets them through.
func (p *flakyProxy) goDown() { p.down.Store(true); p.cut() }
func (p *flakyProxy) goUp()   { p.down.Store(false) }

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Timeouts. waitTimeout bounds every wait, generously, so that a slow CI
// machine is not a failure; the scenarios that promise "within a second"
// measure the time themselves and compare it with a second.
const (
	waitTimeout  = 5 * time.Second
	pollInterval = 15 * time.Millisecond
	tabTimeout   = 45 * time.Second // a whole test's browser work
)

// tab is one browser tab.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

type tabOptions struct {
	// bypassCSP turns the page's Content-Security-Policy off, for the test
	// that checks escaping must not be shielded by it.
	bypassCSP bool
}

// newTab opens a tab in the shared browser; it closes at the end of the test.
// The test fails if a page in it throws an uncaught exception or breaks its own
// Content-Security-Policy.
func newTab(t *testing.T, opts tabOptions) *tab {
	t.Helper()
	needBrowser(t)
	// Each tab gets its own browser context (like a separate profile): no
	// shared cookies or cache between tests, and closing it closes its
	// connections, so the app's graceful shutdown does not wait on an idle
	// preconnected socket.
	tabCtx, cancelTab := chromedp.NewContext(browser.ctx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(tabCtx); err != nil { // opens the tab
		cancelTab()
		t.Fatalf("open a tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tabCtx, tabTimeout)
	tb := &tab{t: t, ctx: ctx}
	messages := chromedp.Console(tabCtx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m)
			tb.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		tb.mu.Lock()
		for _, m := range tb.console {
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				t.Errorf("browser console: %s (%s)", m, m.URL)
			}
		}
		if t.Failed() {
			for _, m := range tb.console {
				t.Logf("browser console: %s", m)
			}
		}
		tb.mu.Unlock()
		cancel()
		cancelTab()
		<-done
	})
	if opts.bypassCSP {
		if _, err := chromedp.Run(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true})
			return err
		})); err != nil {
			t.Fatalf("bypass CSP: %v", err)
		}
	}
	return tb
}

// do runs actions in the tab.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// open loads a page and waits until htmx has taken it over.
func (tb *tab) open(url string) {
	tb.t.Helper()
	tb.do("open "+url, chromedp.Navigate(url))
	tb.waitSettled("the page " + url + " is loaded and htmx has processed it")
}

// reload reloads the page and waits for it like open.
func (tb *tab) reload() {
	tb.t.Helper()
	tb.do("reload", chromedp.Reload())
	tb.waitSettled("the page is reloaded and htmx has processed it")
}

// waitSettled waits until htmx has processed every element it drives and no
// request, swap or settle is under way. htmx wires up swapped-in content only
// when it settles (20 ms after the swap): a form clicked before that is
// submitted the plain way, which reloads the page.
func (tb *tab) waitSettled(what string) {
	tb.t.Helper()
	tb.waitFor(what, htmxSettledJS)
}

const htmxSettledJS = `(function () {
	if (!window.htmx || document.readyState !== 'complete') return false;
	var driven = document.querySelectorAll('[hx-post], [hx-get], [ws-connect]');
	for (var i = 0; i < driven.length; i++) {
		var d = driven[i]['htmx-internal-data'];
		if (!d || !d.initHash) return false;
	}
	return !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling');
})()`

// eval evaluates a JS expression in the page.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls the JS expression until it is truthy and returns how long that
// took. It fails the test after waitTimeout. An expression that throws (an
// element not there yet) counts as false.
func (tb *tab) waitFor(what, expr string) time.Duration {
	tb.t.Helper()
	return tb.waitForWithin(what, expr, waitTimeout)
}

func (tb *tab) waitForWithin(what, expr string, timeout time.Duration) time.Duration {
	tb.t.Helper()
	// The page's own timer bounds the poll; the context is a backstop in case
	// the page itself hangs.
	ctx, cancel := context.WithTimeout(tb.ctx, timeout+5*time.Second)
	defer cancel()
	start := time.Now()
	var err error
	for {
		// Interval polling, not requestAnimationFrame: a tab in the background
		// (the agent's, while the phone's is in front) gets no animation frames.
		_, err = chromedp.Run(ctx, chromedp.Poll[bool](
			`(function () { try { return !!(`+expr+`); } catch (e) { return false; } })()`,
			chromedp.WithPollingInterval(pollInterval), chromedp.WithPollingTimeout(timeout-time.Since(start))))
		// A navigation while polling destroys the page the poll ran in; the
		// expression is asked again of the page that replaced it.
		if err == nil || !navigatedAway(err) || time.Since(start) >= timeout {
			break
		}
		time.Sleep(pollInterval)
	}
	took := time.Since(start)
	switch {
	case errors.Is(err, chromedp.ErrPollingTimeout):
		tb.t.Fatalf("waiting until %s: not after %v", what, timeout)
	case err != nil:
		tb.t.Fatalf("waiting until %s: %v (after %v)", what, err, took.Round(time.Millisecond))
	}
	return took
}

// navigatedAway reports whether err is the browser saying the page an
// evaluation ran in is gone (the tab navigated meanwhile).
func navigatedAway(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Cannot find context with specified id") ||
		strings.Contains(msg, "Execution context was destroyed") ||
		strings.Contains(msg, "Inspected target navigated or closed")
}

// waitSocket waits until the page's live websocket is open.
func (tb *tab) waitSocket() {
	tb.t.Helper()
	tb.waitFor("the page's websocket is open", socketOpenJS)
}

// socketOpenJS: the htmx ws extension keeps its socket wrapper in the
// element's htmx internal data.
const socketOpenJS = `(function () {
	var el = document.querySelector('[ws-connect]');
	var d = el && el['htmx-internal-data'];
	return !!(d && d.webSocket && d.webSocket.socket && d.webSocket.socket.readyState === WebSocket.OPEN);
})()`

// setMarker puts a marker on window that a reload would wipe out.
func (tb *tab) setMarker() {
	tb.t.Helper()
	eval[chromedp.Void](tb, `window.__marker = 1`)
}

// checkNoReload fails the test when the marker is gone.
func (tb *tab) checkNoReload() {
	tb.t.Helper()
	if !eval[bool](tb, `window.__marker === 1`) {
		tb.t.Error("the page reloaded (window.__marker is gone)")
	}
}

// text is the trimmed textContent of the first element matching css, "" when none does.
func (tb *tab) text(css string) string {
	tb.t.Helper()
	return eval[string](tb, `(function () { var el = document.querySelector(`+js(css)+`); return el ? el.textContent.trim() : ''; })()`)
}

// screenshot saves a full-page PNG into docs/screenshots when
// SESSIONDESK_SCREENSHOTS=1.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	if os.Getenv("SESSIONDESK_SCREENSHOTS") != "1" {
		return
	}
	// No text caret in the picture.
	eval[chromedp.Void](tb, `document.activeElement && document.activeElement.blur()`)
	buf, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// testid is the CSS selector of a data-testid.
func testid(id string) string { return fmt.Sprintf(`[data-testid=%q]`, id) }

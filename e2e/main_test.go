// Package e2e drives the whole inbox in a real browser: one headless Chromium
// shared by the package, a fresh tab per test, and a fresh app per test (its
// own data folder, a manual clock, no demo clients).
//
// Without a Chromium on PATH the tests skip, unless SESSIONDESK_E2E=1 asks for
// them (CI does), in which case they fail. SESSIONDESK_SCREENSHOTS=1 also
// writes the screenshots of the main screens into docs/screenshots.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const noBrowserMsg = "no chromium found: install it (apt-get install -y chromium) or set SESSIONDESK_E2E=1 to require it"

// browser is the Chromium every test opens its tabs in.
var browser struct {
	ctx context.Context // a chromedp context with a running browser; nil when there is none
	err error           // why there is none: errNoBrowser, or a failed start
}

var errNoBrowser = errors.New(noBrowserMsg)

// browserRequired reports whether a missing browser fails the tests instead of
// skipping them.
func browserRequired() bool { return os.Getenv("SESSIONDESK_E2E") == "1" }

func findBrowser() (string, bool) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, true
		}
	}
	return "", false
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	path, ok := findBrowser()
	if !ok {
		browser.err = errNoBrowser
		return m.Run()
	}
	profile, err := os.MkdirTemp("", "sessiondesk-e2e-chromium-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(profile)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// Without these the browser stalls on a machine with no network.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1400, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()

	// The first Do starts the browser and ties it to ctx, so it gets no
	// deadline of its own: a watchdog cancels it if the start hangs.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err = <-started:
	case <-time.After(30 * time.Second):
		cancel()
		err = errors.New("the browser did not start within 30 s")
	}
	if err != nil {
		browser.err = fmt.Errorf("start %s: %w", path, err)
	} else {
		browser.ctx = ctx
	}
	return m.Run()
}

// needBrowser skips or fails the test when there is no browser.
func needBrowser(t *testing.T) {
	t.Helper()
	switch {
	case browser.err == nil:
	case errors.Is(browser.err, errNoBrowser) && !browserRequired():
		t.Skip(noBrowserMsg)
	case errors.Is(browser.err, errNoBrowser):
		t.Fatal("SESSIONDESK_E2E=1 requires the browser tests, but no chromium, chromium-browser or google-chrome is on PATH: install it (apt-get install -y chromium)")
	default:
		t.Fatalf("browser: %v", browser.err)
	}
}

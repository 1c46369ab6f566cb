package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the browser's emulated zone, on a machine without zoneinfo

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"sessiondesk/session"
	"sessiondesk/store"
)

const (
	anna     = "+61491570157"
	annaName = "Anna Schmidt"
)

// inZone makes the tab's browser believe it is in zone.
func (tb *tab) inZone(zone string) {
	tb.t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone})
		return err
	})); err != nil {
		tb.t.Fatalf("emulate the time zone %s: %v", zone, err)
	}
}

// titleJS is the tab's title.
const titleJS = `document.title`

// Every time an agent reads is in the browser's zone, from the server's
// instant: the thread's times and their tooltips, the panel's session ends,
// the list's tooltip, and a refusal that names a time (which the server writes
// in UTC for the API) all agree.
func TestTimesShowInTheBrowsersZone(t *testing.T) {
	const zone = "Asia/Kathmandu" // +05:45: no server runs in it by accident
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	ta := startApp(t, appOptions{})
	conv := ta.clientWrites(t, olga, olgaName, "Hello, my order #1182 is late") // at t0; the session ends at t0+24h
	ta.clock.Set(t0.Add(24*time.Hour + 30*time.Minute))
	ta.clientWrites(t, ivan, ivanName, "Where is my invoice?") // an open session, ending at t0+48h30m

	tb := newTab(t, tabOptions{})
	tb.inZone(zone)
	tb.open(convURL(ta, conv))

	ends := t0.Add(24 * time.Hour).In(loc).Format("2 Jan 15:04")
	if got := tb.text(testid("session-ends")); got != ends {
		t.Errorf("the panel says the session ends %q, want %q (the browser's zone)", got, ends)
	}
	if got, want := tb.text(testid("session-started")), t0.In(loc).Format("2 Jan 15:04"); got != want {
		t.Errorf("the panel says the session started %q, want %q", got, want)
	}
	if got, want := tb.text(`#thread-messages `+testid("message-time")), t0.In(loc).Format("15:04"); got != want {
		t.Errorf("the message's time reads %q, want %q", got, want)
	}
	tip := eval[string](tb, `document.querySelector('#thread-messages [data-testid="message-time"]').title`)
	if want := t0.In(loc).Format("Mon 2 Jan 2006 15:04:05"); !strings.HasPrefix(tip, want) {
		t.Errorf("the message's tooltip reads %q, want it to start with %q", tip, want)
	}
	ivanEnds := t0.Add(48*time.Hour + 30*time.Minute).In(loc).Format("2 Jan 15:04")
	badge := eval[string](tb, `Array.from(document.querySelectorAll('#conversation-list [data-testid="conversation-row"]')).filter(function (r) {
		return r.textContent.indexOf(`+js(ivanName)+`) >= 0; })[0].querySelector('[data-testid="session-badge"]').title`)
	if badge != "Session ends "+ivanEnds {
		t.Errorf("Ivan's badge tooltip reads %q, want %q", badge, "Session ends "+ivanEnds)
	}

	// The composer's reason for the closed window names the same time.
	reason := tb.text(testid("composer-reason"))
	if got := tb.text(testid("composer-reason") + " " + testid("refusal-time")); got != ends {
		t.Errorf("the composer's reason %q names %q, want %q like the panel", reason, got, ends)
	}
	if strings.Contains(reason, "UTC") {
		t.Errorf("the composer's reason %q still speaks UTC", reason)
	}
	if !strings.Contains(reason, "closed at "+ends+": ") {
		t.Errorf("the composer's reason %q, want it to say %q", reason, "closed at "+ends+": ")
	}
	// So does the refusal of a send tried anyway.
	tb.do("type a reply", chromedp.SendKeys(chromedp.CSS(`#composer-text`), "Are you there?"))
	eval[chromedp.Void](tb, `document.getElementById('composer').requestSubmit()`)
	tb.waitFor("the refusal shows", `document.querySelector('[data-testid="composer-error"][data-code="window_closed"]')`)
	if got := tb.text(testid("composer-error") + " " + testid("refusal-time")); got != ends {
		t.Errorf("the refused send names %q, want %q like the panel (%s)", got, ends, tb.text(testid("composer-error")))
	}
}

// The rest of the panel speaks the same clock: an earlier session's start and
// end, when a delivery report flagged the client, and the last consent are
// all in the browser's zone, not the server's.
func TestPanelHistoryFlagsAndConsentShowInTheBrowsersZone(t *testing.T) {
	const zone = "Asia/Kathmandu"
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ta := startApp(t, appOptions{})
	conv := ta.clientWrites(t, olga, olgaName, "Hello, my order #1182 is late") // session 1, from t0
	wrote := t0.Add(25 * time.Hour)
	ta.clock.Set(wrote)
	ta.clientWrites(t, olga, olgaName, "Anyone there?") // session 2: session 1 is history
	msgs, err := ta.Store.AcceptBusinessMessages(ctx, store.BusinessSend{ConversationID: conv,
		Parts: []session.Part{{Kind: session.Text, Text: "Sorry, looking now"}}})
	if err != nil {
		t.Fatal(err)
	}
	flagged := wrote.Add(10 * time.Minute)
	ta.clock.Set(flagged)
	if set, err := ta.Store.FlagFromReport(ctx, store.MessageRef{ID: msgs[0].ID}, "No suitable device"); err != nil || len(set) != 1 {
		t.Fatalf("flag the client: %v %v", set, err)
	}

	tb := newTab(t, tabOptions{})
	tb.inZone(zone)
	tb.open(convURL(ta, conv))
	day := func(at time.Time) string { return at.In(loc).Format("2 Jan 15:04") }
	date := func(at time.Time) string { return at.In(loc).Format("2 Jan 2006 15:04:05") }
	past := testid("past-session") + " "
	if got, want := tb.text(past+testid("past-session-started")), day(t0); got != want {
		t.Errorf("session 1 started %q in the history, want %q (the browser's zone)", got, want)
	}
	if got, want := tb.text(past+testid("past-session-ends")), day(t0.Add(24*time.Hour)); got != want {
		t.Errorf("session 1 ended %q in the history, want %q", got, want)
	}
	if got, want := tb.text(past+".history-line"), day(t0)+" – "+day(t0.Add(24*time.Hour)); got != want {
		t.Errorf("the history line reads %q, want %q", got, want)
	}
	if got, want := tb.text(testid("contact-flag")+" .panel-sub"), "(No suitable device, "+date(flagged)+")"; got != want {
		t.Errorf("the flag reads %q, want %q", got, want)
	}
	if got, want := tb.text(testid("last-consent")), "Last consent "+date(wrote)+" Export"; got != want {
		t.Errorf("the last consent reads %q, want %q", got, want)
	}
}

// A GET of the conversation leaves it unread; the page's own POST marks it
// read once it is shown, and the tab title counts the unread conversations.
func TestOpeningMarksReadAndTitleCountsUnread(t *testing.T) {
	ta := startApp(t, appOptions{})
	conv := ta.clientWrites(t, olga, olgaName, "Hello")
	ta.clock.Add(time.Minute)
	ta.clientWrites(t, ivan, ivanName, "Hi there")

	tb := newTab(t, tabOptions{})
	tb.open(ta.base + "/")
	tb.waitSocket()
	if got := eval[string](tb, titleJS); !strings.HasPrefix(got, "(2) ") || !strings.HasSuffix(got, "Sessiondesk") {
		t.Errorf("the title is %q with two unread conversations, want (2) … Sessiondesk", got)
	}
	tb.open(convURL(ta, conv))
	tb.waitFor("Olga's conversation is read: her row has no unread badge", `(function () {
		var row = document.querySelector('#conversation-list [data-conversation-id="`+i64s(conv)+`"]');
		return row && !row.classList.contains('is-unread');
	})()`)
	tb.waitFor("the title counts one unread conversation", titleJS+` === '(1) '+`+js(olgaName+" · Sessiondesk"))

	ta.clock.Add(time.Minute)
	ta.clientWrites(t, anna, annaName, "My package arrived damaged")
	tb.waitFor("a new client's message makes it two", titleJS+` === '(2) '+`+js(olgaName+" · Sessiondesk"))
}

// After Ctrl+Enter sends, Escape leaves the composer and j moves to the next
// conversation.
func TestEscapeLeavesTheComposerForJ(t *testing.T) {
	ta := startApp(t, appOptions{})
	closed := ta.clientWrites(t, ivan, ivanName, "An old question")
	ta.clock.Add(25 * time.Hour)
	conv := ta.clientWrites(t, olga, olgaName, "Hello") // top of the list; Ivan's below

	tb := newTab(t, tabOptions{})
	tb.open(convURL(ta, conv))
	tb.waitSocket()
	tb.do("type a reply and send it with Ctrl+Enter",
		chromedp.SendKeys(chromedp.CSS(`#composer-text`), "Hello Olga"),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
	)
	tb.waitFor("the reply is in the thread", countTextJS("Hello Olga")+` === 1 && document.getElementById('composer-text').value === ''`)
	if tag := eval[string](tb, `document.activeElement ? document.activeElement.id : ''`); tag != "composer-text" {
		t.Logf("after the send the focus is on %q", tag)
	}
	eval[chromedp.Void](tb, `document.getElementById('composer-text').focus()`)
	tb.do("press Escape, then j", chromedp.KeyEvent(kb.Escape), chromedp.KeyEvent("j"))
	tb.waitNavigated("j opened Ivan's conversation", "/c/"+i64s(closed))
}

// A closed session does not count the replies left before the client must
// reply: none may go until the client writes.
func TestClosedSessionCountsNoReplies(t *testing.T) {
	ta := startApp(t, appOptions{})
	closed := ta.clientWrites(t, ivan, ivanName, "An old question")
	ta.clock.Add(25 * time.Hour)
	tb := newTab(t, tabOptions{})
	tb.open(convURL(ta, closed))
	if got := tb.text(testid("countdown")); got != "closed" {
		t.Fatalf("the session reads %q, want closed", got)
	}
	if txt := tb.text(`#session-panel`); strings.Contains(txt, "more before the client must reply") {
		t.Errorf("the closed session's panel still counts replies: %q", txt)
	}
	if txt := tb.text(`#composer`); strings.Contains(txt, "more before the client must reply") {
		t.Errorf("the closed session's composer still counts replies: %q", txt)
	}
}

// openOlgasHello starts the inbox with Olga's "Hello" and opens her
// conversation in a tab whose websocket is connected.
func openOlgasHello(t *testing.T) *tab {
	ta := startApp(t, appOptions{})
	conv := ta.clientWrites(t, olga, olgaName, "Hello")
	tb := newTab(t, tabOptions{})
	tb.open(convURL(ta, conv))
	tb.waitSocket()
	return tb
}

// contrastJS is the WCAG 2 contrast ratio of the element's text colour on the
// first opaque background behind it, as the browser computes both.
const contrastJS = `(function (sel) {
	var el = document.querySelector(sel);
	if (!el) { return -1; }
	function rgb(s) { return (s.match(/[\d.]+/g) || []).map(Number); }
	function lum(c) {
		var v = c.slice(0, 3).map(function (x) {
			x /= 255;
			return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4);
		});
		return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
	}
	var fg = rgb(getComputedStyle(el).color);
	var bg = [255, 255, 255, 1];
	for (var n = el; n && n.nodeType === 1; n = n.parentElement) {
		var b = rgb(getComputedStyle(n).backgroundColor);
		if (b.length === 3 || (b.length === 4 && b[3] === 1)) { bg = b; break; }
	}
	var a = lum(fg), b2 = lum(bg);
	return (Math.max(a, b2) + 0.05) / (Math.min(a, b2) + 0.05);
})`

// The composer's hint and its character counter (plain, near the limit and
// over it) are readable: WCAG AA asks 4.5:1 for text of their size.
func TestComposerHintAndCounterMeetAAContrast(t *testing.T) {
	tb := openOlgasHello(t)
	ratio := func(sel string) float64 { return eval[float64](tb, contrastJS+`(`+strconv.Quote(sel)+`)`) }
	setText := func(n int) {
		eval[chromedp.Void](tb, `(function () { var t = document.getElementById('composer-text');
			t.value = 'x'.repeat(`+strconv.Itoa(n)+`); t.dispatchEvent(new Event('input', {bubbles: true})); })()`)
	}
	limit := eval[int](tb, `Number(document.querySelector('[data-char-counter]').getAttribute('data-max'))`)
	if limit <= 0 {
		t.Fatalf("the counter carries no limit (data-max %d)", limit)
	}
	for _, c := range []struct {
		what, sel string
		chars     int
	}{
		{"the hint", `.composer-hint`, 0},
		{"the counter", testid("char-count"), 10},
		{"the counter near the limit", testid("char-count") + `.is-near`, limit - 5},
		{"the counter over the limit", testid("char-count") + `.is-over`, limit + 5},
	} {
		setText(c.chars)
		tb.waitFor(c.what+" is shown", `!!document.querySelector(`+strconv.Quote(c.sel)+`)`)
		if r := ratio(c.sel); r < 4.5 {
			t.Errorf("%s has a contrast of %.2f:1, want at least 4.5:1 (WCAG AA)", c.what, r)
		} else {
			t.Logf("%s: %.2f:1", c.what, r)
		}
	}
}

// The composer refuses what the server would, with the server's limits: text
// over the limit, an SVG, a file too large, a name too long (with a button
// that renames it); picking again adds to the selection. Nothing is uploaded
// for a refusal.
func TestComposerRefusesBeforeSending(t *testing.T) {
	tb := openOlgasHello(t)
	send := `document.querySelector(` + js(testid("composer-send")) + `)`

	// Text: the limit comes from the form (the server's setting).
	if max := eval[string](tb, `document.getElementById('composer').getAttribute('data-text-max')`); max != "1000" {
		t.Fatalf("the composer's text limit is %q, want the server's 1000", max)
	}
	setText := func(n int) {
		eval[chromedp.Void](tb, `(function () { var ta = document.getElementById('composer-text');
			ta.value = 'é'.repeat(`+strconv.Itoa(n)+`); ta.dispatchEvent(new Event('input', {bubbles: true})); })()`)
	}
	setText(1001)
	tb.waitFor("Send is disabled over the text limit", send+`.disabled`)
	if usage := tb.text(testid("composer-usage")); !strings.Contains(usage, "Shorten it by 1") {
		t.Errorf("over the limit the composer says %q", usage)
	}
	setText(1000)
	tb.waitFor("Send is enabled at the limit", `!`+send+`.disabled`)
	setText(0)

	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	svg := file("logo.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`))
	big := file("photo.png", append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 5_000_001)...))
	long := file("invoice-for-order-1182-november.pdf", []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"))

	// The page's own requests are over (its mark-read post has shown).
	tb.waitFor("the conversation is read", `!document.querySelector('#conversation-list .row.is-unread')`)
	tb.waitSettled("nothing is under way")
	eval[chromedp.Void](tb, `window.__requests = performance.getEntriesByType('resource').length`)
	pick := func(what string, paths ...string) {
		tb.do(what, chromedp.SetUploadFiles(chromedp.CSS(`#composer-files`), paths))
	}
	pick("pick an SVG", svg)
	tb.waitFor("the SVG's preview shows the refusal", `(function () {
		var r = document.querySelector('#composer-previews [data-testid="composer-preview-refusal"]');
		return r && r.textContent.indexOf('SVG') >= 0;
	})()`)
	tb.waitFor("Send is disabled with a refused file", send+`.disabled`)

	pick("pick a large image and a long-named PDF", big, long)
	tb.waitFor("picking again adds to the selection", previewCountJS+` === 3`)
	if n := eval[int](tb, `document.getElementById('composer-files').files.length`); n != 3 {
		t.Errorf("the file input holds %d files, want the 3 picked", n)
	}
	refusals := eval[[]string](tb, `Array.from(document.querySelectorAll('#composer-previews [data-testid="composer-preview-refusal"]')).map(function (e) { return e.textContent; })`)
	if len(refusals) != 3 || !strings.Contains(refusals[1], "5.1 MB") || !strings.Contains(refusals[1], "at most 5 MB") ||
		!strings.Contains(refusals[2], "at most 25") {
		t.Errorf("the previews refuse %q, want the SVG, the image over 5 MB and the name over 25 characters", refusals)
	}
	if reqs := eval[[]string](tb, `performance.getEntriesByType('resource').slice(window.__requests).map(function (e) { return e.name; })`); len(reqs) != 0 {
		t.Errorf("requests went out for refused files: %q, want none", reqs)
	}

	// Remove the SVG and the image; rename the PDF.
	for range 2 {
		tb.do("remove the first preview", chromedp.Click(chromedp.CSS(`#composer-previews [data-testid="composer-preview-remove"]`)))
	}
	tb.waitFor("one preview is left", previewCountJS+` === 1`)
	tb.do("rename the PDF", chromedp.Click(chromedp.CSS(testid("composer-preview-rename"))))
	tb.waitFor("the renamed PDF is accepted", `!document.querySelector('[data-testid="composer-preview-refusal"]')`)
	renamed := tb.text(testid("composer-preview-name"))
	if n := len([]rune(renamed)); n > 25 || !strings.HasSuffix(renamed, ".pdf") || !strings.HasPrefix(renamed, "invoice-for-order") {
		t.Errorf("the PDF was renamed to %q, want at most 25 characters ending in .pdf", renamed)
	}
	tb.waitFor("Send is enabled", `!`+send+`.disabled`)
	tb.do("send", chromedp.Click(chromedp.CSS(testid("composer-send"))))
	tb.waitFor("the renamed PDF is in the thread", fileCardJS(`#thread-messages [data-direction="out"]`, renamed))
}

// The composer's text limit is the server's setting, not a number the page
// knows: with --text-max 120 the counter, the usage line and Send all follow it.
func TestComposerTextLimitIsTheServers(t *testing.T) {
	ta := startApp(t, appOptions{env: map[string]string{"SESSIONDESK_TEXT_MAX": "120"}})
	conv := ta.clientWrites(t, olga, olgaName, "Hello")
	tb := newTab(t, tabOptions{})
	tb.open(convURL(ta, conv))
	tb.waitSocket()
	send := `document.querySelector(` + js(testid("composer-send")) + `)`
	setText := func(n int) {
		eval[chromedp.Void](tb, `(function () { var ta = document.getElementById('composer-text');
			ta.value = 'é'.repeat(`+strconv.Itoa(n)+`); ta.dispatchEvent(new Event('input', {bubbles: true})); })()`)
	}
	setText(121)
	tb.waitFor("Send is disabled over the server's limit of 120", send+`.disabled`)
	if usage := tb.text(testid("composer-usage")); !strings.Contains(usage, "at most 120") {
		t.Errorf("over the limit the composer says %q, want the server's 120", usage)
	}
	if got := tb.text(testid("char-count")); got != "121/120" {
		t.Errorf("the counter reads %q, want 121/120", got)
	}
	setText(120)
	tb.waitFor("Send is enabled at the server's limit", `!`+send+`.disabled`)
}

// waitNavigated waits until the tab shows path (polling across the navigation,
// which a page-side poll does not survive) and htmx has taken the page over.
func (tb *tab) waitNavigated(what, path string) {
	tb.t.Helper()
	tb.waitURL(what, `location.pathname`, path)
}

// waitURL waits until the loaded page's part (a JS expression on location)
// reads want, then until htmx has settled it.
func (tb *tab) waitURL(what, part, want string) {
	tb.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.readyState === 'complete' ? `+part+` : ''`))
		if err == nil && got == want {
			break
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("waiting until %s: the tab shows %q (%v)", what, got, err)
		}
		time.Sleep(pollInterval)
	}
	tb.waitSettled(what)
}

func i64s(n int64) string { return strconv.FormatInt(n, 10) }

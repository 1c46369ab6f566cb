package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	olga     = "+375298603938"
	olgaName = "Olga Petrova"
	ivan     = "+375447771122"
	ivanName = "Ivan Kowalski"
)

// live is how soon a change must show on an open page.
const live = time.Second

func convURL(ta *testApp, id int64) string { return ta.base + "/c/" + strconv.FormatInt(id, 10) }

// firstRowJS is the conversation list's top row.
const firstRowJS = `document.querySelector('#conversation-list [data-testid="conversation-row"]')`

// countTextJS counts the thread's messages whose text is exactly s.
func countTextJS(s string) string {
	return `Array.from(document.querySelectorAll('#thread-messages [data-testid="message-text"]')).filter(function (e) { return e.textContent === ` + js(s) + `; }).length`
}

func TestLiveMessageAppearsWithoutReload(t *testing.T) {
	ta := startApp(t, appOptions{})
	ta.clientWrites(t, olga, olgaName, "Hello, my order #1182 is late")
	tb := newTab(t, tabOptions{})
	tb.open(ta.base + "/")
	tb.waitFor("Olga's conversation is listed", firstRowJS+` && `+firstRowJS+`.textContent.indexOf(`+js(olgaName)+`) >= 0`)
	tb.waitSocket()
	tb.setMarker()

	ta.clock.Add(time.Minute)
	ta.clientWrites(t, ivan, ivanName, "Where is my invoice?")
	// Both wait on us: Olga, whose session ends first, stays on top, and
	// Ivan's row comes in under her, unread.
	took := tb.waitFor("Ivan's row is listed under Olga's, unread", `(function () {
		var rows = document.querySelectorAll('#conversation-list [data-testid="conversation-row"]');
		if (rows.length !== 2) return false;
		var name = rows[1].querySelector('[data-testid="row-name"]');
		return name && name.textContent.trim() === `+js(ivanName)+` && rows[1].classList.contains('is-unread') &&
			rows[0].textContent.indexOf(`+js(olgaName)+`) >= 0;
	})()`)
	if took > live {
		t.Errorf("Ivan's message showed after %v, want within %v", took, live)
	}
	tb.checkNoReload()
	if n := eval[int](tb, `document.querySelectorAll('#conversation-list [data-testid="conversation-row"]').length`); n != 2 {
		t.Errorf("%d rows in the list, want 2", n)
	}
	if preview := tb.text(`#conversation-list [data-testid="conversation-row"]:nth-child(2) [data-testid="row-preview"]`); preview != "Where is my invoice?" {
		t.Errorf("Ivan's row previews %q", preview)
	}
}

func TestReplyWithCtrlEnterReachesPhoneAndTicksToSeen(t *testing.T) {
	ta := startApp(t, appOptions{})
	ta.clientWrites(t, ivan, ivanName, "I sent the invoice yesterday")
	ta.clock.Add(2 * time.Minute)
	conv := ta.clientWrites(t, olga, olgaName, "Hello, my order #1182 is late")
	ta.clock.Add(3 * time.Minute)

	agent := newTab(t, tabOptions{})
	agent.open(convURL(ta, conv))
	agent.waitSocket()
	agent.setMarker()

	const reply = "We are checking it now, Olga."
	agent.do("type the reply and press Ctrl+Enter",
		chromedp.SendKeys(chromedp.CSS(`#composer-text`), reply),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
	)
	outJS := `document.querySelector('#thread-messages [data-direction="out"]')`
	agent.waitFor("the reply is in the thread", outJS+` && `+outJS+`.querySelector('[data-testid="message-text"]').textContent === `+js(reply))
	// Watch every status the reply shows from now on.
	first := eval[string](agent, `(function () {
		var el = `+outJS+`, id = el.id;
		window.__statuses = [el.getAttribute('data-status')];
		new MutationObserver(function () {
			var cur = document.getElementById(id);
			var s = cur && cur.getAttribute('data-status');
			if (s && window.__statuses[window.__statuses.length - 1] !== s) window.__statuses.push(s);
		}).observe(document.getElementById('thread-messages'), {subtree: true, childList: true, attributes: true, attributeFilter: ['data-status']});
		return window.__statuses[0];
	})()`)
	if first != "queued" && first != "sent" {
		t.Errorf("right after sending the reply is %q, want queued or sent", first)
	}
	if v := eval[string](agent, `document.getElementById('composer-text').value`); v != "" {
		t.Errorf("the composer still holds %q after the send", v)
	}

	phone := newTab(t, tabOptions{})
	phone.open(ta.base + "/sandbox?phone=%2B375298603938")
	phone.waitFor("the phone shows the reply", `Array.from(document.querySelectorAll('#sandbox-messages [data-direction="out"] [data-testid="sandbox-message-text"]')).some(function (e) { return e.textContent === `+js(reply)+`; })`)
	phone.screenshot("sandbox.png")

	agent.waitFor("the reply is seen", outJS+`.getAttribute('data-status') === 'seen'`)
	agent.waitFor("the ticks say seen", outJS+`.querySelector('[data-testid="message-ticks"]').getAttribute('title') === 'Seen'`)
	statuses := eval[[]string](agent, `window.__statuses`)
	rank := map[string]int{"queued": 1, "sent": 2, "delivered": 3, "seen": 4}
	for i, s := range statuses {
		if rank[s] == 0 || i > 0 && rank[s] <= rank[statuses[i-1]] {
			t.Errorf("the reply's statuses went %v, want a rise through queued, sent, delivered, seen", statuses)
			break
		}
	}
	agent.checkNoReload()
	agent.screenshot("inbox.png")
}

func TestCountdownTicksAndTurnsAmberThenRed(t *testing.T) {
	ta := startApp(t, appOptions{})
	conv := ta.clientWrites(t, olga, olgaName, "Hello") // session 1: t0 to t0+24h
	tb := newTab(t, tabOptions{})
	tb.open(convURL(ta, conv))
	cd := testid("countdown")

	// It runs on the server's clock (S10), whatever the browser's says.
	before := tb.text(cd)
	if before != "24:00:00" && !strings.HasPrefix(before, "23:59:") {
		t.Fatalf("countdown reads %q, want about 24:00:00 (the server's clock, not the browser's)", before)
	}
	start := time.Now()
	tb.waitForWithin("the countdown ticks", `document.querySelector(`+js(cd)+`).textContent.trim() !== `+js(before), 3*time.Second)
	if after := tb.text(cd); !strings.HasPrefix(after, "23:59:") {
		t.Errorf("after %v the countdown reads %q, want 23:59:xx", time.Since(start).Round(time.Millisecond), after)
	}
	if eval[bool](tb, `document.querySelector(`+js(cd)+`).classList.contains('is-amber')`) {
		t.Error("the countdown is amber with a day left")
	}

	ta.clock.Set(t0.Add(23*time.Hour + 30*time.Minute))
	tb.reload()
	if got := tb.text(cd); got != "0:30:00" && !strings.HasPrefix(got, "0:29:") {
		t.Errorf("with half an hour left the countdown reads %q", got)
	}
	tb.waitFor("the countdown is amber in the last hour", `document.querySelector(`+js(cd)+`).classList.contains('is-amber')`)
	tb.waitFor("the list's countdown is amber too", `document.querySelector('#conversation-list .countdown').classList.contains('is-amber')`)
	if !eval[bool](tb, `!document.querySelector(`+js(testid("composer-send"))+`).disabled`) {
		t.Error("the send button is disabled with half an hour left")
	}

	ta.clock.Set(t0.Add(24*time.Hour + time.Minute))
	tb.reload()
	tb.waitFor("the countdown shows closed", `document.querySelector(`+js(cd)+`).classList.contains('is-closed')`)
	if got := tb.text(cd); got != "closed" {
		t.Errorf("after the end the countdown reads %q, want closed", got)
	}
	if !eval[bool](tb, `document.querySelector(`+js(testid("composer-send"))+`).disabled`) {
		t.Error("the send button is enabled after the window closed")
	}
	reason := tb.text(testid("composer-reason"))
	code := eval[string](tb, `document.querySelector(`+js(testid("composer-reason"))+`).getAttribute('data-code')`)
	if code != "window_closed" || !strings.Contains(reason, "closed") || !strings.Contains(reason, "window") {
		t.Errorf("the composer says %q (%s), want the closed window", reason, code)
	}
}

func TestLockedAfterFiveRepliesUnlocksWhenClientWrites(t *testing.T) {
	ta := startApp(t, appOptions{})
	conv := ta.clientWrites(t, olga, olgaName, "Hello, my order #1182 is late")
	ta.clock.Add(5 * time.Minute)
	tb := newTab(t, tabOptions{})
	tb.open(convURL(ta, conv))
	tb.waitSocket()
	tb.setMarker()

	send := testid("composer-send")
	for i := 1; i <= 5; i++ {
		text := fmt.Sprintf("Reply %d of 5", i)
		tb.waitSettled("the composer is ready for reply " + strconv.Itoa(i))
		tb.do("type reply "+strconv.Itoa(i),
			chromedp.WaitEnabled(chromedp.CSS(send)),
			chromedp.SendKeys(chromedp.CSS(`#composer-text`), text),
			chromedp.Click(chromedp.CSS(send)),
		)
		// Sent: the message is in the thread and the composer came back empty.
		tb.waitFor("reply "+strconv.Itoa(i)+" is in the thread and the composer is empty",
			countTextJS(text)+` === 1 && document.getElementById('composer-text').value === ''`)
	}
	tb.waitFor("the send button is disabled", `document.querySelector(`+js(send)+`).disabled`)
	reason := tb.text(testid("composer-reason"))
	if !strings.Contains(reason, "Waiting for the client's reply") {
		t.Errorf("the locked composer says %q, want it to wait for the client's reply", reason)
	}
	if n := eval[int](tb, `document.querySelectorAll('#thread-messages [data-direction="out"]').length`); n != 5 {
		t.Errorf("%d replies in the thread, want 5", n)
	}
	tb.screenshot("composer-locked.png")

	ta.clock.Add(time.Minute)
	ta.clientWrites(t, olga, olgaName, "Thanks, any news?")
	took := tb.waitFor("the send button is enabled again", `!document.querySelector(`+js(send)+`).disabled`)
	if took > live {
		t.Errorf("the composer unlocked after %v, want within %v", took, live)
	}
	tb.checkNoReload()
	if !strings.Contains(tb.text(testid("composer-usage")), "5 more before the client must reply") {
		t.Errorf("the unlocked composer says %q", tb.text(testid("composer-usage")))
	}
}

func TestRolloverAsksConfirmationThenNewSession(t *testing.T) {
	ta := startApp(t, appOptions{})
	// Session 1 uses its 60 messages, the client answering every 5 (S4).
	var conv int64
	for i := 0; i < 60; i++ {
		if i%5 == 0 {
			conv = ta.receive(t, olga, olgaName, fmt.Sprintf("Question %d", i/5+1))
			ta.clock.Add(time.Minute)
		}
		ta.reply(t, conv, fmt.Sprintf("Answer %d", i+1))
	}
	ta.receive(t, olga, olgaName, "One more thing")
	ta.clock.Add(time.Minute)

	tb := newTab(t, tabOptions{})
	tb.open(convURL(ta, conv))
	tb.waitSocket()
	tb.setMarker()
	if got := tb.text(testid("session-number")); got != "1" {
		t.Fatalf("session number %q, want 1", got)
	}
	tb.waitFor("the composer offers the confirmation", `document.querySelector(`+js(testid("composer-confirm"))+`)`)
	if !eval[bool](tb, `document.querySelector(`+js(testid("composer-send"))+`).disabled`) {
		t.Error("the send button is enabled: a send that begins a new billed session must be confirmed")
	}
	if note := tb.text(testid("composer-confirm-note")); !strings.Contains(note, "session 2") {
		t.Errorf("the composer's note %q does not say that session 2 begins", note)
	}

	const text = "Here is the tracking number: RB123456789BY"
	tb.waitSettled("the composer is ready")
	tb.do("type the reply", chromedp.SendKeys(chromedp.CSS(`#composer-text`), text))
	tb.screenshot("rollover-confirm.png")
	tb.do("confirm", chromedp.Click(chromedp.CSS(testid("composer-confirm"))))
	tb.waitFor("session 2 begins", `document.querySelector(`+js(testid("session-number"))+`).textContent.trim() === '2'`)
	tb.waitFor("the reply is in the thread", countTextJS(text)+` === 1`)
	if div := eval[string](tb, `(function () { var d = document.querySelectorAll('#thread-messages [data-testid="session-divider"]'); return d.length ? d[d.length - 1].textContent.trim() : ''; })()`); div != "Session 2 started" {
		t.Errorf("session divider %q, want Session 2 started", div)
	}
	tb.waitFor("the confirmation is gone", `!document.querySelector(`+js(testid("composer-confirm"))+`)`)
	if !strings.Contains(tb.text(testid("remaining")), "59 of 60") {
		t.Errorf("the panel says %q, want 59 of 60 left", tb.text(testid("remaining")))
	}
	tb.checkNoReload()
}

func TestClientHTMLRendersAsText(t *testing.T) {
	const (
		script = `<script>window.__pwned=1</script>`
		img    = `<img src=x onerror="window.__pwned=2">`
	)
	ta := startApp(t, appOptions{})
	conv := ta.clientWrites(t, olga, olgaName, "Hi "+script+" "+img)
	// The page's CSP would stop an injected script anyway: turn it off, so only
	// the escaping stands between the client's text and the page.
	tb := newTab(t, tabOptions{bypassCSP: true})
	tb.open(convURL(ta, conv))
	tb.waitSocket()
	check := func(when, text string) {
		t.Helper()
		if n := eval[int](tb, countTextJS(text)); n != 1 {
			t.Errorf("%s: %d messages read %q as text, want 1", when, n, text)
		}
		if eval[bool](tb, `document.querySelectorAll('img[src="x"], #thread-messages script, #conversation-list script, #conversation-list img').length > 0`) {
			t.Errorf("%s: the client's markup became elements", when)
		}
		if got := eval[string](tb, `typeof window.__pwned`); got != "undefined" {
			t.Errorf("%s: window.__pwned is %s: the client's markup ran", when, got)
		}
	}
	check("initial render", "Hi "+script+" "+img)

	liveText := img + " " + strings.ReplaceAll(script, "=1", "=3")
	ta.clientWrites(t, olga, olgaName, liveText)
	tb.waitFor("the second message arrives over the websocket", countTextJS(liveText)+` === 1`)
	check("live", liveText)
	if p := tb.text(testid("row-preview")); p != strings.Join(strings.Fields(liveText), " ") {
		t.Errorf("the list previews %q", p)
	}
}

func TestReconnectAfterServerClosesSocketShowsMissedOnce(t *testing.T) {
	proxy := listenProxy(t)
	ta := startApp(t, appOptions{publicURL: proxy.URL()})
	proxy.serve(t, ta.direct)
	conv := ta.clientWrites(t, olga, olgaName, "Hello")

	tb := newTab(t, tabOptions{})
	tb.open(convURL(ta, conv)) // through the proxy
	tb.waitSocket()
	tb.setMarker()

	// The connection drops; while it is down the client writes twice.
	proxy.goDown()
	tb.waitForWithin("the page sees its socket closed", `!(`+socketOpenJS+`)`, 10*time.Second)
	missed := []string{"Are you there?", "Hello??"}
	for _, m := range missed {
		ta.clock.Add(time.Minute)
		ta.clientWrites(t, olga, olgaName, m)
	}
	for _, m := range missed {
		if n := eval[int](tb, countTextJS(m)); n != 0 {
			t.Fatalf("%q reached the page while its socket was down", m)
		}
	}
	upgrades := proxy.upgrades.Load()
	proxy.goUp()

	// The page reconnects on its own (full-jitter backoff) and catches up.
	for _, m := range missed {
		tb.waitForWithin(fmt.Sprintf("%q shows after the reconnect", m), countTextJS(m)+` >= 1`, 10*time.Second)
	}
	if proxy.upgrades.Load() <= upgrades {
		t.Error("the messages showed without a new websocket")
	}
	// One more, live: once it shows, every frame before it has been applied.
	ta.clientWrites(t, olga, olgaName, "Found it, thanks")
	tb.waitFor("the live message after the reconnect shows", countTextJS("Found it, thanks")+` === 1`)
	tb.waitFor("the page's cursor is the last event", fmt.Sprintf(`Number(document.getElementById('live-cursor').getAttribute('data-last-event-id')) >= %d`, ta.lastEventID(t)))
	for _, m := range append([]string{"Hello"}, missed...) {
		if n := eval[int](tb, countTextJS(m)); n != 1 {
			t.Errorf("%q shows %d times, want once", m, n)
		}
	}
	if n := eval[int](tb, `document.querySelectorAll('#thread-messages [data-testid="message"]').length`); n != 4 {
		t.Errorf("%d messages in the thread, want 4", n)
	}
	tb.checkNoReload()
}

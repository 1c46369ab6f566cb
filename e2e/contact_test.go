package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"sessiondesk/store"
	"sessiondesk/views"
)

// visibleJS is true when the element matching css is laid out.
func visibleJS(css string) string {
	return `(function () { var e = document.querySelector(` + js(css) + `); return !!e && e.getClientRects().length > 0; })()`
}

func widthJS(css string) string {
	return `document.querySelector(` + js(css) + `).getBoundingClientRect().width`
}

// At 390×844 (a phone) one pane shows at a time: the list, then the thread
// with the session strip above a composer that fills the width, then the
// contact; back controls (plain links) return to the list.
func TestPhoneLayoutOnePaneAtATime(t *testing.T) {
	ta := startApp(t, appOptions{})
	ta.clientWrites(t, ivan, ivanName, "I sent the invoice yesterday")
	ta.clock.Add(time.Minute)
	conv := ta.clientWrites(t, olga, olgaName, "Hello, my order #1182 is late")

	tb := newTab(t, tabOptions{})
	tb.do("emulate a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	tb.open(ta.base + "/")
	if !eval[bool](tb, visibleJS(`#conversation-list`)) || eval[bool](tb, visibleJS(`[data-testid="thread-empty"]`)) ||
		eval[bool](tb, visibleJS(`#session-panel`)) {
		t.Fatal("at 390 px the inbox does not show the list alone")
	}
	if w := eval[float64](tb, widthJS(`#conversation-list`)); w < 380 {
		t.Errorf("the list is %.0f px wide at 390 px, want the whole width", w)
	}
	tb.do("open Olga's conversation", chromedp.Click(chromedp.CSS(`#conversation-rows [data-conversation-id="`+i64s(conv)+`"] a`)))
	tb.waitNavigated("the conversation opened", "/c/"+i64s(conv))
	tb.waitSocket()
	if eval[bool](tb, visibleJS(`#conversation-list`)) || eval[bool](tb, visibleJS(`#session-panel`)) {
		t.Error("with a conversation open the list or the panel still shows beside the thread")
	}
	if w := eval[float64](tb, widthJS(`#composer`)); w < 300 {
		t.Errorf("the composer is %.0f px wide, want at least 300", w)
	}
	if w := eval[float64](tb, widthJS(`#composer-text`)); w < 300 {
		t.Errorf("the composer's text box is %.0f px wide, want at least 300", w)
	}
	if sw := eval[float64](tb, `document.documentElement.scrollWidth`); sw > 390 {
		t.Errorf("the page is %.0f px wide: it scrolls sideways at 390 px", sw)
	}
	// The strip above the composer says the time and messages left.
	if !eval[bool](tb, visibleJS(testid("strip-countdown"))) || !strings.Contains(tb.text(testid("strip-remaining")), "left") {
		t.Errorf("the session strip reads %q", tb.text(testid("strip-state")))
	}
	stripY := eval[float64](tb, `document.querySelector('[data-testid="session-strip"]').getBoundingClientRect().bottom`)
	composerY := eval[float64](tb, `document.getElementById('composer').getBoundingClientRect().top`)
	if stripY > composerY {
		t.Errorf("the strip (bottom %.0f) is not above the composer (top %.0f)", stripY, composerY)
	}
	// The composer is usable: a reply goes out.
	tb.do("reply", chromedp.SendKeys(chromedp.CSS(`#composer-text`), "On its way, Olga"),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
	tb.waitFor("the reply is in the thread", countTextJS("On its way, Olga")+` === 1`)
	tb.waitFor("the strip counts the reply", `document.querySelector('[data-testid="strip-remaining"]').textContent.indexOf('59') === 0`)
	tb.screenshot("phone.png")

	// The strip unfolds to the contact, and links to the whole panel.
	tb.do("unfold the strip", chromedp.Click(chromedp.CSS(`.strip-summary`)))
	tb.waitFor("the strip shows the contact", visibleJS(`[data-testid="strip-open-panel"]`))
	tb.do("open the contact", chromedp.Click(chromedp.CSS(testid("strip-open-panel"))))
	tb.waitLocation("the contact pane opened", "/c/"+i64s(conv)+"?pane=contact")
	tb.waitFor("the panel shows alone", visibleJS(`#session-panel`)+` && !`+visibleJS(`[data-testid="thread"]`))
	if w := eval[float64](tb, widthJS(`#contact-form [name="name"]`)); w < 300 {
		t.Errorf("the contact form's name field is %.0f px wide", w)
	}
	tb.do("back to the conversation", chromedp.Click(chromedp.CSS(testid("panel-back"))))
	// The contact pane is /c/N?pane=contact: the path alone matches before
	// the click has navigated, so the wait checks the query too.
	tb.waitLocation("the thread is back", "/c/"+i64s(conv))
	tb.do("back to the list", chromedp.Click(chromedp.CSS(testid("back-to-list"))))
	tb.waitNavigated("the list is back", "/")
	if !eval[bool](tb, visibleJS(`#conversation-list`)) {
		t.Error("the back control did not return to the list")
	}
}

// ? opens the keyboard help, a modal dialog listing every key; the focus
// stays inside it, and Escape closes it and gives the focus back.
func TestKeyboardHelpListsEveryKey(t *testing.T) {
	ta := startApp(t, appOptions{})
	conv := ta.clientWrites(t, olga, olgaName, "Hello")
	tb := newTab(t, tabOptions{})
	tb.open(convURL(ta, conv))
	tb.do("press ?", chromedp.KeyEvent("?"))
	tb.waitFor("the help is open", `document.getElementById('keys-help').open`)
	rows := eval[[]string](tb, `Array.from(document.querySelectorAll('#keys-help [data-testid="keys-help-row"]')).map(function (r) { return r.querySelector('dt').textContent.replace(/\s+/g, ' ').trim(); })`)
	if len(rows) != len(views.Keys()) {
		t.Errorf("the help lists %d keys, want %d: %q", len(rows), len(views.Keys()), rows)
	}
	for _, key := range []string{"j", "k", "r", "Ctrl + Enter", "Escape", "/", "e", "s", "p", "a", "u", "n", "c", "?"} {
		found := false
		for _, r := range rows {
			found = found || r == key
		}
		if !found {
			t.Errorf("the help does not list %q (it lists %q)", key, rows)
		}
	}
	if eval[bool](tb, `document.querySelector('#keys-help').textContent.toLowerCase().indexOf('missing') >= 0`) {
		t.Error("the help marks a key as missing")
	}
	inside := `document.getElementById('keys-help').contains(document.activeElement)`
	if !eval[bool](tb, inside) {
		t.Fatal("the focus is not in the help")
	}
	tb.do("tab around", chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab))
	if !eval[bool](tb, inside) {
		t.Error("Tab left the help dialog")
	}
	tb.do("press Escape", chromedp.KeyEvent(kb.Escape))
	tb.waitFor("the help is closed", `!document.getElementById('keys-help').open`)
	// j still works afterwards: the keys are back to the page.
	tb.do("press ? and close with the button", chromedp.KeyEvent("?"))
	tb.waitFor("the help is open again", `document.getElementById('keys-help').open`)
	tb.do("close", chromedp.Click(chromedp.CSS(testid("keys-help-close"))))
	tb.waitFor("the help is closed again", `!document.getElementById('keys-help').open`)
}

// / in an empty composer opens the canned replies; a reply with
// {{ask:Order number}} asks for it inline, previews the usage, and inserts
// the reply with every value as text.
func TestSlashOpensCannedRepliesAndAsks(t *testing.T) {
	ta := startApp(t, appOptions{})
	set := ta.Store.Settings()
	set.CannedReplies = []store.CannedReply{
		{Title: "Thanks", Text: "Thank you, {{contact.name}}!"},
		{Title: "Order status", Text: "Hello {{contact.name}}, this is {{agent.name}}. Order {{ask:Order number}} ships today."},
	}
	if err := ta.Store.SaveSettings(context.Background(), 0, set); err != nil {
		t.Fatal(err)
	}
	conv := ta.clientWrites(t, olga, olgaName, "Where is my order?")
	tb := newTab(t, tabOptions{})
	tb.open(convURL(ta, conv))
	tb.waitSocket()
	agent := eval[string](tb, `document.getElementById('composer').getAttribute('data-agent-name')`)
	if agent == "" {
		t.Fatal("the composer does not carry the agent's name")
	}

	// A slash in a draft is just a slash.
	tb.do("type a/ in the composer", chromedp.Click(chromedp.CSS(`#composer-text`)), chromedp.SendKeys(chromedp.CSS(`#composer-text`), "a/"))
	if v := eval[string](tb, `document.getElementById('composer-text').value`); v != "a/" || eval[bool](tb, `!!document.getElementById('canned-picker')`) {
		t.Fatalf("typing a/ gave %q and a picker %v", v, eval[bool](tb, `!!document.getElementById('canned-picker')`))
	}
	eval[chromedp.Void](tb, `(function () { var ta = document.getElementById('composer-text'); ta.value = ''; ta.focus(); })()`)

	tb.do("press /", chromedp.KeyEvent("/"))
	tb.waitFor("the canned replies open", `document.querySelectorAll('#canned-picker [data-testid="canned-option"]').length === 2`)
	if v := eval[string](tb, `document.getElementById('composer-text').value`); v != "" {
		t.Errorf("the slash went into the draft: %q", v)
	}
	tb.do("filter", chromedp.SendKeys(chromedp.CSS(testid("canned-filter")), "order"))
	tb.waitFor("one reply matches", `document.querySelectorAll('#canned-picker [data-testid="canned-option"]').length === 1`)
	if p := tb.text(testid("canned-preview")); p != "Hello "+olgaName+", this is "+agent+". Order [Order number] ships today." {
		t.Errorf("the preview reads %q", p)
	}
	if u := tb.text(testid("canned-usage")); !strings.HasPrefix(u, "Uses 1 message · 60 left in this session · 5 more before the client must reply") {
		t.Errorf("the preview's usage reads %q", u)
	}
	tb.do("choose it", chromedp.KeyEvent("\r"))
	tb.waitFor("it asks for the order number", `document.activeElement && document.activeElement.getAttribute('data-ask') === 'Order number'`)
	if eval[string](tb, `document.getElementById('composer-text').value`) != "" {
		t.Error("the reply was inserted before the question was answered")
	}
	const hostile = `<img src=x id=pwned>#1182 $&`
	tb.do("answer", chromedp.SendKeys(chromedp.CSS(testid("canned-ask-input")), hostile))
	if p := tb.text(testid("canned-preview")); !strings.Contains(p, "Order "+hostile+" ships") {
		t.Errorf("the preview with the answer reads %q", p)
	}
	tb.do("insert", chromedp.KeyEvent("\r"))
	want := "Hello " + olgaName + ", this is " + agent + ". Order " + hostile + " ships today."
	tb.waitFor("the reply is in the draft", `document.getElementById('composer-text').value === `+js(want))
	if eval[bool](tb, `!!document.getElementById('pwned') || !!document.getElementById('canned-picker')`) {
		t.Error("the answer became HTML, or the picker stayed open")
	}
	if got := eval[string](tb, `document.activeElement.id`); got != "composer-text" {
		t.Errorf("after inserting the focus is on %q, want the composer", got)
	}
	tb.waitFor("the composer counts it", `document.getElementById('composer-count').textContent.indexOf(`+js(itoa(len([]rune(want))))+`) === 0`)

	// Escape closes the picker and leaves the draft alone.
	eval[chromedp.Void](tb, `(function () { var ta = document.getElementById('composer-text'); ta.value = ''; ta.focus(); })()`)
	tb.do("press / again", chromedp.KeyEvent("/"))
	tb.waitFor("the picker opens", `!!document.getElementById('canned-picker')`)
	tb.do("Escape", chromedp.KeyEvent(kb.Escape))
	tb.waitFor("the picker closes, the composer keeps the focus", `!document.getElementById('canned-picker') && document.activeElement.id === 'composer-text'`)
}

func itoa(n int) string { return i64s(int64(n)) }

// waitLocation waits until the tab shows pathAndQuery, polling across the
// navigation, and htmx has taken the page over.
func (tb *tab) waitLocation(what, pathAndQuery string) {
	tb.t.Helper()
	tb.waitURL(what, `location.pathname + location.search`, pathAndQuery)
}

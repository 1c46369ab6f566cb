package e2e

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"sessiondesk/store"
)

// An agent presses / to search, finds the client by the phone number typed
// with spaces and a message by a word of it, and the result opens the thread
// at that message, even when it is older than the last 300 the thread shows.
func TestSearchKeyFindsAndOpensTheMessage(t *testing.T) {
	ta := startApp(t, appOptions{})
	conv := ta.receive(t, olga, olgaName, "Hello, my invoice number 4471 never arrived")
	for i := range 320 {
		ta.receive(t, olga, olgaName, "later message "+strconv.Itoa(i))
	}
	ta.clientWrites(t, ivan, ivanName, "Where is my parcel?")
	var first int64
	if err := ta.Store.Read(t.Context(), func(r *store.Reader) error {
		msgs, err := r.Messages(t.Context(), conv, 1000)
		if len(msgs) > 0 {
			first = msgs[0].ID
		}
		return err
	}); err != nil || first == 0 {
		t.Fatal(err)
	}

	tb := newTab(t, tabOptions{})
	activeIsSearch := `document.activeElement && document.activeElement.id === 'search-input'`

	// / in the composer is typed there; elsewhere it focuses the search field.
	tb.open(convURL(ta, conv))
	tb.do("type / in the composer", chromedp.Click(chromedp.CSS(`#composer-text`)), chromedp.KeyEvent("/"))
	if got := eval[string](tb, `document.getElementById('composer-text').value`); got != "/" || eval[bool](tb, activeIsSearch) {
		t.Fatalf("/ in the composer: composer %q, search focused %v", got, eval[bool](tb, activeIsSearch))
	}
	tb.do("leave the composer and press /", chromedp.KeyEvent(kb.Escape), chromedp.KeyEvent("/"))
	tb.waitFor("/ focuses the search field", activeIsSearch)
	if v := eval[string](tb, `document.getElementById('search-input').value`); v != "" {
		t.Errorf("the / was typed into the search field: %q", v)
	}
	tb.do("press Escape", chromedp.KeyEvent(kb.Escape))
	if eval[bool](tb, activeIsSearch) {
		t.Error("Escape did not leave the search field")
	}

	// The phone typed with spaces: the client, live, in place of the list.
	tb.do("search the phone", chromedp.KeyEvent("/"), chromedp.SendKeys(chromedp.CSS(`#search-input`), "+375 29 860 39"))
	tb.waitFor("the client shows in the live results", fmt.Sprintf(
		`document.querySelector('#search-live [data-testid="search-result"][data-conversation-id="%d"] [data-testid="search-contact-match"]')`, conv))
	if eval[bool](tb, `getComputedStyle(document.querySelector('#conversation-list .rows')).display !== 'none'`) {
		t.Error("the conversation list still shows under the live results")
	}

	// A word of an old message: its link opens the thread at it.
	eval[chromedp.Void](tb, `document.getElementById('search-input').value = ''`)
	tb.do("search a word", chromedp.SendKeys(chromedp.CSS(`#search-input`), "invoi"))
	match := fmt.Sprintf(`#search-live [data-testid="search-match"][data-message-id="%d"]`, first)
	tb.waitFor("the old message shows in the live results", `document.querySelector(`+js(match)+`)`)
	if got := tb.text(match + " mark"); got != "invoice" {
		t.Errorf("marked %q, want invoice", got)
	}
	eval[chromedp.Void](tb, `(function () { var c = document.getElementById('composer-text'); c.value = ''; c.dispatchEvent(new Event('input', { bubbles: true })); })()`) // the / typed above
	tb.screenshot("search.png")
	found := fmt.Sprintf(`#msg-%d`, first)
	// The old page's thread does not hold the message: waiting for it waits for the new page.
	tb.do("open the result", chromedp.Click(chromedp.CSS(match)), chromedp.WaitReady(chromedp.CSS(found)))
	tb.waitSettled("the thread opened")
	tb.waitFor("the message is marked", `document.querySelector(`+js(found+`.is-found`)+`)`)
	if !eval[bool](tb, `location.search === '?around=`+strconv.FormatInt(first, 10)+`'`) {
		t.Errorf("the result opened %s", eval[string](tb, `location.href`))
	}
	tb.waitFor("the message is in view", `(function () {
		var el = document.querySelector(`+js(found)+`);
		var box = document.getElementById('thread-messages').getBoundingClientRect();
		var r = el.getBoundingClientRect();
		return r.top >= box.top && r.bottom <= box.bottom;
	})()`)

	// Without JS the results page works too: a plain form and links.
	tb.open(ta.base + "/search?q=" + "%2B375298603938")
	if got := tb.text(`[data-testid="search-result"] .search-name`); got != olgaName {
		t.Errorf("results page: %q, want %q", got, olgaName)
	}
}

package e2e

import (
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/store"
)

// teamWebhookSecret is the secret in the path of the team test's Routee webhooks.
const teamWebhookSecret = "team-day-webhook-secret-0123"

// teamDay is issue 11's whole scenario: an inbox on a fake Routee of its own
// (so the test reads what the provider received), two agents signed in
// through the proxy's headers, one tab each.
type teamDay struct {
	*testApp
	fake  *fakeroutee.Server
	hooks string // the webhook base URL, secret included
}

func startTeamDay(t *testing.T) *teamDay {
	t.Helper()
	needBrowser(t)
	fake := fakeroutee.New(fakeroutee.Options{AppID: "team-app", AppSecret: "team-app-secret"})
	provider := httptest.NewServer(fake.Handler())
	t.Cleanup(provider.Close)
	t.Cleanup(func() {
		if v := fake.Violations(); len(v) > 0 {
			t.Errorf("requests that break Routee's documented shape: %v", v)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env := maps.Clone(headerAuthEnv)
	maps.Copy(env, map[string]string{
		"ROUTEE_APP_ID": "team-app", "ROUTEE_APP_SECRET": "team-app-secret", "ROUTEE_SENDER_ID": "team-sender",
		"ROUTEE_API_URL": provider.URL, "ROUTEE_AUTH_URL": provider.URL,
		"SESSIONDESK_WEBHOOK_SECRET": teamWebhookSecret,
	})
	ta := startApp(t, appOptions{env: env, listener: ln})
	return &teamDay{testApp: ta, fake: fake, hooks: "http://" + ln.Addr().String() + "/webhooks/routee/" + teamWebhookSecret}
}

// clientWrites has the fake Routee post the client's message to the inbound
// webhook, stamped with the app's clock, and returns the conversation's id.
func (td *teamDay) clientWrites(t *testing.T, from, text string) int64 {
	t.Helper()
	if err := td.fake.SendInbound(t.Context(), td.hooks+"/inbound",
		fakeroutee.Inbound{From: from, To: "team-sender", Text: text, SentAt: td.clock.Now()}); err != nil {
		t.Fatalf("client %s writes: %v", from, err)
	}
	var conv int64
	if err := td.Store.Read(t.Context(), func(r *store.Reader) error {
		c, err := r.ConversationByPhone(t.Context(), from)
		conv = c.ID
		return err
	}); err != nil || conv == 0 {
		t.Fatalf("the conversation of %s: %v", from, err)
	}
	return conv
}

// apiIDs is GET /api/v1/conversations?view=... as the agent: the ids listed.
func (td *teamDay) apiIDs(t *testing.T, login, name, view string) []int64 {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, td.direct+"/api/v1/conversations?view="+view, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range agentHeaders(login, name) {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("list %s as %s: %v", view, login, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out struct {
		Conversations []struct {
			ID int64 `json:"id"`
		} `json:"conversations"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("list %s as %s: %d %s", view, login, res.StatusCode, b)
	}
	ids := make([]int64, len(out.Conversations))
	for i, c := range out.Conversations {
		ids[i] = c.ID
	}
	return ids
}

// countsJS holds when the sidebar shows exactly these counts.
func countsJS(want map[string]int) string {
	var parts []string
	for view, n := range want {
		parts = append(parts, `document.querySelector('[data-testid="count-`+view+`"]').textContent.trim() === '`+itoa(n)+`'`)
	}
	return strings.Join(parts, " && ")
}

// countsOf reads the sidebar's counts, for failure messages.
func countsOf(tb *tab) map[string]string {
	return eval[map[string]string](tb, `(function () {
		var out = {};
		document.querySelectorAll('[data-view-count]').forEach(function (el) { out[el.getAttribute('data-view-count')] = el.textContent.trim(); });
		return out;
	})()`)
}

// rowInListJS is the conversation's row in the page's list (null when not there).
func rowInListJS(conv int64) string {
	return `document.querySelector('#conversation-rows > [data-conversation-id="` + i64s(conv) + `"]')`
}

// listViewJS holds when the page's list is this view.
func listViewJS(view string) string {
	return `document.getElementById('conversation-list').getAttribute('data-view') === ` + js(view)
}

const (
	badgeOneJS = `document.title.indexOf('(1) ') === 0`
	noBadgeJS  = `!/^\(\d+\) /.test(document.title)`
	// toneCounterJS counts the tones the page starts (the notification's
	// beep is an oscillator of an AudioContext the page makes when it plays).
	toneCounterJS = `(function () {
		window.__tones = 0;
		var AC = window.AudioContext || window.webkitAudioContext;
		var make = AC.prototype.createOscillator;
		AC.prototype.createOscillator = function () { window.__tones++; return make.apply(this, arguments); };
	})()`
)

// waitAcross polls expr from the test, across a navigation that a page-side
// poll would not survive, and waits for htmx to take the new page over.
func (tb *tab) waitAcross(what, expr string) {
	tb.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`document.readyState === 'complete' && (function () { try { return !!(`+expr+`); } catch (e) { return false; } })()`))
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("waiting until %s: not after %v (%v)", what, waitTimeout, err)
		}
		time.Sleep(pollInterval)
	}
	tb.waitSettled(what)
}

// Issue 11's "Done when", played end to end: a client writes; both agents see
// it in Unassigned and Waiting on us with the title badge (and the one with
// sound on gets the tone); Anna opens it and Boris sees her viewing, then
// typing, and is asked before his send; Anna assigns it to herself, writes a
// note and answers: it leaves Waiting on us for both and Unassigned for
// Boris; she resolves it, the client writes again and it is back in her Mine
// view. Search finds it by a word and by the phone typed with spaces, and the
// provider received the answer only, never the note.
func TestTeamDayTwoAgentsAndAClient(t *testing.T) {
	td := startTeamDay(t)
	const (
		firstText  = "Hello, my parcel 7741 never arrived"
		secondText = "Sorry, one more question about the delivery"
		note       = "Courier confirmed a delay, refund if not there by Friday"
		reply      = "We found it: the courier brings it tomorrow."
	)

	// Boris turns his sound on in the header's menu (a plain form).
	boris := newTab(t, tabOptions{})
	boris.signInAs("boris", "Boris")
	boris.open(td.base + "/")
	if eval[string](boris, `document.querySelector('.topbar').getAttribute('data-notify-sound')`) != "false" {
		t.Fatal("the sound is not off by default")
	}
	boris.setMarker()
	boris.do("Boris turns his sound on",
		chromedp.Click(chromedp.CSS(`[data-testid="notify-menu"] > summary`)),
		chromedp.Click(chromedp.CSS(testid("notify-sound"))),
		chromedp.Click(chromedp.CSS(testid("notify-save"))),
	)
	boris.waitAcross("the saved menu reloads the page with the sound on", `window.__marker !== 1 && document.querySelector('.topbar').getAttribute('data-notify-sound') === 'true'`)

	// Anna on Waiting on us, Boris on Unassigned: both empty.
	anna := newTab(t, tabOptions{})
	anna.signInAs("anna", "Anna")
	anna.open(td.base + "/?view=waiting")
	boris.open(td.base + "/?view=unassigned")
	for _, tb := range []*tab{anna, boris} {
		tb.waitSocket()
		tb.setMarker()
		eval[chromedp.Void](tb, toneCounterJS)
		if !eval[bool](tb, countsJS(map[string]int{"unassigned": 0, "waiting": 0, "mine": 0})+` && `+noBadgeJS) {
			t.Fatalf("before the client writes: counts %v, title %q", countsOf(tb), eval[string](tb, titleJS))
		}
	}
	if eval[string](anna, `document.querySelector('.topbar').getAttribute('data-notify-sound')`) != "false" {
		t.Error("Boris's sound setting turned Anna's on")
	}

	// 1. The client writes: live on both pages, in the view each shows.
	td.clock.Add(time.Minute)
	conv := td.clientWrites(t, olga, firstText)
	for _, tb := range []*tab{anna, boris} {
		tb.waitFor("the row is in the list, unread", rowInListJS(conv)+` && `+rowInListJS(conv)+`.classList.contains('is-unread')`)
		tb.waitFor("Unassigned and Waiting on us count it, and the title says (1)",
			countsJS(map[string]int{"unassigned": 1, "waiting": 1, "all": 1, "mine": 0})+` && `+badgeOneJS)
		if p := tb.text(`#conversation-rows > [data-conversation-id="` + i64s(conv) + `"] [data-testid="row-preview"]`); p != firstText {
			t.Errorf("the row previews %q", p)
		}
		tb.checkNoReload()
	}
	// Boris hears it; Anna, whose sound is off, does not.
	lastIn := eval[string](boris, rowInListJS(conv)+`.getAttribute('data-last-in')`)
	boris.waitFor("Boris's page plays the tone", `document.body.getAttribute('data-notified') === 'message-`+lastIn+` sound' && window.__tones >= 1`)
	// Her page notes the message (data-notified names it) without a tone.
	if got := eval[string](anna, `(document.body.getAttribute('data-notified') || '') + ' tones=' + window.__tones`); got != "message-"+lastIn+" tones=0" {
		t.Errorf("Anna's page, sound off: %q, want message-%s without sound and no tone", got, lastIn)
	}

	// Each sees it in the other view too (the view's own URL).
	anna.do("Anna clicks Unassigned", chromedp.Click(chromedp.CSS(testid("view-unassigned"))))
	anna.waitLocation("Anna's list is Unassigned", "/?view=unassigned")
	boris.do("Boris clicks Waiting on us", chromedp.Click(chromedp.CSS(testid("view-waiting"))))
	boris.waitLocation("Boris's list is Waiting on us", "/?view=waiting")
	for _, tb := range []*tab{anna, boris} {
		if !eval[bool](tb, rowInListJS(conv)+` && `+badgeOneJS) {
			t.Errorf("after switching views: row %v, title %q", eval[bool](tb, `!!`+rowInListJS(conv)), eval[string](tb, titleJS))
		}
	}

	// 2. Anna opens it: read for her, still unread for Boris.
	anna.open(convURL(td.testApp, conv) + "?view=unassigned")
	anna.waitSocket()
	anna.setMarker()
	anna.waitFor("the conversation is read for Anna: no badge in her title", noBadgeJS)
	boris.reload()
	if !eval[bool](boris, badgeOneJS+` && `+rowInListJS(conv)+`.classList.contains('is-unread')`) {
		t.Errorf("Anna's read made it read for Boris: title %q", eval[string](boris, titleJS))
	}

	// Boris opens it (his list: Waiting on us) and sees Anna viewing.
	boris.open(convURL(td.testApp, conv) + "?view=waiting")
	boris.waitSocket()
	boris.setMarker()
	presence := `document.getElementById('presence-` + i64s(conv) + `')`
	boris.waitFor("Boris sees Anna viewing", presence+`.textContent.indexOf('Anna is viewing') >= 0`)
	anna.waitFor("Anna sees Boris viewing", presence+`.textContent.indexOf('Boris is viewing') >= 0`)

	// 3. Anna types; Boris sees it within a second, and his send asks first.
	anna.do("Anna types", chromedp.SendKeys(chromedp.CSS(`#composer-text`), "We are look"))
	if took := boris.waitFor("Boris sees Anna typing", presence+`.textContent.indexOf('Anna is typing') >= 0`); took > live {
		t.Errorf("Boris saw Anna typing after %v, want within %v", took, live)
	}
	boris.do("Boris types and presses Ctrl+Enter",
		chromedp.SendKeys(chromedp.CSS(`#composer-text`), "I can take this one"),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
	)
	boris.waitFor("Boris is asked first", `document.querySelector('[data-testid="collision-question"]')`)
	if q := boris.text(testid("collision-question")); q != "Anna is typing here: send anyway?" {
		t.Errorf("the question is %q", q)
	}
	boris.do("Boris cancels with Escape", chromedp.KeyEvent("\x1b"))
	boris.waitFor("the question is gone", `!document.querySelector('[data-testid="collision-confirm"]')`)
	if n := eval[int](boris, `document.querySelectorAll('#thread-messages [data-direction="out"]').length`); n != 0 {
		t.Errorf("%d replies in Boris's thread after he cancelled", n)
	}
	// He leaves it to Anna: his draft goes, and so does his "typing".
	eval[chromedp.Void](boris, `(function () {
		var c = document.getElementById('composer-text');
		c.value = '';
		c.dispatchEvent(new Event('input', { bubbles: true }));
		c.blur();
	})()`)
	anna.waitFor("Anna sees Boris viewing, not typing", presence+`.textContent.indexOf('Boris is viewing') >= 0 && !`+presence+`.querySelector('[data-typing="true"]')`)

	// 4. Anna assigns it to herself: it leaves Unassigned for both.
	anna.do("Anna clicks Assign to me", chromedp.Click(chromedp.CSS(testid("assign-me"))))
	for _, tb := range []*tab{anna, boris} {
		tb.waitFor("the header names Anna", `document.getElementById('thread-status').getAttribute('data-assignee') !== '' && document.querySelector('#thread-status [data-testid="assignee-name"]').textContent.trim() === 'Anna'`)
	}
	anna.waitFor("it leaves Anna's Unassigned list; her Mine counts it", `!`+rowInListJS(conv)+` && `+countsJS(map[string]int{"unassigned": 0, "mine": 1, "waiting": 1}))
	boris.waitFor("Boris's Unassigned count drops; his Mine stays empty", countsJS(map[string]int{"unassigned": 0, "mine": 0, "waiting": 1})+` && `+rowInListJS(conv))
	boris.waitFor("Boris sees Anna viewing, no longer typing", presence+`.textContent.indexOf('Anna is viewing') >= 0`)
	// Boris's send into Anna's conversation asks first, too; he cancels.
	boris.do("Boris types and presses Ctrl+Enter",
		chromedp.SendKeys(chromedp.CSS(`#composer-text`), "mine now"),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
	)
	boris.waitFor("Boris is asked first", `document.querySelector('[data-testid="collision-question"]')`)
	if q := boris.text(testid("collision-question")); q != "This conversation is assigned to Anna: send anyway?" {
		t.Errorf("the question is %q", q)
	}
	boris.do("Boris cancels with Escape", chromedp.KeyEvent("\x1b"))
	boris.waitFor("the question is gone", `!document.querySelector('[data-testid="collision-confirm"]')`)
	eval[chromedp.Void](boris, `(function () {
		var c = document.getElementById('composer-text');
		c.value = '';
		c.dispatchEvent(new Event('input', { bubbles: true }));
		c.blur();
	})()`)
	if n := eval[int](boris, `document.querySelectorAll('#thread-messages [data-direction="out"]').length`); n != 0 {
		t.Errorf("%d replies in Boris's thread after he cancelled", n)
	}

	// 5. Anna writes an internal note: both see it; it answers nobody.
	anna.do("Anna presses n and writes a note",
		pressKey("n", "KeyN", 78),
		chromedp.WaitVisible(chromedp.CSS(`#note-text`)),
		chromedp.SendKeys(chromedp.CSS(`#note-text`), note),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
	)
	noteJS := `Array.from(document.querySelectorAll('#thread-messages [data-testid="note"] [data-testid="note-text"]')).some(function (e) { return e.textContent === ` + js(note) + `; })`
	for _, tb := range []*tab{anna, boris} {
		tb.waitFor("the note is in the thread", noteJS)
	}
	boris.waitFor("after the note the client still waits on us in Boris's list", rowInListJS(conv)+` && `+countsJS(map[string]int{"waiting": 1}))
	if ids := td.apiIDs(t, "boris", "Boris", "waiting"); len(ids) != 1 || ids[0] != conv {
		t.Errorf("after the note the API's Waiting on us lists %v, want [%d]", ids, conv)
	}

	// 6. Anna answers: it leaves Waiting on us for both.
	anna.do("Anna goes back to the Reply tab", chromedp.KeyEvent("\x1b"), pressKey("r", "KeyR", 82))
	anna.waitFor("the Reply tab is open", `document.getElementById('composer-text').offsetParent !== null`)
	eval[chromedp.Void](anna, `(function () {
		var c = document.getElementById('composer-text');
		c.value = '';
		c.dispatchEvent(new Event('input', { bubbles: true }));
	})()`)
	anna.do("Anna types the answer and presses Ctrl+Enter",
		chromedp.SendKeys(chromedp.CSS(`#composer-text`), reply),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
	)
	outJS := `Array.from(document.querySelectorAll('#thread-messages [data-direction="out"]')).filter(function (m) { return m.querySelector('[data-testid="message-text"]').textContent === ` + js(reply) + `; })[0]`
	anna.waitFor("the answer is in Anna's thread", outJS)
	if eval[bool](anna, `!!document.querySelector('[data-testid="collision-confirm"]')`) {
		t.Errorf("Anna, the assignee, was asked %q", anna.text(testid("collision-question")))
	}
	boris.waitFor("the answer is in Boris's thread", outJS)
	anna.waitFor("the provider took the answer", `['sent', 'delivered', 'seen'].indexOf(`+outJS+`.getAttribute('data-status')) >= 0`)
	anna.waitFor("Waiting on us is empty for Anna", countsJS(map[string]int{"waiting": 0, "unassigned": 0, "mine": 1}))
	boris.waitFor("it leaves Boris's Waiting on us list and count", `!`+rowInListJS(conv)+` && `+countsJS(map[string]int{"waiting": 0, "unassigned": 0, "mine": 0}))
	// The provider received the answer, and only it: never the note.
	sent := td.fake.Messages()
	if len(sent) != 1 || sent[0].Text != reply || !strings.HasSuffix(olga, strings.TrimPrefix(sent[0].To, "+")) {
		t.Errorf("the provider received %+v, want the answer to %s only", sent, olga)
	}
	for _, m := range sent {
		if strings.Contains(m.Text, "Courier confirmed") {
			t.Errorf("the note reached the provider: %+v", m)
		}
	}
	anna.checkNoReload()
	boris.checkNoReload()

	// 7. Anna resolves it, her list on Mine; Boris watches All.
	anna.open(convURL(td.testApp, conv) + "?view=mine")
	anna.waitSocket()
	anna.setMarker()
	anna.waitFor("it is in Anna's Mine", rowInListJS(conv)+` && `+listViewJS("mine"))
	boris.open(td.base + "/")
	boris.waitSocket()
	boris.setMarker()
	eval[chromedp.Void](boris, toneCounterJS)
	boris.waitFor("it is in Boris's All", rowInListJS(conv)+` && `+listViewJS("all"))
	anna.do("Anna clicks Resolve", chromedp.Click(chromedp.CSS(testid("status-resolved"))))
	anna.waitFor("the header says resolved", `document.getElementById('thread-status').getAttribute('data-status') === 'resolved'`)
	anna.waitFor("it leaves Anna's Mine (open only)", `!`+rowInListJS(conv)+` && `+countsJS(map[string]int{"mine": 0, "all": 0}))
	boris.waitFor("it leaves Boris's All (open only)", `!`+rowInListJS(conv)+` && `+countsJS(map[string]int{"all": 0}))

	// 8. The client writes again: it reopens, in Anna's Mine, live.
	td.clock.Add(time.Minute)
	if again := td.clientWrites(t, olga, secondText); again != conv {
		t.Fatalf("the client's second message went to conversation %d, want %d", again, conv)
	}
	anna.waitFor("it is back in Anna's Mine, open", rowInListJS(conv)+` && `+rowInListJS(conv)+`.getAttribute('data-status') === 'open'`)
	anna.waitFor("the header says open", `document.getElementById('thread-status').getAttribute('data-status') === 'open'`)
	anna.waitFor("the thread shows the new message", countTextJS(secondText)+` === 1`)
	anna.waitFor("Anna's counts: Mine and Waiting on us", countsJS(map[string]int{"mine": 1, "waiting": 1, "unassigned": 0, "all": 1}))
	anna.waitFor("no badge in Anna's title: she is looking at it", noBadgeJS)
	boris.waitFor("it is back in Boris's All, waiting on us", rowInListJS(conv)+` && `+countsJS(map[string]int{"all": 1, "waiting": 1, "unassigned": 0, "mine": 0}))
	// Anna's conversation is not in Boris's Mine or Unassigned: no tone, no badge.
	if got := eval[string](boris, `(document.body.getAttribute('data-notified') || '') + ' tones=' + window.__tones + ' badge=' + !(`+noBadgeJS+`)`); got != " tones=0 badge=false" {
		t.Errorf("Boris's page after a message in Anna's conversation: %q", got)
	}
	anna.checkNoReload()
	boris.checkNoReload()

	// 9. Search finds it by a word of the client's message, and by the phone
	// typed with spaces.
	result := `#search-live [data-testid="search-result"][data-conversation-id="` + i64s(conv) + `"]`
	boris.do("Boris presses / and searches a word", chromedp.KeyEvent("/"), chromedp.SendKeys(chromedp.CSS(`#search-input`), "parcel"))
	boris.waitFor("the message shows in the results", `document.querySelector(`+js(result+` [data-testid="search-match"] mark`)+`)`)
	if got := boris.text(result + ` [data-testid="search-match"] mark`); !strings.EqualFold(got, "parcel") {
		t.Errorf("the match marks %q, want parcel", got)
	}
	eval[chromedp.Void](boris, `document.getElementById('search-input').value = ''`)
	boris.do("Boris searches the phone typed with spaces", chromedp.SendKeys(chromedp.CSS(`#search-input`), "+375 29 860-39-38"))
	boris.waitFor("the client shows in the results", `document.querySelector(`+js(result+` [data-testid="search-contact-match"]`)+`)`)

	// Still only the answer reached the provider.
	if n := len(td.fake.Messages()); n != 1 {
		t.Errorf("the provider received %d messages in all, want 1 (the answer)", n)
	}
}

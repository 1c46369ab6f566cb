package e2e

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// headerAuthEnv runs the inbox behind a (pretend) proxy on this machine that
// names the agent in oauth2-proxy's headers, so that each tab can be another agent.
var headerAuthEnv = map[string]string{
	"SESSIONDESK_AUTH": "header", "SESSIONDESK_AUTH_PRESET": "oauth2-proxy",
	"SESSIONDESK_ROLES": "support=agent", "SESSIONDESK_TRUSTED_PROXIES": "127.0.0.1/32",
}

func agentHeaders(login, name string) map[string]string {
	return map[string]string{"X-Forwarded-User": login, "X-Forwarded-Email": login + "@example.com",
		"X-Forwarded-Preferred-Username": name, "X-Forwarded-Groups": "support"}
}

// signInAs makes every request of the tab (pages, htmx, the websocket) carry
// the proxy's headers for this agent.
func (tb *tab) signInAs(login, name string) {
	tb.t.Helper()
	h := network.Headers{}
	for k, v := range agentHeaders(login, name) {
		h[k] = v
	}
	if _, err := chromedp.Run(tb.ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h})
		return err
	})); err != nil {
		tb.t.Fatalf("sign in as %s: %v", login, err)
	}
}

// Two agents on one conversation: Boris sees Anna viewing, then typing (each
// within a second); his send asks "Anna is typing here: send anyway?", inline,
// with the focus on its button, and Enter sends. With his sound on, a client
// writing in another conversation plays it.
func TestTwoAgentsSeeEachOtherAndCollide(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ta := startApp(t, appOptions{env: headerAuthEnv, listener: ln})
	conv := ta.receive(t, olga, olgaName, "Hello, my order #1182 is late")

	boris := newTab(t, tabOptions{})
	boris.signInAs("boris", "Boris")
	boris.open(convURL(ta, conv))
	boris.waitSocket()
	anna := newTab(t, tabOptions{})
	anna.signInAs("anna", "Anna")
	anna.open(convURL(ta, conv))
	anna.waitSocket()

	presence := `document.querySelector('#presence-` + strconv.FormatInt(conv, 10) + `')`
	if took := boris.waitFor("Boris sees Anna viewing", presence+`.textContent.indexOf('Anna is viewing') >= 0`); took.Seconds() > 1 {
		t.Errorf("Boris saw Anna viewing after %v, want within a second", took)
	}
	anna.waitFor("Anna sees Boris viewing", presence+`.textContent.indexOf('Boris is viewing') >= 0`)
	if s := anna.text(`#presence-` + strconv.FormatInt(conv, 10)); strings.Contains(s, "Anna") {
		t.Errorf("Anna's own presence line names her: %q", s)
	}

	anna.do("Anna types", chromedp.SendKeys(chromedp.CSS(`#composer-text`), "We are look"))
	if took := boris.waitFor("Boris sees Anna typing", presence+`.textContent.indexOf('Anna is typing') >= 0`); took.Seconds() > 1 {
		t.Errorf("Boris saw Anna typing after %v, want within a second", took)
	}

	const reply = "I am on it, Olga."
	boris.do("Boris types and presses Ctrl+Enter",
		chromedp.SendKeys(chromedp.CSS(`#composer-text`), reply),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
	)
	boris.waitFor("Boris is asked first", `document.querySelector('[data-testid="collision-question"]')`)
	if q := boris.text(testid("collision-question")); q != "Anna is typing here: send anyway?" {
		t.Errorf("the question is %q", q)
	}
	if n := eval[int](boris, `document.querySelectorAll('#thread-messages [data-direction="out"]').length`); n != 0 {
		t.Errorf("%d replies in the thread before Boris answered the question", n)
	}
	if f := eval[string](boris, `document.activeElement.getAttribute('data-testid') || ''`); f != "collision-send" {
		t.Errorf("the focus is on %q, want the Send anyway button", f)
	}
	boris.do("Boris confirms with Enter", chromedp.KeyEvent("\r"))
	outJS := `document.querySelector('#thread-messages [data-direction="out"] [data-testid="message-text"]')`
	boris.waitFor("the reply is in the thread", outJS+` && `+outJS+`.textContent === `+js(reply))
	if boris.text(testid("collision-confirm")) != "" {
		t.Error("the question stays after the send")
	}

	// Boris turns his sound on; a client writing elsewhere then plays it.
	req, _ := http.NewRequest("PATCH", ta.direct+"/api/v1/me/preferences", strings.NewReader(`{"sound":true}`))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range agentHeaders("boris", "Boris") {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("Boris's sound on: %v %v", res, err)
	}
	res.Body.Close()
	boris.reload()
	boris.waitSocket()
	ta.receive(t, ivan, ivanName, "Where is my refund?")
	boris.waitFor("Boris's page notifies with sound", `(document.body.getAttribute('data-notified') || '').indexOf(' sound') > 0`)
	if got := eval[string](boris, `document.body.getAttribute('data-notified')`); !strings.HasPrefix(got, "message-") {
		t.Errorf("notified %q, want the new message", got)
	}
}

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"sessiondesk/store"
)

// From a closed conversation the agent opens the composer's paid mode, sees
// the price in the confirmation, confirms, and the paid message shows in the
// thread, marked as paid.
func TestPaidMessageFromClosedConversation(t *testing.T) {
	ta := startApp(t, appOptions{})
	if _, err := ta.Store.SavePaidSettings(context.Background(), 0, store.PaidSettings{
		Currency: "EUR", ViberRates: map[string]float64{"BY": 0.031, "*": 0.05}}); err != nil {
		t.Fatal(err)
	}
	conv := ta.clientWrites(t, olga, olgaName, "Is my order ready?")
	ta.clock.Add(25 * time.Hour) // the session's window closed

	agent := newTab(t, tabOptions{})
	agent.open(convURL(ta, conv))
	agent.waitSocket()
	if got := agent.text(testid("composer-tab-paid")); got != "Send a paid Viber message" {
		t.Errorf("the paid tab says %q", got)
	}
	agent.do("open the paid mode", chromedp.Click(chromedp.CSS(testid("composer-tab-paid"))))
	agent.waitFor("the paid composer shows with its price", `(function () {
		var f = document.getElementById('paid-composer');
		return f && f.offsetParent !== null && f.querySelector('[data-testid="paid-price"]').textContent === '0.031 EUR';
	})()`)
	if eval[bool](agent, `document.getElementById('composer').offsetParent !== null`) {
		t.Error("the session composer is still shown in the paid mode")
	}
	const text = "Your order is ready for pickup."
	agent.do("write and ask to send",
		chromedp.SendKeys(chromedp.CSS(`#paid-text`), text),
		chromedp.Click(chromedp.CSS(testid("paid-send"))),
	)
	agent.waitFor("the confirmation shows the price", `(function () {
		var c = document.querySelector('[data-testid="paid-confirm"]');
		return c && c.querySelector('[data-testid="paid-confirm-price"]').textContent === '0.031 EUR' &&
			c.textContent.indexOf('new billed session') >= 0;
	})()`)
	if v := eval[string](agent, `document.getElementById('paid-text').value`); v != text {
		t.Errorf("the draft after the confirmation question is %q", v)
	}
	if n := eval[int](agent, `document.querySelectorAll('#thread-messages [data-testid="paid-badge"]').length`); n != 0 {
		t.Fatalf("%d paid messages in the thread before the confirmation", n)
	}
	agent.screenshot("paid-confirm.png")
	// The confirmation came in a swap: htmx takes over its form once settled
	// (a click before that is the plain form's post, the page without JS).
	agent.waitSettled("the confirmation's form is htmx's")
	agent.do("confirm", chromedp.Click(chromedp.CSS(testid("paid-confirm-send"))))
	agent.waitFor("the paid message is in the thread, marked paid", `(function () {
		var b = document.querySelector('#thread-messages .msg-paid');
		return b && b.querySelector('[data-testid="paid-badge"]') && b.querySelector('[data-testid="message-text"]').textContent === `+js(text)+`;
	})()`)
	agent.waitFor("the composer says it went", `document.querySelector('[data-testid="paid-sent"]') !== null`)
}

package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"sessiondesk/session"
	"sessiondesk/store"
)

// The price the sandbox's fake Routee reports reaches the open conversation
// live: the panel shows the reported cost beside the estimate and their
// difference; and once the spend reaches 80 % of the monthly budget, the
// admin's pages warn.
func TestReportedPriceShowsLiveAndTheBudgetWarns(t *testing.T) {
	ta := startApp(t, appOptions{env: map[string]string{
		"SESSIONDESK_RATE_TEXT": "0.05", "SESSIONDESK_SANDBOX_PRICES": "BY=0.04", "SESSIONDESK_BUDGET_MONTHLY": "0.05",
	}})
	conv := ta.clientWrites(t, olga, olgaName, "Hello, what does this cost?")
	agent := newTab(t, tabOptions{})
	agent.open(convURL(ta, conv))
	agent.waitSocket()
	if eval[bool](agent, `!!document.querySelector('[data-testid="budget-warning"]')`) {
		t.Fatal("a budget warning before anything was spent")
	}

	msgs, err := ta.Store.AcceptBusinessMessages(context.Background(), store.BusinessSend{
		ConversationID: conv, Parts: []session.Part{{Kind: session.Text, Text: "Not much"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	agent.waitFor("the estimate shows", `document.querySelector('[data-testid="session-cost"]').textContent.includes('0.05 EUR')`)
	agent.waitFor("not priced yet", `document.querySelector('[data-testid="session-reported"]').textContent.trim() === 'not priced yet'`)
	// The phone sees it: the fake posts Seen with the BY price to the status webhook.
	deadline := time.Now().Add(waitTimeout)
	for {
		res, err := http.Post(ta.direct+"/sandbox/messages/"+i64s(msgs[0].ID)+"/seen", "", nil)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusNoContent {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the phone could not see the message: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the outbox hands it to the fake first
	}
	took := agent.waitFor("the reported cost shows, live", `document.querySelector('[data-testid="session-reported"]').textContent.trim() === '0.04 EUR'`)
	if took > live {
		t.Errorf("the reported cost showed after %v, want within %v", took, live)
	}
	agent.waitFor("the difference shows", `document.querySelector('[data-testid="session-cost-diff"]').textContent.trim() === '−0.01 EUR'`)

	// 0.04 of a 0.05 budget: 80 %. Every page warns the admin.
	agent.reload()
	agent.waitFor("the budget warning", `document.querySelector('[data-testid="budget-warning"]').textContent.includes('80%')`)
	agent.open(ta.base + "/admin")
	agent.waitFor("the budget warning on the admin page", `!!document.querySelector('[data-testid="budget-warning"]') &&
		document.querySelector('[data-testid="budget-meter"]').textContent.includes('80%')`)
}

package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// The thread header's keys: e resolves and a assigns to me, s snoozes with
// the picker; each change shows at once in the header, and the row's
// initials on another open page, live.
func TestKeysResolveAssignAndTheRowShowsInitialsElsewhere(t *testing.T) {
	ta := startApp(t, appOptions{})
	conv := ta.clientWrites(t, olga, olgaName, "Hello, my order #1182 is late")
	ta.clientWrites(t, ivan, ivanName, "Where is my invoice?")

	// The other page lists every status: a resolved conversation leaves the
	// default view (open ones), and this one follows it through the statuses.
	other := newTab(t, tabOptions{})
	other.open(ta.base + "/?status=any")
	other.waitSocket()
	other.setMarker()

	agent := newTab(t, tabOptions{})
	agent.open(convURL(ta, conv))
	agent.waitSocket()
	me := eval[string](agent, `document.querySelector('[data-testid="agent-name"] .avatar').textContent.trim()`)
	if me == "" {
		t.Fatal("the top bar shows no initials for the signed-in agent")
	}
	status := `document.querySelector('#thread-status').getAttribute('data-status')`
	if got := eval[string](agent, status); got != "open" {
		t.Fatalf("a new conversation's header says %q, want open", got)
	}
	press := func(key string) {
		eval[chromedp.Void](agent, `document.activeElement && document.activeElement.blur()`)
		agent.do("press "+key, chromedp.KeyEvent(key))
	}

	press("e")
	took := agent.waitFor("the header says resolved", status+` === 'resolved' && document.querySelector('[data-testid="conversation-status"]').textContent.trim() === 'Resolved'`)
	if took > live {
		t.Errorf("resolved showed after %v, want within %v", took, live)
	}

	press("a")
	agent.waitFor("the header names the assignee", `document.querySelector('#thread-status').getAttribute('data-assignee') !== '' &&
		document.querySelector('#thread-status [data-testid="assignee"] .avatar').textContent.trim() === `+js(me))
	row := `document.querySelector('#conversation-list [data-conversation-id="` + i64s(conv) + `"]')`
	took = other.waitFor("the other page's row shows the initials", row+` && `+row+`.querySelector('[data-testid="row-assignee"]') &&
		`+row+`.querySelector('[data-testid="row-assignee"]').textContent.trim() === `+js(me))
	if took > live {
		t.Errorf("the initials showed on the other page after %v, want within %v", took, live)
	}
	other.waitFor("the other page's row says resolved", row+`.getAttribute('data-status') === 'resolved'`)
	other.checkNoReload()

	// s opens the picker; "1 hour" snoozes.
	press("s")
	agent.waitFor("the snooze picker is open with its first choice focused",
		`document.getElementById('snooze-picker').open && document.activeElement === document.querySelector('[data-testid="snooze-1h"]')`)
	agent.do("choose 1 hour", chromedp.KeyEvent("\r"))
	agent.waitFor("the header says snoozed, with its time", status+` === 'snoozed' && document.querySelector('#thread-status [data-testid="snoozed-until"] time')`)
	agent.waitFor("the picker closed", `!document.getElementById('snooze-picker').open`)

	// The client writes: it reopens on both pages.
	ta.clientWrites(t, olga, olgaName, "Any news?")
	agent.waitFor("the header says open again", status+` === 'open'`)
	other.waitFor("the row says open again", row+`.getAttribute('data-status') === 'open'`)
}

package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// rowIDsJS lists the conversation ids of the list's rows, top first.
const rowIDsJS = `Array.from(document.querySelectorAll('#conversation-rows > [data-testid="conversation-row"]')).map(function (r) { return r.getAttribute('data-conversation-id'); })`

// sortedJS reports whether the rows are in the list's order, without a
// duplicate: clients waiting on us first (the client wrote last, nothing
// answered, the session open), by session end, then the rest by activity,
// newest first (id among equals).
const sortedJS = `(function () {
	var rows = Array.from(document.querySelectorAll('#conversation-rows > [data-testid="conversation-row"]'));
	// The server's clock (the test's manual one), as the page knows it.
	var clock = document.querySelector('[data-server-now]');
	var now = clock ? Number(clock.getAttribute('data-server-now')) : Date.now(), seen = {};
	function key(r) {
		var n = function (a) { return Number(r.getAttribute(a)) || 0; };
		if (n('data-last-in') > 0 && n('data-unanswered') === 0 && n('data-ends') > now) {
			return [0, n('data-ends'), n('data-conversation-id')];
		}
		return [1, -n('data-activity'), -n('data-conversation-id')];
	}
	for (var i = 0; i < rows.length; i++) {
		var id = rows[i].getAttribute('data-conversation-id');
		if (seen[id]) return false;
		seen[id] = true;
		if (i === 0) continue;
		var a = key(rows[i - 1]), b = key(rows[i]);
		for (var k = 0; k < 3; k++) {
			if (a[k] !== b[k]) { if (a[k] > b[k]) return false; break; }
		}
	}
	return true;
})()`

func secondRowIs(id int64) string {
	return `(function () { var r = document.querySelectorAll('#conversation-rows > [data-testid="conversation-row"]')[1]; return !!r && r.getAttribute('data-conversation-id') === ` + js(strconv.FormatInt(id, 10)) + `; })()`
}

func topRowIs(id int64) string {
	return `(function () { var r = document.querySelector('#conversation-rows > [data-testid="conversation-row"]'); return !!r && r.getAttribute('data-conversation-id') === ` + js(strconv.FormatInt(id, 10)) + `; })()`
}

// The test: two pages open, a client writes to the 300th conversation
// (far below the first page), and it appears at the top of both lists, live,
// once; the rest of each list stays as it was. Every client was answered, so
// the list is in activity order until one writes: then they wait on us, and
// clients waiting on us come first.
func TestClientWritingTo300thConversationTopsBothLists(t *testing.T) {
	ta := startApp(t, appOptions{})
	var ids []int64
	for i := range 300 {
		ta.clock.Add(time.Second)
		id := ta.receive(t, fmt.Sprintf("+3752986%05d", i), fmt.Sprintf("Client %03d", i), "hello")
		ta.reply(t, id, "Hello! How can we help?")
		ids = append(ids, id)
	}
	oldest, newest, middle := ids[0], ids[299], ids[260]

	inbox := newTab(t, tabOptions{})
	inbox.open(ta.base + "/")
	thread := newTab(t, tabOptions{})
	thread.open(convURL(ta, newest))
	for _, tb := range []*tab{inbox, thread} {
		tb.waitSocket()
		tb.setMarker()
		if n := len(eval[[]string](tb, rowIDsJS)); n != 50 {
			t.Fatalf("the first page lists %d conversations, want 50", n)
		}
	}
	// The inbox loads one more page (htmx appends it under the first).
	inbox.do("click Load more", chromedp.Click(chromedp.CSS(`#list-more`)))
	inbox.waitFor("the second page is loaded", `document.querySelectorAll('#conversation-rows > [data-testid="conversation-row"]').length === 100`)
	inbox.waitFor("the inbox shows 100 conversations", `document.querySelector('[data-testid="conversation-count"]').textContent.trim() === '100'`)

	ta.clock.Add(time.Minute)
	ta.clientWrites(t, "+375298600000", "Client 000", "Is anyone there? It has been a week")
	for _, tb := range []*tab{inbox, thread} {
		took := tb.waitFor("the 300th conversation is at the top", topRowIs(oldest))
		if took > live {
			t.Errorf("the 300th conversation reached the top after %v, want within %v", took, live)
		}
		if p := tb.text(`#conversation-rows > [data-conversation-id="` + strconv.FormatInt(oldest, 10) + `"] [data-testid="row-preview"]`); p != "Is anyone there? It has been a week" {
			t.Errorf("its row previews %q", p)
		}
		if !eval[bool](tb, sortedJS) {
			t.Errorf("the list is out of order or has a duplicate: %v", eval[[]string](tb, rowIDsJS))
		}
	}
	if n := len(eval[[]string](inbox, rowIDsJS)); n != 101 {
		t.Errorf("the inbox lists %d rows, want 101 (100 loaded and the one that came up)", n)
	}
	if n := len(eval[[]string](thread, rowIDsJS)); n != 51 {
		t.Errorf("the open conversation's page lists %d rows, want 51", n)
	}
	// The selection is the page's own: still the open conversation, only it.
	sel := eval[[]string](thread, `Array.from(document.querySelectorAll('#conversation-rows > .is-selected')).map(function (r) { return r.getAttribute('data-conversation-id'); })`)
	if len(sel) != 1 || sel[0] != strconv.FormatInt(newest, 10) {
		t.Errorf("selected rows %v, want only the open conversation %d", sel, newest)
	}

	// A conversation already shown further down moves up, among the waiting
	// clients: under the 300th, whose session ends sooner. It is not doubled.
	ta.clock.Add(time.Minute)
	ta.clientWrites(t, fmt.Sprintf("+3752986%05d", 260), "Client 260", "Me too")
	for _, tb := range []*tab{inbox, thread} {
		tb.waitFor("the moved conversation is second, under the 300th", secondRowIs(middle))
		if !eval[bool](tb, sortedJS) {
			t.Errorf("after the move the list is out of order or has a duplicate: %v", eval[[]string](tb, rowIDsJS))
		}
	}
	if n := len(eval[[]string](inbox, rowIDsJS)); n != 101 {
		t.Errorf("after the move the inbox lists %d rows, want 101", n)
	}
	inbox.checkNoReload()
	thread.checkNoReload()
}

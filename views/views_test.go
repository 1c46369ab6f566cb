package views

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"sessiondesk/session"
)

// The fixtures follow design.md's sketch: Olga is in session 3, which started at
// 10:02 on 24 Nov; the server's clock reads 13:47:15 the same day.

var (
	minsk   = time.FixedZone("MSK", 3*3600)
	demoNow = time.Date(2025, 11, 24, 13, 47, 15, 0, minsk)
	rates   = session.Rates{Text: 0.045, Media: 0.09, Currency: "EUR"}
	xss     = `<script>alert(1)</script>`
)

func at(hhmm string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", "2025-11-24 "+hhmm, minsk)
	if err != nil {
		panic(err)
	}
	return t
}

// state builds a session state for the fixtures.
func state(number int, started time.Time, used, unanswered int) session.State {
	set := session.Defaults()
	return session.State{
		Current:    &session.Session{Number: number, StartedAt: started, EndsAt: started.Add(set.Window), Used: used},
		Unanswered: unanswered,
	}
}

func panelFor(id int64, st session.State, now time.Time) Panel {
	set := session.Defaults()
	p := Panel{
		ConversationID: id,
		Status:         session.StatusAt(st, set, now),
		MaxPerSession:  set.MaxPerSession,
		MaxUnanswered:  set.MaxUnanswered,
		NowUnix:        now.UnixMilli(),
		Currency:       rates.Currency,
		Contact: ContactView{ID: id, Name: "Olga Petrova", Phone: "+375 29 860-39-38", Country: "Belarus (BY)",
			Values: ContactValues{Name: "Olga Petrova"}, FormURL: "/c/1/contact", SearchURL: "/search?q=%2B375298603938"},
	}
	if st.Current != nil {
		p.Cost = rates.Cost(*st.Current)
	}
	return p
}

func composerFor(id int64, p Panel) Composer {
	return Composer{ConversationID: id, Status: p.Status, MaxUnanswered: p.MaxUnanswered}
}

func demoRows(now time.Time) []ConversationRow {
	ms := now.UnixMilli()
	return []ConversationRow{
		{ID: 1, Name: "Olga Petrova", Phone: "+375 29 860-39-38", Preview: "Thank you! And will the courier call before coming?", LastAt: at("13:40"), Unread: 2, Selected: true,
			Badge: SessionBadge{Open: true, EndsAt: at("10:02").Add(24 * time.Hour), NowUnix: ms}},
		{ID: 2, Name: "Ivan Kowalski", Phone: "+48 601 555 010", Preview: "sent the invoice", LastAt: at("13:21"),
			Badge: SessionBadge{Open: true, EndsAt: now.Add(41*time.Minute + 10*time.Second), NowUnix: ms}},
		{ID: 3, Name: "Anna Sidorova", Phone: "+375 33 111-22-33", Preview: "thanks!", LastAt: at("09:12"),
			Badge: SessionBadge{Open: false, NowUnix: ms}},
		{ID: 4, Name: "Mikhail Zhuk", Phone: "+375 44 700-00-01", Preview: "Is the store on Nemiga open on Sunday? I would like to come by with the receipt", LastAt: at("12:58"), Unread: 1,
			Badge: SessionBadge{Open: true, Locked: true, EndsAt: now.Add(7*time.Hour + 3*time.Minute), NowUnix: ms}},
		{ID: 5, Name: "", Phone: "+375 25 404-04-04", Preview: xss, LastAt: at("08:40"),
			Badge: SessionBadge{Open: false, NowUnix: ms}},
	}
}

func demoMessages() []Message {
	return []Message{
		{ID: 101, Kind: "text", Text: "Hello, my order #1182 is late", At: at("10:02"), SessionNum: 3, NewSession: true},
		{ID: 102, Out: true, Kind: "text", Text: "We are checking it now", At: at("10:05"), Status: "seen", AgentName: "Dana", SessionNum: 3},
		{ID: 103, Kind: "text", Text: "Thank you!", At: at("10:06"), SessionNum: 3},
		{ID: 104, Out: true, Kind: "image", Text: "photo.jpg", At: at("10:09"), Status: "delivered", AgentName: "Dana", SessionNum: 3},
		{ID: 105, Out: true, Kind: "text", Text: "The courier has it: delivery today between 14:00 and 16:00.", At: at("10:10"), Status: "failed", Reason: "Viber user not reachable", AgentName: "Dana", SessionNum: 3},
		{ID: 106, Kind: "text", Text: xss, At: at("13:39"), SessionNum: 3},
		{ID: 107, Kind: "text", Text: "Thank you! And will the courier call before coming?\nI am at work until 15:00.", At: at("13:40"), SessionNum: 3},
		{ID: 108, Out: true, Kind: "text", Text: "Yes, about 30 minutes before.", At: at("13:46"), Status: "sent", AgentName: "Dana", SessionNum: 3},
		{ID: 109, Out: true, Kind: "text", Text: "Anything else I can help with?", At: at("13:47"), Status: "queued", AgentName: "Dana", SessionNum: 3},
	}
}

func demoChrome() Chrome {
	return Chrome{Title: "Inbox", AgentName: "Dana Ivanova", LocalMode: true, Sandbox: true}
}

func demoInbox(st session.State, now time.Time) InboxPage {
	p := panelFor(1, st, now)
	return InboxPage{
		Chrome: demoChrome(),
		Rows:   demoRows(now),
		Selected: &ConversationView{
			ID: 1, Name: "Olga Petrova", Phone: "+375 29 860-39-38",
			Messages: demoMessages(),
			Panel:    p,
			Composer: composerFor(1, p),
		},
		LastEventID: 4711,
	}
}

func demoSandbox() SandboxPage {
	sel := &SandboxClient{Name: "Olga Petrova", Phone: "+375298603938", Selected: true}
	msgs := demoMessages()
	return SandboxPage{
		Chrome: Chrome{Title: "Sandbox phone", AgentName: "Dana Ivanova", LocalMode: true, Sandbox: true},
		Clients: []SandboxClient{
			*sel,
			{Name: "Ivan Kowalski", Phone: "+48601555010"},
			{Name: "Anna Sidorova", Phone: "+375331112233"},
		},
		Selected:    sel,
		Messages:    msgs,
		LastEventID: 4711,
		Error:       "The phone number must be in international format, e.g. +375 29 123-45-67.",
		FormName:    "Pavel",
		FormPhone:   "8029",
	}
}

// render renders c and parses the result.
func render(t *testing.T, c templ.Component) (string, *goquery.Document) {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	html := buf.String()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(html))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	assertCSPSafe(t, html, doc)
	return html, doc
}

// assertCSPSafe checks what the Content-Security-Policy would block: inline
// scripts, style attributes, <style> elements and on* handlers.
func assertCSPSafe(t *testing.T, html string, doc *goquery.Document) {
	t.Helper()
	doc.Find("script").Each(func(_ int, s *goquery.Selection) {
		if src, ok := s.Attr("src"); !ok || src == "" || strings.TrimSpace(s.Text()) != "" {
			t.Errorf("inline script: %s", goquery.NewDocumentFromNode(s.Nodes[0]).Text())
		}
	})
	if n := doc.Find("style").Length(); n > 0 {
		t.Errorf("%d <style> elements", n)
	}
	doc.Find("*").Each(func(_ int, s *goquery.Selection) {
		for _, a := range s.Nodes[0].Attr {
			if a.Key == "style" || strings.HasPrefix(a.Key, "on") || strings.HasPrefix(a.Key, "hx-on") {
				t.Errorf("<%s> has a %s attribute", goquery.NodeName(s), a.Key)
			}
		}
	})
	if strings.Contains(html, "<script>alert") {
		t.Errorf("unescaped client text in output")
	}
}

func one(t *testing.T, doc *goquery.Document, sel string) *goquery.Selection {
	t.Helper()
	s := doc.Find(sel)
	if s.Length() != 1 {
		t.Fatalf("%s: want 1 element, got %d", sel, s.Length())
	}
	return s
}

func attr(t *testing.T, s *goquery.Selection, name, want string) {
	t.Helper()
	got, ok := s.Attr(name)
	if !ok || got != want {
		t.Errorf("%s=%q (present %v), want %q", name, got, ok, want)
	}
}

func text(s *goquery.Selection) string { return strings.Join(strings.Fields(s.Text()), " ") }

func TestInboxPage(t *testing.T) {
	st := state(3, at("10:02"), 19, 1)
	html, doc := render(t, Inbox(demoInbox(st, demoNow)))

	for _, id := range []string{
		"conversation-list", "thread", "thread-messages", "session-panel", "countdown", "remaining",
		"unanswered-left", "session-number", "composer", "composer-send", "composer-usage", "local-banner",
		"sandbox-link", "agent-name", "contact",
	} {
		if doc.Find(`[data-testid="`+id+`"]`).Length() == 0 {
			t.Errorf("no data-testid=%q", id)
		}
	}

	// Head: the htmx config that keeps htmx from injecting styles, scripts in order.
	cfg := one(t, doc, `meta[name="htmx-config"]`)
	if c, _ := cfg.Attr("content"); !strings.Contains(c, `"includeIndicatorStyles":false`) || !strings.Contains(c, `"allowEval":false`) {
		t.Errorf("htmx-config = %s", c)
	}
	var srcs []string
	doc.Find("script").Each(func(_ int, s *goquery.Selection) {
		src, _ := s.Attr("src")
		srcs = append(srcs, src)
		if _, ok := s.Attr("defer"); !ok {
			t.Errorf("script %s without defer", src)
		}
	})
	if strings.Join(srcs, " ") != "/static/vendor/htmx-2.0.11.min.js /static/vendor/htmx-ext-ws-2.0.4.js /static/js/app.js" {
		t.Errorf("scripts = %v", srcs)
	}

	// List.
	rows := doc.Find(`[data-testid="conversation-row"]`)
	if rows.Length() != 5 {
		t.Fatalf("rows = %d", rows.Length())
	}
	first := rows.First()
	attr(t, first, "data-conversation-id", "1")
	if got := first.AttrOr("class", ""); got != "row is-selected is-unread" {
		t.Errorf("first row classes = %q", got)
	}
	rows.Slice(1, rows.Length()).Each(func(i int, row *goquery.Selection) {
		if got := row.AttrOr("class", ""); got != "row" && got != "row is-unread" {
			t.Errorf("row %d classes = %q, want row (and is-unread), never selected", i+1, got)
		}
	})
	attr(t, first.Find("a"), "href", "/c/1")
	if got := first.Find(`[data-testid="unread"]`).AttrOr("aria-label", ""); got != "unread" {
		t.Errorf("unread mark = %q", got)
	}
	cd := first.Find(`[data-countdown="row"]`)
	attr(t, cd, "data-ends-at", "1764054120000")
	attr(t, cd, "data-server-now", "1763981235000")
	if got := text(cd); got != "20:14:45" || cd.AttrOr("class", "") != "countdown" {
		t.Errorf("row countdown = %q, classes %q", got, cd.AttrOr("class", ""))
	}
	ivan := rows.Eq(1).Find(`[data-countdown="row"]`)
	if ivan.AttrOr("class", "") != "countdown is-amber" || text(ivan) != "0:41:10" {
		t.Errorf("Ivan's badge = %q %q", ivan.AttrOr("class", ""), text(ivan))
	}
	if got := text(rows.Eq(2).Find(`[data-testid="session-badge"]`)); got != "closed" {
		t.Errorf("Anna's badge = %q", got)
	}
	if rows.Eq(3).Find(`[data-testid="session-locked"]`).Length() != 1 {
		t.Errorf("Mikhail's row has no lock")
	}
	if got := text(rows.Eq(4).Find(`[data-testid="row-name"]`)); got != "+375 25 404-04-04" {
		t.Errorf("unnamed row = %q", got)
	}
	if got := text(rows.Eq(4).Find(`[data-testid="row-preview"]`)); got != xss {
		t.Errorf("preview = %q", got)
	}

	// Thread.
	msgs := doc.Find(`#thread-messages [data-testid="message"]`)
	if msgs.Length() != 9 {
		t.Fatalf("messages = %d", msgs.Length())
	}
	attr(t, msgs.First(), "id", "msg-101")
	attr(t, msgs.First(), "data-direction", "in")
	attr(t, msgs.Eq(1), "data-direction", "out")
	attr(t, msgs.Eq(1), "data-status", "seen")
	if got := text(msgs.First().Find(`[data-testid="session-divider"]`)); got != "Session 3 started" {
		t.Errorf("divider = %q", got)
	}
	if got := text(msgs.Eq(1).Find(`[data-testid="message-ticks"]`)); got != "✓✓" {
		t.Errorf("seen ticks = %q", got)
	}
	if !msgs.Eq(1).Find(".ticks").HasClass("ticks-seen") {
		t.Errorf("seen ticks not accented")
	}
	if got := text(msgs.Eq(7).Find(`[data-testid="message-ticks"]`)); got != "✓" {
		t.Errorf("sent ticks = %q", got)
	}
	if got := text(msgs.Eq(8).Find(`[data-testid="message-ticks"]`)); got != "◷" {
		t.Errorf("queued ticks = %q", got)
	}
	if got := text(msgs.Eq(4).Find(`[data-testid="message-failed"]`)); got != "failed: Viber user not reachable" {
		t.Errorf("failed = %q", got)
	}
	if got := text(msgs.First().Find("time")); got != "10:02" {
		t.Errorf("time = %q", got)
	}

	// XSS: the client's <script> is text.
	if got := text(doc.Find("#msg-106 .bubble-text")); got != xss {
		t.Errorf("xss text = %q", got)
	}
	if !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("xss text not escaped in the HTML")
	}

	// Panel.
	panel := one(t, doc, `[data-testid="session-panel"]`)
	attr(t, panel, "id", "session-panel")
	attr(t, panel, "hx-get", "/c/1/state")
	attr(t, panel, "hx-trigger", "session-ended from:body")
	attr(t, panel, "hx-swap", "none")
	if _, ok := panel.Attr("hx-swap-oob"); ok {
		t.Errorf("page panel carries hx-swap-oob")
	}
	if got := text(panel.Find(`[data-testid="session-number"]`)); got != "3" {
		t.Errorf("session number = %q", got)
	}
	pc := panel.Find(`[data-testid="countdown"]`)
	attr(t, pc, "data-countdown", "panel")
	if got := text(pc); got != "20:14:45" || pc.HasClass("is-closed") {
		t.Errorf("panel countdown = %q", got)
	}
	if got := text(panel.Find(`[data-testid="remaining"]`)); got != "41 of 60 messages left" {
		t.Errorf("remaining = %q", got)
	}
	attr(t, panel.Find("meter"), "value", "41")
	attr(t, panel.Find("meter"), "max", "60")
	if got := text(panel.Find(`[data-testid="unanswered-left"]`)); got != "4 more before the client must reply" {
		t.Errorf("unanswered = %q", got)
	}
	if got := text(panel.Find(`[data-testid="session-started"]`)); got != "24 Nov 10:02" {
		t.Errorf("started = %q", got)
	}
	if got := text(panel.Find(`[data-testid="session-ends"]`)); got != "25 Nov 10:02" {
		t.Errorf("ends = %q", got)
	}
	if got := text(panel.Find(`[data-testid="session-cost"]`)); got != "0.045 EUR" {
		t.Errorf("cost = %q", got)
	}
	if got := text(panel.Find(`[data-testid="contact-country"]`)); got != "Belarus (BY)" {
		t.Errorf("country = %q", got)
	}

	// Composer.
	form := one(t, doc, "form#composer")
	attr(t, form, "action", "/c/1/messages")
	attr(t, form, "method", "post")
	attr(t, form, "hx-post", "/c/1/messages")
	attr(t, form, "hx-target", "#composer")
	attr(t, form, "hx-swap", "outerHTML")
	if _, ok := form.Find("textarea[name=text]").Attr("disabled"); ok {
		t.Errorf("textarea disabled")
	}
	if _, ok := form.Find(`[data-testid="composer-send"]`).Attr("disabled"); ok {
		t.Errorf("send disabled while the session is open")
	}
	if got := text(form.Find(`[data-testid="composer-usage"]`)); got != "Uses 1 message · 41 left in this session · 4 more before the client must reply" {
		t.Errorf("usage = %q", got)
	}

	// Live.
	ws := one(t, doc, "[ws-connect]")
	attr(t, ws, "hx-ext", "ws")
	attr(t, ws, "ws-connect", "/ws?conversation=1&after=4711")
	cur := one(t, doc, "#live-cursor")
	attr(t, cur, "data-last-event-id", "4711")
}

func TestInboxPageNothingSelected(t *testing.T) {
	p := InboxPage{Chrome: Chrome{BasePath: "/desk"}, Rows: demoRows(demoNow), LastEventID: 9}
	_, doc := render(t, Inbox(p))
	attr(t, one(t, doc, "[ws-connect]"), "ws-connect", "/desk/ws?conversation=0&after=9")
	one(t, doc, `[data-testid="thread-empty"]`)
	one(t, doc, "#session-panel")
	attr(t, doc.Find(`[data-testid="conversation-row"] a`).First(), "href", "/desk/c/1")
	attr(t, one(t, doc, `link[rel="stylesheet"]`), "href", "/desk/static/css/app.css")
	if doc.Find(`[data-testid="local-banner"], [data-testid="sandbox-link"]`).Length() != 0 {
		t.Errorf("banner or sandbox link without LocalMode/Sandbox")
	}
	if doc.Find("form#composer").Length() != 0 {
		t.Errorf("composer without a conversation")
	}
}

func TestConversationListPagesAndDelta(t *testing.T) {
	page := InboxPage{Rows: demoRows(demoNow), ListMore: ListLink{Cursor: "1764000000000:7", Href: "/?before=1764000000000%3A7", HX: "/list?before=1764000000000%3A7"}}
	_, doc := render(t, ConversationList(Chrome{}, page))
	nav := one(t, doc, "nav#conversation-list")
	if _, ok := nav.Attr("hx-swap-oob"); ok {
		t.Errorf("the list is never swapped whole")
	}
	ul := one(t, doc, "ul#conversation-rows")
	attr(t, ul, "data-list-top", "1")
	more := one(t, doc, "a#list-more")
	attr(t, more, "href", "/?before=1764000000000%3A7")
	attr(t, more, "hx-get", "/list?before=1764000000000%3A7")
	attr(t, more, "hx-target", "#conversation-rows")
	attr(t, more, "hx-swap", "beforeend")
	one(t, doc, "ul#list-delta[hidden]")

	// The last page, opened further down: no link, and the list does not grow upwards.
	page.ListMore, page.ListBefore = ListLink{}, "1764000000000:7"
	_, doc = render(t, ConversationList(Chrome{}, page))
	if _, ok := one(t, doc, "ul#conversation-rows").Attr("data-list-top"); ok {
		t.Errorf("a page after a cursor claims the top of the list")
	}
	if doc.Find("a#list-more").Length() != 0 || doc.Find("#list-more[hidden]").Length() != 1 {
		t.Errorf("the last page links to more")
	}

	// "Load more" answers with rows and swaps its own link.
	_, doc = render(t, ListPage(Chrome{}, demoRows(demoNow)[3:], ListLink{}))
	if n := doc.Find(`li[data-testid="conversation-row"]`).Length(); n != 2 {
		t.Errorf("%d rows in the page, want 2", n)
	}
	attr(t, one(t, doc, "#list-more"), "hx-swap-oob", "true")

	// A live delta: shared rows with their sort key and no per-page state.
	row := demoRows(demoNow)[1]
	row.ActivityMS = 1764000000123
	var rows bytes.Buffer
	if err := ConversationRowItem(Chrome{}, row).Render(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	_, doc = render(t, ListDelta(rows.Bytes()))
	delta := one(t, doc, "ul#list-delta")
	attr(t, delta, "hx-swap-oob", "true")
	li := delta.Find("li")
	attr(t, li, "data-conversation-id", "2")
	attr(t, li, "data-activity", "1764000000123")
	if li.HasClass("is-selected") {
		t.Errorf("a shared row is selected")
	}
}

func TestMessageBubbleAndThreadAppend(t *testing.T) {
	m := Message{ID: 42, Out: true, Kind: "text", Text: xss, At: at("11:00"), Status: "delivered", AgentName: "Dana", SessionNum: 4, NewSession: true}
	_, doc := render(t, MessageBubble(m, true))
	b := one(t, doc, "#msg-42")
	attr(t, b, "hx-swap-oob", "true")
	attr(t, b, "data-status", "delivered")
	if doc.Find("script").Length() != 0 || text(b.Find(".bubble-text")) != xss {
		t.Errorf("bubble text not escaped")
	}
	if got := text(b.Find(`[data-testid="session-divider"]`)); got != "Session 4 started" {
		t.Errorf("divider = %q", got)
	}

	_, doc = render(t, ThreadAppend(m))
	wrap := doc.Find("body > div").First()
	attr(t, wrap, "hx-swap-oob", "beforeend:#thread-messages")
	inner := wrap.Find("#msg-42")
	if inner.Length() != 1 {
		t.Fatalf("ThreadAppend has no bubble")
	}
	if _, ok := inner.Attr("hx-swap-oob"); ok {
		t.Errorf("appended bubble carries hx-swap-oob")
	}

	attr(t, b, "class", "msg msg-out")
	attr(t, b, "data-direction", "out")
	attr(t, b, "data-message-id", "42")
	attr(t, b, "data-testid", "message")
	attr(t, one(t, doc, `#msg-42 time[data-testid="message-time"]`), "datetime", isoTime(m.At))
	if got := text(b.Find(".bubble-agent")); got != "Dana" {
		t.Errorf("agent = %q", got)
	}
	// What the thread's classes say of a message: its direction, a failure, a paid message.
	for _, c := range []struct {
		m    Message
		want string
	}{
		{Message{ID: 7, Kind: "text", Text: "hi", Status: "received"}, "msg msg-in"},
		{Message{ID: 7, Out: true, Kind: "text", Text: "hi", Status: "failed"}, "msg msg-out is-failed"},
		{Message{ID: 7, Out: true, Kind: "text", Text: "hi", Status: "sent", Paid: &PaidBadge{}}, "msg msg-out msg-paid"},
		{Message{ID: 7, Out: true, Kind: "text", Text: "hi", Status: "undelivered", Paid: &PaidBadge{}}, "msg msg-out is-failed msg-paid"},
	} {
		_, doc := render(t, MessageBubble(c.m, false))
		attr(t, one(t, doc, "#msg-7"), "class", c.want)
	}

	for _, s := range []string{"failed", "undelivered", "expired"} {
		_, doc = render(t, MessageBubble(Message{ID: 1, Out: true, Kind: "text", Text: "x", Status: s, Reason: "TTL over"}, false))
		if got := text(doc.Find(`[data-testid="message-failed"]`)); got != s+": TTL over" {
			t.Errorf("%s: %q", s, got)
		}
		if doc.Find(`[data-testid="message-ticks"]`).Length() != 0 {
			t.Errorf("%s: ticks shown", s)
		}
	}
	_, doc = render(t, MessageBubble(Message{ID: 2, Kind: "file", Text: "invoice.pdf"}, false))
	if got := text(doc.Find(`[data-testid="attachment"]`)); got != "File" {
		t.Errorf("attachment = %q", got)
	}
	if doc.Find(`[data-testid="message-ticks"], [data-testid="message-failed"]`).Length() != 0 {
		t.Errorf("inbound message shows a delivery status")
	}
}

func TestSessionPanelClosed(t *testing.T) {
	st := state(2, at("10:02").Add(-48*time.Hour), 7, 0)
	p := panelFor(9, st, demoNow)
	_, doc := render(t, SessionPanel(Chrome{}, p, true))
	panel := one(t, doc, "#session-panel")
	attr(t, panel, "hx-swap-oob", "true")
	attr(t, panel, "hx-get", "/c/9/state")
	cd := one(t, doc, `[data-testid="countdown"]`)
	if !cd.HasClass("is-closed") || text(cd) != "closed" {
		t.Errorf("closed countdown = %q %q", cd.AttrOr("class", ""), text(cd))
	}
	if _, ok := cd.Attr("data-countdown"); ok {
		t.Errorf("a closed session must not tick")
	}
	if got := text(doc.Find(`[data-testid="remaining"]`)); got != "7 of 60 messages used · closed" {
		t.Errorf("remaining = %q", got)
	}
	if got := text(doc.Find(`[data-testid="session-cost"]`)); got != "0.045 EUR" {
		t.Errorf("cost = %q", got)
	}
}

func TestSessionPanelStates(t *testing.T) {
	// No session yet.
	p := panelFor(5, session.State{}, demoNow)
	_, doc := render(t, SessionPanel(Chrome{}, p, false))
	if got := text(doc.Find(`[data-testid="no-session"]`)); got != "No session yet: sessions are opened by the client" {
		t.Errorf("no session = %q", got)
	}
	if doc.Find(`[data-testid="countdown"], [data-testid="session-number"]`).Length() != 0 {
		t.Errorf("countdown without a session")
	}

	// Last hour, waiting for the client, not billed yet.
	st := state(1, demoNow.Add(-23*time.Hour-30*time.Minute), 0, 5)
	p = panelFor(5, st, demoNow)
	_, doc = render(t, SessionPanel(Chrome{}, p, false))
	cd := one(t, doc, `[data-testid="countdown"]`)
	if !cd.HasClass("is-amber") || text(cd) != "0:30:00" {
		t.Errorf("amber countdown = %q %q", cd.AttrOr("class", ""), text(cd))
	}
	if got := text(doc.Find(`[data-testid="unanswered-left"]`)); got != "Waiting for the client's reply" {
		t.Errorf("unanswered = %q", got)
	}
	if got := text(doc.Find(`[data-testid="session-cost"]`)); got != "not billed yet" {
		t.Errorf("cost = %q", got)
	}
	if n := doc.Find(".dot.is-used").Length(); n != 5 {
		t.Errorf("used dots = %d", n)
	}
}

func TestComposerRefusals(t *testing.T) {
	// Awaiting the client: send disabled with the reason; textarea still usable.
	st := state(3, at("10:02"), 5, 5)
	p := panelFor(1, st, demoNow)
	if p.Status.Refusal == nil || p.Status.Refusal.Code != session.AwaitingClient {
		t.Fatalf("fixture: refusal = %v", p.Status.Refusal)
	}
	comp := composerFor(1, p)
	comp.Text = "Draft <b>reply</b>"
	_, doc := render(t, ComposerForm(Chrome{}, comp))
	send := one(t, doc, `[data-testid="composer-send"]`)
	if _, ok := send.Attr("disabled"); !ok {
		t.Errorf("send enabled while awaiting the client")
	}
	reason := one(t, doc, `[data-testid="composer-reason"]`)
	attr(t, reason, "data-code", "awaiting_client")
	if !strings.HasPrefix(text(reason), "Waiting for the client's reply") {
		t.Errorf("reason = %q", text(reason))
	}
	ta := one(t, doc, "textarea[name=text]")
	if _, ok := ta.Attr("disabled"); ok {
		t.Errorf("textarea disabled")
	}
	if ta.Text() != comp.Text {
		t.Errorf("textarea = %q", ta.Text())
	}
	if got := text(doc.Find(`[data-testid="char-count"]`)); got != "18/1000" {
		t.Errorf("counter = %q", got)
	}
	if doc.Find(`[data-testid="composer-confirm"]`).Length() != 0 {
		t.Errorf("confirm button without needs_confirmation")
	}

	// No session (case 17).
	p = panelFor(1, session.State{}, demoNow)
	_, doc = render(t, ComposerActions(Chrome{}, composerFor(1, p), true))
	attr(t, one(t, doc, "#composer-actions"), "hx-swap-oob", "true")
	attr(t, one(t, doc, `[data-testid="composer-reason"]`), "data-code", "no_session")
	if _, ok := one(t, doc, `[data-testid="composer-send"]`).Attr("disabled"); !ok {
		t.Errorf("send enabled without a session")
	}

	// Rollover: confirm button, plain send disabled.
	st = state(3, at("10:02"), 60, 1)
	p = panelFor(1, st, demoNow)
	if p.Status.Refusal == nil || p.Status.Refusal.Code != session.NeedsConfirmation {
		t.Fatalf("fixture: refusal = %v", p.Status.Refusal)
	}
	comp = composerFor(1, p)
	comp.Error = p.Status.Refusal
	_, doc = render(t, ComposerForm(Chrome{BasePath: "/x"}, comp))
	confirm := one(t, doc, `[data-testid="composer-confirm"]`)
	attr(t, confirm, "name", "confirm_new_session")
	attr(t, confirm, "value", "1")
	attr(t, confirm, "type", "submit")
	if got := text(confirm); got != "Send and begin session 4 (billed)" {
		t.Errorf("confirm = %q", got)
	}
	if _, ok := one(t, doc, `[data-testid="composer-send"]`).Attr("disabled"); !ok {
		t.Errorf("plain send enabled when it would be refused")
	}
	attr(t, one(t, doc, `[data-testid="composer-error"]`), "data-code", "needs_confirmation")
	attr(t, one(t, doc, "form#composer"), "hx-post", "/x/c/1/messages")

	// A refused send keeps the text and shows the error prominently.
	st = state(3, at("10:02"), 5, 1)
	p = panelFor(1, st, demoNow)
	comp = composerFor(1, p)
	comp.Text = strings.Repeat("я", 1001)
	comp.Error = session.Refuse(session.TextTooLong, "The text has 1001 characters; Viber allows at most 1000. Shorten it by 1.")
	_, doc = render(t, ComposerForm(Chrome{}, comp))
	if got := text(doc.Find(`[data-testid="composer-error"]`)); !strings.Contains(got, "Shorten it by 1") {
		t.Errorf("error = %q", got)
	}
	if c := one(t, doc, `[data-testid="char-count"]`); !c.HasClass("is-over") || text(c) != "1001/1000" {
		t.Errorf("counter = %q %q", c.AttrOr("class", ""), text(c))
	}
}

func TestLiveCursor(t *testing.T) {
	html, doc := render(t, LiveCursor(123))
	c := one(t, doc, "#live-cursor")
	attr(t, c, "data-last-event-id", "123")
	attr(t, c, "hx-swap-oob", "true")
	if _, ok := c.Attr("hidden"); !ok {
		t.Errorf("cursor visible: %s", html)
	}
}

func TestSandboxPage(t *testing.T) {
	html, doc := render(t, Sandbox(demoSandbox()))
	for _, id := range []string{"sandbox-client", "new-client-form", "sandbox-error", "phone", "sandbox-messages", "sandbox-send-form", "sandbox-message"} {
		if doc.Find(`[data-testid="`+id+`"]`).Length() == 0 {
			t.Errorf("no data-testid=%q", id)
		}
	}
	clients := doc.Find(`[data-testid="sandbox-client"]`)
	attr(t, clients.First(), "href", "/sandbox?phone=%2B375298603938")
	if !clients.First().HasClass("is-selected") {
		t.Errorf("selected client not highlighted")
	}
	nf := one(t, doc, `[data-testid="new-client-form"]`)
	attr(t, nf, "action", "/sandbox/clients")
	attr(t, nf.Find("input[name=name]"), "value", "Pavel")
	attr(t, nf.Find("input[name=phone]"), "value", "8029")

	send := one(t, doc, `[data-testid="sandbox-send-form"]`)
	attr(t, send, "action", "/sandbox/send")
	attr(t, send, "method", "post")
	attr(t, send, "hx-post", "/sandbox/send")
	attr(t, send, "hx-swap", "none")
	attr(t, send.Find("input[name=phone]"), "value", "+375298603938")
	attr(t, send.Find("input[name=name]"), "value", "Olga Petrova")
	one(t, doc, "textarea[name=text]")

	attr(t, one(t, doc, "[ws-connect]"), "ws-connect", "/sandbox/ws?phone=%2B375298603938&after=4711")
	one(t, doc, "#live-cursor")

	// The client's own message on the right, the business's on the left.
	in := one(t, doc, "#sbx-msg-101")
	if !in.HasClass("sbx-mine") {
		t.Errorf("client's message class = %q", in.AttrOr("class", ""))
	}
	if _, ok := in.Attr("hx-post"); ok {
		t.Errorf("client's own message marks seen")
	}
	seen := one(t, doc, "#sbx-msg-102")
	if !seen.HasClass("sbx-theirs") {
		t.Errorf("business message class = %q", seen.AttrOr("class", ""))
	}
	if _, ok := seen.Attr("hx-post"); ok {
		t.Errorf("a seen message marks seen again")
	}
	delivered := one(t, doc, "#sbx-msg-104")
	attr(t, delivered, "hx-post", "sandbox/messages/104/seen")
	attr(t, delivered, "hx-trigger", "load")
	attr(t, delivered, "hx-swap", "none")
	if _, ok := one(t, doc, "#sbx-msg-105").Attr("hx-post"); ok {
		t.Errorf("a failed message marks seen")
	}
	if got := text(doc.Find("#sbx-msg-106 .bubble-text")); got != xss || strings.Contains(html, xss) {
		t.Errorf("sandbox xss = %q", got)
	}
}

func TestSandboxNothingSelected(t *testing.T) {
	_, doc := render(t, Sandbox(SandboxPage{Chrome: Chrome{Sandbox: true}}))
	one(t, doc, `[data-testid="sandbox-hint"]`)
	if doc.Find("[ws-connect], #sandbox-messages, form[data-sandbox-send]").Length() != 0 {
		t.Errorf("phone chat without a client")
	}
	if doc.Find(`[data-testid="sandbox-error"]`).Length() != 0 {
		t.Errorf("error shown without one")
	}
}

func TestSandboxBubbleAndAppend(t *testing.T) {
	m := Message{ID: 7, Out: true, Kind: "text", Text: "Hi", At: at("12:00"), Status: "sent"}
	_, doc := render(t, SandboxBubble(m, true))
	b := one(t, doc, "#sbx-msg-7")
	attr(t, b, "hx-swap-oob", "true")
	attr(t, b, "hx-post", "sandbox/messages/7/seen")
	_, doc = render(t, SandboxAppend(m))
	attr(t, doc.Find("body > div").First(), "hx-swap-oob", "beforeend:#sandbox-messages")
	one(t, doc, "#sandbox-messages #sbx-msg-7, [hx-swap-oob] > #sbx-msg-7")
}

func TestErrorPage(t *testing.T) {
	_, doc := render(t, ErrorPage(Chrome{BasePath: "/d"}, 404, "No conversation "+xss))
	if got := text(doc.Find(`[data-testid="error-status"]`)); got != "404" {
		t.Errorf("status = %q", got)
	}
	if got := text(doc.Find("h1")); got != "Not Found" {
		t.Errorf("title = %q", got)
	}
	if got := text(doc.Find(`[data-testid="error-message"]`)); got != "No conversation "+xss {
		t.Errorf("message = %q", got)
	}
	attr(t, doc.Find(".error-card a"), "href", "/d/")
}

func TestHelpers(t *testing.T) {
	for _, c := range []struct {
		cost float64
		want string
	}{{0, "not billed yet"}, {0.045, "0.045 EUR"}, {0.5, "0.50 EUR"}, {2, "2.00 EUR"}} {
		if got := costText(c.cost, "EUR"); got != c.want {
			t.Errorf("costText(%v) = %q, want %q", c.cost, got, c.want)
		}
	}
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{0, "closed"}, {-time.Second, "closed"}, {time.Second, "0:00:01"}, {3*time.Hour + 12*time.Minute + 45*time.Second, "3:12:45"}, {24 * time.Hour, "24:00:00"}} {
		if got := clockText(c.d); got != c.want {
			t.Errorf("clockText(%v) = %q, want %q", c.d, got, c.want)
		}
	}
	if got := initials("olga  petrova ivanovna"); got != "OP" {
		t.Errorf("initials = %q", got)
	}
	for name, want := range map[string]string{
		"+375 25 404":           "#",
		"":                      "#",
		"   ":                   "#",
		"  анна\tмария ":        "АМ",
		"élodie":                "É",
		"1st Dana Lee":          "DL",
		"O'Neil\u00a0Kate Bush": "OK", // a no-break space parts words, as strings.Fields does
		"x":                     "X",
	} {
		if got := initials(name); got != want {
			t.Errorf("initials(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestWriteDemo writes demo pages for a look in a browser:
//
//	SESSIONDESK_DEMO_DIR=/tmp/demo go test ./views -run TestWriteDemo
//
// then serve the directory with /static from the repository alongside.
func TestWriteDemo(t *testing.T) {
	dir := os.Getenv("SESSIONDESK_DEMO_DIR")
	if dir == "" {
		t.Skip("SESSIONDESK_DEMO_DIR not set")
	}
	pages := map[string]templ.Component{
		"inbox.html":          Inbox(demoInbox(state(3, at("10:02"), 19, 1), demoNow)),
		"inbox-awaiting.html": Inbox(withSelectedRow(demoInbox(state(3, demoNow.Add(-23*time.Hour-20*time.Minute), 5, 5), demoNow))),
		"inbox-rollover.html": Inbox(rollover(demoInbox(state(3, at("10:02"), 60, 1), demoNow))),
		"inbox-closed.html":   Inbox(demoInbox(state(2, at("10:02").Add(-30*time.Hour), 7, 0), demoNow)),
		"inbox-none.html":     Inbox(InboxPage{Chrome: demoChrome(), Rows: demoRows(demoNow)}),
		"sandbox.html":        Sandbox(demoSandbox()),
		"sandbox-empty.html":  Sandbox(SandboxPage{Chrome: Chrome{Title: "Sandbox phone", LocalMode: true, Sandbox: true, AgentName: "Dana Ivanova"}}),
		"error.html":          ErrorPage(demoChrome(), 404, "This conversation does not exist, or was deleted."),
		"ticking.html":        Inbox(demoInbox(state(3, demoNow.Add(-24*time.Hour+3*time.Second), 19, 1), demoNow)),
	}
	// What GET /c/1/state answers once the session has ended.
	closed := demoInbox(state(3, demoNow.Add(-24*time.Hour-time.Second), 19, 1), demoNow)
	var many []ConversationRow
	for i := range 8 {
		for _, r := range demoRows(demoNow) {
			r.ID += int64(i * 10)
			r.Selected = r.ID == 1
			many = append(many, r)
		}
	}
	manyPage := demoInbox(state(3, at("10:02"), 19, 1), demoNow)
	manyPage.Rows = many
	pages["inbox-many.html"] = Inbox(manyPage)
	pages["list.html"] = ConversationList(manyPage.Chrome, manyPage)
	pages["state.html"] = templ.Join(
		SessionPanel(closed.Chrome, closed.Selected.Panel, true),
		ComposerActions(closed.Chrome, closed.Selected.Composer, true),
	)
	for name, c := range pages {
		var buf bytes.Buffer
		if err := c.Render(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func withSelectedRow(p InboxPage) InboxPage {
	p.Selected.Composer.Text = "We will let you know as soon as"
	return p
}

func rollover(p InboxPage) InboxPage {
	p.Selected.Composer.Error = p.Selected.Composer.Status.Refusal
	p.Selected.Composer.Text = "One more thing: the courier will call you."
	return p
}

// The attributes written without templ's per-expression path (attrs.go) are
// escaped all the same: a hostile value stays inside its attribute.
func TestSpreadAttributesAreEscaped(t *testing.T) {
	hostile := `x" onmouseover="alert(1)" data-y='<b>&`
	r := ConversationRow{ID: 9, Status: hostile, Name: hostile, Preview: hostile, ReadMark: -1,
		Badge: SessionBadge{Open: true, EndsAt: at("15:00"), NowUnix: at("14:00").UnixMilli()}}
	html, doc := render(t, ConversationRowItem(demoChrome(), r))
	row := one(t, doc, `li[data-conversation-id="9"]`)
	attr(t, row, "data-status", hostile)
	if _, ok := row.Attr("data-read"); ok {
		t.Errorf("a shared row carries a read mark")
	}
	if doc.Find("[onmouseover]").Length() != 0 || doc.Find("b").Length() != 0 || strings.Contains(html, hostile) {
		t.Errorf("a hostile value left its attribute or its text: %s", html)
	}
	if got := text(row.Find(`[data-testid="row-name"]`)); got != hostile {
		t.Errorf("name = %q", got)
	}
	m := Message{ID: 3, Out: true, Kind: "text", Text: hostile, AgentName: hostile, At: at("11:00"), Status: hostile}
	html, doc = render(t, MessageBubble(m, false))
	attr(t, one(t, doc, "#msg-3"), "data-status", hostile)
	if doc.Find("[onmouseover]").Length() != 0 || doc.Find("b").Length() != 0 || strings.Contains(html, hostile) {
		t.Errorf("a hostile value left the bubble's attribute or text: %s", html)
	}
	if got := text(doc.Find(".bubble-agent")); got != hostile {
		t.Errorf("agent = %q", got)
	}
}

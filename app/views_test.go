package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// viewList is GET /api/v1/conversations?... as login: the ids listed, and
// each one's unread count for login.
func (ta *testApp) viewList(t *testing.T, login, query string) ([]int64, map[int64]int) {
	t.Helper()
	status, body := ta.do(t, "GET", "/api/v1/conversations"+query, "", "", as(login)...)
	if status != http.StatusOK {
		t.Fatalf("GET %s as %s: %d %s", query, login, status, body)
	}
	var out struct {
		Conversations []struct {
			ID     int64 `json:"id"`
			Unread int   `json:"unread"`
		} `json:"conversations"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	unread := map[int64]int{}
	for _, c := range out.Conversations {
		ids = append(ids, c.ID)
		unread[c.ID] = c.Unread
	}
	return ids, unread
}

// The API's views: each lists what it says, for the caller (Mine), in the
// view's order (waiting clients by session end first); ?status= and ?q=
// filter; unread is the caller's own; bad values are a 400 naming the
// values known.
func TestAPIViews(t *testing.T) {
	ta := startTeamApp(t)
	a := ta.teamClientWrites(t, "+375298600001", "my parcel is late")
	ta.clock.Add(time.Minute)
	b := ta.teamClientWrites(t, "+375298600002", "hello")
	ta.clock.Add(time.Minute)
	c := ta.teamClientWrites(t, "+375298600003", "thanks")
	for _, login := range []string{"olga", "ivan"} { // the agents exist once they signed in
		ta.do(t, "GET", "/", "", "", as(login)...)
	}
	if status, body := ta.patch(t, a, "olga", `{"assignee":"olga"}`); status != http.StatusOK {
		t.Fatalf("assign: %d %s", status, body)
	}
	// Ivan answers c: c no longer waits on us.
	if status, body := ta.do(t, "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", c), "application/json",
		`{"type":"text","text":"You are welcome"}`, as("ivan")...); status != http.StatusCreated {
		t.Fatalf("answer c: %d %s", status, body)
	}
	// (Replying to an unassigned conversation assigns it to the replier.)
	if status, body := ta.patch(t, b, "ivan", `{"status":"resolved"}`); status != http.StatusOK {
		t.Fatalf("resolve b: %d %s", status, body)
	}
	for _, tc := range []struct {
		login, query string
		want         []int64
	}{
		{"olga", "", []int64{a, c}}, // All, open: a waits (first), then c by activity
		{"olga", "?view=all&status=any", []int64{a, b, c}},
		{"olga", "?view=all&status=resolved", []int64{b}},
		{"olga", "?view=mine", []int64{a}},
		{"ivan", "?view=mine", []int64{c}},
		{"ivan", "?view=unassigned", nil},
		{"olga", "?view=unassigned&status=any", []int64{b}},
		{"olga", "?view=waiting", []int64{a}},
		{"olga", "?view=waiting&status=any", []int64{a, b}},
		{"olga", "?view=expiring", nil}, // nothing ends within the hour yet
		{"olga", "?view=locked", nil},
		{"olga", "?view=lost", nil},
		{"olga", "?q=" + url.QueryEscape("+375 29 860-00-01"), []int64{a}},
		{"olga", "?q=375298600003", []int64{c}},
		{"olga", "?view=mine&q=375298600003", nil},
	} {
		if got, _ := ta.viewList(t, tc.login, tc.query); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s %q: %v, want %v", tc.login, tc.query, got, tc.want)
		}
	}
	// Time: a's session nears its end (Expiring), then ends unanswered (lost).
	ta.clock.Add(23*time.Hour + 30*time.Minute)
	if got, _ := ta.viewList(t, "olga", "?view=expiring"); !slices.Contains(got, a) {
		t.Errorf("half an hour before its end, Expiring lists %v, want a (%d) in it", got, a)
	}
	ta.clock.Add(time.Hour)
	if got, _ := ta.viewList(t, "olga", "?view=lost"); fmt.Sprint(got) != fmt.Sprint([]int64{a}) {
		t.Errorf("after its end, Closed unanswered lists %v, want [%d]", got, a)
	}
	if got, _ := ta.viewList(t, "olga", "?view=waiting"); len(got) != 0 {
		t.Errorf("after the end, Waiting on us lists %v, want none", got)
	}

	for _, bad := range []string{"?view=Mine", "?view=closed", "?view=" + strings.Repeat("x", 300), "?status=done",
		"?status=any%00", "?q=" + strings.Repeat("x", 300)} {
		status, body := ta.do(t, "GET", "/api/v1/conversations"+bad, "", "", as("olga")...)
		if status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, status)
			continue
		}
		if e := decodeError(t, body); e.Code != "bad_request" || (strings.HasPrefix(bad, "?view") && !strings.Contains(e.Message, "waiting")) {
			t.Errorf("%s: %+v, want bad_request naming the views", bad, e)
		}
	}
}

// Unread is per agent: reading (or marking unread) changes the caller's own
// count only; an unknown conversation is a 404, and a cross-site post is refused.
func TestAPIReadAndUnreadPerAgent(t *testing.T) {
	ta := startTeamApp(t)
	conv := ta.teamClientWrites(t, "+375298600001", "one")
	ta.teamClientWrites(t, "+375298600001", "two")
	for _, login := range []string{"olga", "ivan"} {
		ta.do(t, "GET", "/", "", "", as(login)...)
	}
	unread := func(login string) int {
		_, u := ta.viewList(t, login, "")
		return u[conv]
	}
	if unread("olga") != 2 || unread("ivan") != 2 {
		t.Fatalf("unread %d and %d, want 2 each", unread("olga"), unread("ivan"))
	}
	post := func(path, login string, header ...string) int {
		status, _ := ta.do(t, "POST", path, "", "", append(as(login), header...)...)
		return status
	}
	path := fmt.Sprintf("/api/v1/conversations/%d", conv)
	if s := post(path+"/read", "olga"); s != http.StatusNoContent {
		t.Fatalf("read: %d", s)
	}
	if unread("olga") != 0 || unread("ivan") != 2 {
		t.Errorf("after Olga read: %d and %d, want 0 and 2", unread("olga"), unread("ivan"))
	}
	if s := post(path+"/unread", "olga"); s != http.StatusNoContent {
		t.Fatalf("unread: %d", s)
	}
	if unread("olga") != 1 || unread("ivan") != 2 {
		t.Errorf("after Olga marked it unread: %d and %d, want 1 and 2", unread("olga"), unread("ivan"))
	}
	for _, p := range []string{"/api/v1/conversations/999/read", "/api/v1/conversations/999/unread", "/api/v1/conversations/x/read"} {
		if s := post(p, "olga"); s != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", p, s)
		}
	}
	if s := post(fmt.Sprintf("/c/%d/unread", conv), "ivan", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"); s != http.StatusForbidden {
		t.Errorf("a cross-site mark unread: %d, want 403", s)
	}
	// The page's form marks it unread for Ivan and goes back to his view.
	if s := post(path+"/read", "ivan"); s != http.StatusNoContent {
		t.Fatal(s)
	}
	req, _ := http.NewRequest("POST", ta.base+fmt.Sprintf("/c/%d/unread", conv), strings.NewReader("view=waiting"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h := append(as("ivan"), "Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/?view=waiting" || unread("ivan") != 1 {
		t.Errorf("the page's mark unread: %d to %q, Ivan's unread %d; want 303 to /?view=waiting and 1",
			res.StatusCode, res.Header.Get("Location"), unread("ivan"))
	}
	status, _ := ta.do(t, "POST", fmt.Sprintf("/c/%d/unread", conv), "application/x-www-form-urlencoded", "view=nope",
		append(as("ivan"), "Sec-Fetch-Site", "same-origin")...)
	if status != http.StatusBadRequest {
		t.Errorf("mark unread back to an unknown view: %d, want 400", status)
	}
}

// The inbox page shows the views with their counts for the signed-in agent,
// the current one marked, and each agent's own unread in the title.
func TestInboxPageShowsViewsAndCounts(t *testing.T) {
	ta := startTeamApp(t)
	a := ta.teamClientWrites(t, "+375298600001", "one")
	ta.teamClientWrites(t, "+375298600002", "two")
	ta.do(t, "GET", "/", "", "", as("olga")...)
	if status, body := ta.patch(t, a, "olga", `{"assignee":"olga"}`); status != http.StatusOK {
		t.Fatalf("assign: %d %s", status, body)
	}
	if s, _ := ta.do(t, "POST", fmt.Sprintf("/api/v1/conversations/%d/read", a), "", "", as("olga")...); s != http.StatusNoContent {
		t.Fatal(s)
	}
	for _, tc := range []struct {
		login, path string
		counts      map[string]string
		title       string
		rows        int
	}{
		{"olga", "/?view=mine", map[string]string{"mine": "1", "unassigned": "1", "all": "2", "waiting": "2"}, "(1) Inbox · Sessiondesk", 1},
		{"ivan", "/?view=waiting", map[string]string{"mine": "0", "unassigned": "1", "all": "2", "waiting": "2"}, "(1) Inbox · Sessiondesk", 2},
	} {
		status, body := ta.do(t, "GET", tc.path, "", "", as(tc.login)...)
		if status != http.StatusOK {
			t.Fatalf("%s: %d", tc.path, status)
		}
		doc := htmlDoc(t, body)
		for view, want := range tc.counts {
			if got := strings.TrimSpace(doc.Find(`[data-testid="count-` + view + `"]`).Text()); got != want {
				t.Errorf("%s for %s: %s count %q, want %q", tc.path, tc.login, view, got, want)
			}
		}
		view := strings.TrimPrefix(tc.path, "/?view=")
		if doc.Find(`[data-testid="view-`+view+`"][aria-current="page"]`).Length() != 1 {
			t.Errorf("%s: the view is not marked current", tc.path)
		}
		if got := doc.Find("title").Text(); got != tc.title {
			t.Errorf("%s for %s: title %q, want %q", tc.path, tc.login, got, tc.title)
		}
		if n := doc.Find(`[data-testid="conversation-row"]`).Length(); n != tc.rows {
			t.Errorf("%s for %s: %d rows, want %d", tc.path, tc.login, n, tc.rows)
		}
		doc.Find(`[data-testid="conversation-row"]`).Each(func(_ int, s *goquery.Selection) {
			if s.AttrOr("data-read", "") == "" {
				t.Errorf("%s: row %s carries no read mark", tc.path, s.AttrOr("data-conversation-id", ""))
			}
		})
	}
	if status, _ := ta.do(t, "GET", "/?view=everything", "", "", as("olga")...); status != http.StatusBadRequest {
		t.Errorf("an unknown view: %d, want 400", status)
	}
}

package app

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"sessiondesk/store"
)

// unread is how many client messages of conv the local dev login's agent
// ("local", who signs the test requests) has not read.
func (ta *testApp) unread(t *testing.T, conv int64) int {
	t.Helper()
	agent, err := ta.Store.EnsureAgent(context.Background(), "local", "Local", "admin")
	if err != nil {
		t.Fatal(err)
	}
	var n map[int64]int
	err = ta.Store.Read(context.Background(), func(r *store.Reader) (err error) {
		n, err = r.UnreadCounts(context.Background(), agent.ID, []int64{conv})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n[conv]
}

// A GET changes nothing: opening a conversation's page leaves it unread (link
// previews and prefetchers open pages too). The page's own POST marks it read,
// and that POST is refused from another site.
func TestOpeningAConversationMarksReadOnlyByPost(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	path := "/c/" + strconv.FormatInt(conv, 10)

	status, body := ta.do(t, "GET", path, "", "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d", path, status)
	}
	if n := ta.unread(t, conv); n != 1 {
		t.Errorf("after a GET of the page the conversation has %d unread, want 1 (a GET changes nothing)", n)
	}
	if !strings.Contains(string(body), `hx-post="`+path+`/read"`) {
		t.Errorf("the page has no mark-read post to %s/read", path)
	}

	status, _ = ta.do(t, "POST", path+"/read", "", "", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	if status != http.StatusForbidden {
		t.Errorf("a cross-site POST to mark read: %d, want 403", status)
	}
	if n := ta.unread(t, conv); n != 1 {
		t.Errorf("a cross-site POST changed the unread count to %d", n)
	}

	status, _ = ta.do(t, "POST", path+"/read", "", "", "Sec-Fetch-Site", "same-origin", "HX-Request", "true")
	if status != http.StatusNoContent {
		t.Errorf("the page's POST to mark read: %d, want 204", status)
	}
	if n := ta.unread(t, conv); n != 0 {
		t.Errorf("after the page's POST the conversation has %d unread, want 0", n)
	}
	if status, _ := ta.do(t, "POST", "/c/999/read", "", "", "Sec-Fetch-Site", "same-origin"); status != http.StatusNotFound {
		t.Errorf("marking an unknown conversation read: %d, want 404", status)
	}
}

package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"

	"sessiondesk/session"
	"sessiondesk/store"
)

// clientSays stores a client's message through the store, as a channel would.
func (ta *testApp) clientSays(t *testing.T, phone, name, text string) store.Message {
	t.Helper()
	r, err := ta.Store.ReceiveClientMessage(context.Background(), store.ClientMessage{
		Phone: phone, Name: name, Kind: session.Text, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	return r.Message
}

type apiSearchAnswer struct {
	Results []struct {
		Conversation struct {
			ID      int64 `json:"id"`
			Contact struct {
				Name  string `json:"name"`
				Phone string `json:"phone"`
			} `json:"contact"`
		} `json:"conversation"`
		ContactMatch bool `json:"contact_match"`
		Matches      []struct {
			MessageID  int64    `json:"message_id"`
			Direction  string   `json:"direction"`
			Snippet    string   `json:"snippet"`
			At         string   `json:"at"`
			Highlights [][2]int `json:"highlights"`
		} `json:"matches"`
	} `json:"results"`
}

func (ta *testApp) apiSearch(t *testing.T, query string) (int, apiSearchAnswer, []byte) {
	t.Helper()
	status, body := ta.do(t, "GET", "/api/v1/search?"+query, "", "")
	var out apiSearchAnswer
	if status == http.StatusOK {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("search answer %s: %v", body, err)
		}
	}
	return status, out, body
}

func TestAPISearch(t *testing.T) {
	ta := startApp(t)
	olga := ta.clientSays(t, "+375298603938", "Olga", "Где моя посылка? Трек не работает")
	ta.clientSays(t, "+375291112233", "Ivan", "Спасибо, посылка пришла")
	pierre := ta.clientSays(t, "+33612345678", "Pierre", "Le café était froid")

	// A word: both conversations, each with its match and where it is.
	status, res, body := ta.apiSearch(t, "q="+url.QueryEscape("посыл"))
	if status != http.StatusOK || len(res.Results) != 2 {
		t.Fatalf("посыл: %d %s", status, body)
	}
	m := res.Results[1].Matches
	if res.Results[1].Conversation.ID != olga.ConversationID || len(m) != 1 || m[0].MessageID != olga.ID ||
		m[0].Direction != "in" || m[0].At == "" {
		t.Fatalf("Olga's result: %s", body)
	}
	if h := m[0].Highlights; len(h) != 1 || string([]rune(m[0].Snippet)[h[0][0]:h[0][1]]) != "посылка" {
		t.Errorf("highlights %v of %q, want посылка", h, m[0].Snippet)
	}

	// A phone number with spaces finds the client.
	status, res, body = ta.apiSearch(t, "q="+url.QueryEscape("+375 29 860-39-38"))
	if status != http.StatusOK || len(res.Results) != 1 || !res.Results[0].ContactMatch ||
		res.Results[0].Conversation.Contact.Phone != "+375298603938" || res.Results[0].Matches == nil {
		t.Errorf("phone: %d %s", status, body)
	}

	// Diacritics folded; limit counts conversations.
	status, res, body = ta.apiSearch(t, "q=cafe+etait&limit=1")
	if status != http.StatusOK || len(res.Results) != 1 || res.Results[0].Matches[0].MessageID != pierre.ID {
		t.Errorf("cafe etait: %d %s", status, body)
	}

	// Query syntax is searched as text: 200, nothing found, nothing broken.
	for _, q := range []string{`"`, `AND OR NEAR(`, `*`, `body:*`, `'); DROP TABLE messages; --`} {
		status, res, body := ta.apiSearch(t, "q="+url.QueryEscape(q))
		if status != http.StatusOK || len(res.Results) != 0 || !strings.Contains(string(body), `"results":[]`) {
			t.Errorf("%q: %d %s", q, status, body)
		}
	}

	// Errors: the API's shape and codes.
	for _, tc := range []struct{ query, want string }{
		{"", "q:"},
		{"q=", "q:"},
		{"q=+++", "q:"},
		{"q=" + strings.Repeat("a", store.MaxSearchLen+1), "at most 200"},
		{"q=" + strings.Repeat("a+", 11), "words"},
		{"q=x&limit=0", "limit"},
		{"q=x&limit=51", "limit"},
		{"q=x&limit=ten", "limit"},
	} {
		status, _, body := ta.apiSearch(t, tc.query)
		if status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", tc.query, status, body)
			continue
		}
		if e := decodeError(t, body); e.Code != "bad_request" || !strings.Contains(e.Message, tc.want) {
			t.Errorf("%s: %+v, want bad_request naming %q", tc.query, e, tc.want)
		}
	}
	// Still there afterwards.
	if status, res, _ := ta.apiSearch(t, "q=trek"); status != http.StatusOK || len(res.Results) != 0 {
		t.Errorf("a Latin word for a Cyrillic one matched: %d", len(res.Results))
	}
	if status, res, _ := ta.apiSearch(t, "q=трек"); status != http.StatusOK || len(res.Results) != 1 {
		t.Errorf("трек: %d results", len(res.Results))
	}
}

func TestSearchPageEscapesAndMarks(t *testing.T) {
	ta := startApp(t)
	m := ta.clientSays(t, "+375298603938", `Olga <b>"bold"</b>`, `<script>alert(1)</script> my parcel & <img src=x onerror=alert(2)>`)
	status, body := ta.do(t, "GET", "/search?q=parcel", "", "")
	if status != http.StatusOK {
		t.Fatalf("search page: %d %s", status, body)
	}
	html := string(body)
	for _, bad := range []string{"<script>alert", "<img src=x", "<b>\"bold\""} {
		if strings.Contains(html, bad) {
			t.Errorf("unescaped %q in the results page", bad)
		}
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(html))
	if err != nil {
		t.Fatal(err)
	}
	snippet := doc.Find(`[data-testid="search-snippet"]`)
	if got := snippet.Find("mark").Text(); got != "parcel" {
		t.Errorf("marked %q, want parcel", got)
	}
	if got := snippet.Text(); !strings.Contains(got, "<script>alert(1)</script> my parcel & <img") {
		t.Errorf("snippet text %q", got)
	}
	href, _ := doc.Find(`[data-testid="search-match"]`).Attr("href")
	want := fmt.Sprintf("/c/%d?around=%d#msg-%d", m.ConversationID, m.ID, m.ID)
	if href != want {
		t.Errorf("link %q, want %q", href, want)
	}
	if got := doc.Find(`[data-testid="search-result"] .search-name`).Text(); got != `Olga <b>"bold"</b>` {
		t.Errorf("name %q", got)
	}

	// The live results: the same, as a fragment; blank gives the list back.
	status, body = ta.do(t, "GET", "/search/live?q=parc", "", "")
	if status != http.StatusOK || !strings.Contains(string(body), "<mark>parcel</mark>") || strings.Contains(string(body), "<script>alert") {
		t.Errorf("live: %d %s", status, body)
	}
	if status, body = ta.do(t, "GET", "/search/live?q=+", "", ""); status != http.StatusOK || len(body) != 0 {
		t.Errorf("live blank: %d %q", status, body)
	}
	// Too long: the page says why (400), the live results too (200, for htmx).
	long := url.QueryEscape(strings.Repeat("я", 300))
	if status, body = ta.do(t, "GET", "/search?q="+long, "", ""); status != http.StatusBadRequest ||
		!strings.Contains(string(body), "at most 200") {
		t.Errorf("long on the page: %d", status)
	}
	if status, body = ta.do(t, "GET", "/search/live?q="+long, "", ""); status != http.StatusOK ||
		!strings.Contains(string(body), `data-testid="search-error"`) || utf8.RuneCount(body) > 4000 {
		t.Errorf("long live: %d %d bytes", status, len(body))
	}
	// Nothing found, and the empty page.
	if status, body = ta.do(t, "GET", "/search?q=zzz", "", ""); status != http.StatusOK ||
		!strings.Contains(string(body), `data-testid="search-empty"`) {
		t.Errorf("nothing found: %d", status)
	}
	if status, body = ta.do(t, "GET", "/search", "", ""); status != http.StatusOK ||
		!strings.Contains(string(body), `data-testid="search-input"`) {
		t.Errorf("empty search page: %d", status)
	}
}

// TestSearchLinkReachesAnOlderMessage: a result's link opens the thread back
// to its message even when it is older than the last 300 the thread shows.
func TestSearchLinkReachesAnOlderMessage(t *testing.T) {
	ta := startApp(t)
	old := ta.clientSays(t, "+375298603938", "Olga", "the first invoice")
	for i := range 330 {
		ta.clientSays(t, "+375298603938", "Olga", "message "+strconv.Itoa(i))
	}
	other := ta.clientSays(t, "+375291112233", "Ivan", "another invoice")
	path := fmt.Sprintf("/c/%d", old.ConversationID)
	anchor := fmt.Sprintf(`id="msg-%d"`, old.ID)
	if _, body := ta.do(t, "GET", path, "", ""); strings.Contains(string(body), anchor) {
		t.Fatal("the plain thread already shows the first message; the test needs more")
	}
	status, body := ta.do(t, "GET", fmt.Sprintf("%s?around=%d", path, old.ID), "", "")
	if status != http.StatusOK || !strings.Contains(string(body), anchor) {
		t.Errorf("around the first message: %d, anchor shown %v", status, strings.Contains(string(body), anchor))
	}
	// Another conversation's message, or nonsense, opens the thread as usual.
	for _, around := range []string{strconv.FormatInt(other.ID, 10), "x", "-1", "99999999"} {
		status, body := ta.do(t, "GET", path+"?around="+around, "", "")
		if status != http.StatusOK || !strings.Contains(string(body), `data-testid="thread"`) {
			t.Errorf("around=%s: %d", around, status)
		}
	}
}

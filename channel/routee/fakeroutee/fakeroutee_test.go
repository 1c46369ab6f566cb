package fakeroutee_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/clock"
)

func start(t *testing.T) (*fakeroutee.Server, string, *clock.Manual) {
	t.Helper()
	c := clock.NewManual(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))
	s := fakeroutee.New(fakeroutee.Options{AppID: "id", AppSecret: "secret", Now: c.Now, TokenTTL: time.Hour})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv.URL, c
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

func token(t *testing.T, base string) string {
	t.Helper()
	status, body := tokenRequest(t, base, "id", "secret", "client_credentials")
	if status != 200 {
		t.Fatalf("token: %d %s", status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" || tok.ExpiresIn != 3600 || tok.TokenType != "Bearer" {
		t.Fatalf("token answer %s: %v", body, err)
	}
	return tok.AccessToken
}

func tokenRequest(t *testing.T, base, id, secret, grant string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/oauth/token", strings.NewReader(url.Values{"grant_type": {grant}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func viber(t *testing.T, base, tok, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/viber", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	return do(t, req)
}

// valid returns a well-formed request body with the given body object.
func valid(body string) string {
	return `{"senderInfoTrackingId":"sender-1","to":"+375298603938","isSessionMessage":true,"body":` + body +
		`,"ttl":86400,"callbackUrl":"http://127.0.0.1:1/cb/s","inboundUrl":"http://127.0.0.1:1/in/s","label":"42"}`
}

func TestTokenEndpoint(t *testing.T) {
	s, base, _ := start(t)
	if st, _ := tokenRequest(t, base, "id", "wrong", "client_credentials"); st != 401 {
		t.Errorf("wrong secret: %d", st)
	}
	if st, _ := tokenRequest(t, base, "other", "secret", "client_credentials"); st != 401 {
		t.Errorf("wrong id: %d", st)
	}
	if n := len(s.Violations()); n != 0 {
		t.Errorf("wrong credentials are not a violation: %q", s.Violations())
	}
	if st, _ := tokenRequest(t, base, "", "", "client_credentials"); st != 401 {
		t.Errorf("no credentials: %d", st)
	}
	if st, _ := tokenRequest(t, base, "id", "secret", "password"); st != 400 {
		t.Errorf("wrong grant: %d", st)
	}
	if n := len(s.Violations()); n != 2 {
		t.Errorf("violations %q, want 2", s.Violations())
	}
	token(t, base)
	if s.TokensIssued() != 1 {
		t.Errorf("issued %d", s.TokensIssued())
	}
	req, _ := http.NewRequest("GET", base+"/oauth/token", nil)
	if st, _ := do(t, req); st != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", st)
	}
}

func TestAcceptsDocumentedShape(t *testing.T) {
	s, base, c := start(t)
	tok := token(t, base)
	st, body := viber(t, base, tok, valid(`{"text":"Hello"}`))
	if st != 200 {
		t.Fatalf("%d %s", st, body)
	}
	var ans struct {
		TrackingID     string `json:"trackingId"`
		To, From       string
		Country        string
		Status         struct{ Status, Date string }
		TTL            int
		SessionMessage bool
		Label          string
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		t.Fatal(err)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuid.MatchString(ans.TrackingID) || ans.To != "+375298603938" || ans.From != "sender-1" || ans.Country != "BY" ||
		ans.Status.Status != "Queued" || ans.Status.Date != "2025-03-01T10:00:00.000Z" || ans.TTL != 86400 ||
		!ans.SessionMessage || ans.Label != "42" {
		t.Errorf("answer %s", body)
	}
	for _, b := range []string{
		`{"imageURL":"https://m.example/a.png"}`,
		`{"viberFile":{"fileName":"a.PDF","fileType":"pdf","fileUrl":"https://m.example/f"}}`,
		`{"viberFile":{"fileName":"b.docx","fileType":"docx","fileURL":"https://m.example/g"}}`,
	} {
		if st, body := viber(t, base, tok, valid(b)); st != 200 {
			t.Errorf("%s: %d %s", b, st, body)
		}
	}
	msgs := s.Messages()
	if len(msgs) != 4 || s.Count("42") != 4 || s.Count("43") != 0 {
		t.Fatalf("messages %+v", msgs)
	}
	want := fakeroutee.Message{TrackingID: ans.TrackingID, To: "+375298603938", Label: "42", Text: "Hello",
		CallbackURL: "http://127.0.0.1:1/cb/s", InboundURL: "http://127.0.0.1:1/in/s", From: "sender-1", TTL: 86400, At: c.Now(),
		Session: true, Route: "viber", Status: "Queued", Carrier: "Viber"}
	if msgs[0] != want {
		t.Errorf("recorded %+v, want %+v", msgs[0], want)
	}
	if msgs[1].ImageURL != "https://m.example/a.png" || msgs[2].FileType != "pdf" || msgs[2].FileURL != "https://m.example/f" ||
		msgs[3].FileURL != "https://m.example/g" {
		t.Errorf("recorded %+v", msgs[1:])
	}
	if v := s.Violations(); len(v) != 0 {
		t.Errorf("violations %q", v)
	}
}

func TestShapeViolations(t *testing.T) {
	s, base, _ := start(t)
	tok := token(t, base)
	cases := map[string]string{
		"two body kinds": valid(`{"text":"hi","imageURL":"https://m.example/a.png"}`),
		"no body kind":   valid(`{}`),
		"button":         valid(`{"text":"hi","buttonCaption":"Buy"}`),
		"missing label":  strings.Replace(valid(`{"text":"hi"}`), `,"label":"42"`, ``, 1),
		"ttl 5":          strings.Replace(valid(`{"text":"hi"}`), `"ttl":86400`, `"ttl":5`, 1),
		"ttl 90000":      strings.Replace(valid(`{"text":"hi"}`), `"ttl":86400`, `"ttl":90000`, 1),
		"ttl string":     strings.Replace(valid(`{"text":"hi"}`), `"ttl":86400`, `"ttl":"60"`, 1),
		"session string": strings.Replace(valid(`{"text":"hi"}`), `"isSessionMessage":true`, `"isSessionMessage":"yes"`, 1),
		"to a list":      strings.Replace(valid(`{"text":"hi"}`), `"to":"+375298603938"`, `"to":["+375298603938"]`, 1),
		"to not E.164":   strings.Replace(valid(`{"text":"hi"}`), `"to":"+375298603938"`, `"to":"375298603938"`, 1),
		"no sender":      strings.Replace(valid(`{"text":"hi"}`), `"senderInfoTrackingId":"sender-1"`, `"senderInfoTrackingId":""`, 1),
		"relative cb":    strings.Replace(valid(`{"text":"hi"}`), `"callbackUrl":"http://127.0.0.1:1/cb/s"`, `"callbackUrl":"/cb"`, 1),
		"unknown field":  strings.Replace(valid(`{"text":"hi"}`), `"label":"42"`, `"label":"42","campaignName":"x"`, 1),
		"imageUrl case":  valid(`{"imageUrl":"https://m.example/a.png"}`),
		"image ftp":      valid(`{"imageURL":"ftp://m.example/a.png"}`),
		"image too long": valid(`{"imageURL":"https://m.example/` + strings.Repeat("a", 1000) + `"}`),
		"empty text":     valid(`{"text":""}`),
		"text 1001":      valid(`{"text":"` + strings.Repeat("ж", 1001) + `"}`),
		"file type":      valid(`{"viberFile":{"fileName":"a.exe","fileType":"exe","fileUrl":"https://m.example/f"}}`),
		"file mismatch":  valid(`{"viberFile":{"fileName":"a.pdf","fileType":"doc","fileUrl":"https://m.example/f"}}`),
		"file no url":    valid(`{"viberFile":{"fileName":"a.pdf","fileType":"pdf"}}`),
		"file both urls": valid(`{"viberFile":{"fileName":"a.pdf","fileType":"pdf","fileUrl":"https://m/f","fileURL":"https://m/f"}}`),
		"not json":       `{"text":`,
		"array":          `[]`,
	}
	for name, body := range cases {
		st, ans := viber(t, base, tok, body)
		var e struct{ Code, DeveloperMessage string }
		if st != 400 || json.Unmarshal(ans, &e) != nil || e.Code != "400001" || e.DeveloperMessage == "" {
			t.Errorf("%s: %d %s", name, st, ans)
		}
	}
	// Wrong content type.
	req, _ := http.NewRequest("POST", base+"/viber", strings.NewReader(valid(`{"text":"hi"}`)))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "text/plain")
	if st, _ := do(t, req); st != 400 {
		t.Errorf("text/plain: %d", st)
	}
	if v := s.Violations(); len(v) != len(cases)+1 {
		t.Errorf("%d violations, want %d: %q", len(v), len(cases)+1, v)
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages recorded", n)
	}
	joined := strings.Join(s.Violations(), "\n")
	for _, want := range []string{"exactly one", "label is missing", "ttl 5 is out of range"} {
		if !strings.Contains(joined, want) {
			t.Errorf("violations do not say %q:\n%s", want, joined)
		}
	}
}

func TestTokensExpireAndRevoke(t *testing.T) {
	s, base, c := start(t)
	tok := token(t, base)
	c.Add(time.Hour - time.Second)
	if st, b := viber(t, base, tok, valid(`{"text":"a"}`)); st != 200 {
		t.Fatalf("before expiry: %d %s", st, b)
	}
	c.Add(time.Second)
	if st, _ := viber(t, base, tok, valid(`{"text":"a"}`)); st != 401 {
		t.Errorf("expired: %d", st)
	}
	tok = token(t, base)
	tok2 := token(t, base)
	s.RevokeTokens()
	for _, tk := range []string{tok, tok2} {
		if st, _ := viber(t, base, tk, valid(`{"text":"a"}`)); st != 401 {
			t.Errorf("revoked: %d", st)
		}
	}
	if st, _ := viber(t, base, token(t, base), valid(`{"text":"a"}`)); st != 200 {
		t.Errorf("fresh token: %d", st)
	}
	if st, _ := viber(t, base, "made-up", valid(`{"text":"a"}`)); st != 401 {
		t.Errorf("unknown token: %d", st)
	}
	if v := s.Violations(); len(v) != 0 {
		t.Errorf("expired and revoked tokens are not violations: %q", v)
	}
	// No Bearer token at all is one.
	req, _ := http.NewRequest("POST", base+"/viber", strings.NewReader(valid(`{"text":"a"}`)))
	req.Header.Set("Content-Type", "application/json")
	if st, _ := do(t, req); st != 401 || len(s.Violations()) != 1 {
		t.Errorf("no token: %d, %q", st, s.Violations())
	}
	if s.TokensIssued() != 4 || len(s.Messages()) != 2 {
		t.Errorf("tokens %d, messages %d", s.TokensIssued(), len(s.Messages()))
	}
}

func TestFailNextAndRejectTo(t *testing.T) {
	s, base, _ := start(t)
	tok := token(t, base)
	s.FailNext(2, 503)
	for i := range 2 {
		st, b := viber(t, base, tok, valid(`{"text":"a"}`))
		if st != 503 || !strings.Contains(string(b), "developerMessage") {
			t.Errorf("failure %d: %d %s", i, st, b)
		}
	}
	if st, _ := viber(t, base, tok, valid(`{"text":"a"}`)); st != 200 {
		t.Errorf("after the failures: %d", st)
	}
	s.RejectTo("+375298603938", "400005", "Not Viber User")
	st, b := viber(t, base, tok, valid(`{"text":"a"}`))
	if st != 400 || string(b) != `{"code":"400005","developerMessage":"Not Viber User"}`+"\n" {
		t.Errorf("rejected: %d %s", st, b)
	}
	s.RejectTo("+375298603938", "", "")
	if st, _ := viber(t, base, tok, valid(`{"text":"a"}`)); st != 200 {
		t.Errorf("rejection lifted: %d", st)
	}
	if len(s.Messages()) != 2 || s.Count("42") != 2 || len(s.Violations()) != 0 {
		t.Errorf("messages %d, violations %q", len(s.Messages()), s.Violations())
	}
}

func TestDown(t *testing.T) {
	s, base, _ := start(t)
	tok := token(t, base)
	s.SetDown(true)
	if st, _ := tokenRequest(t, base, "id", "secret", "client_credentials"); st != 503 {
		t.Errorf("token while down: %d", st)
	}
	if st, _ := viber(t, base, tok, valid(`{"text":"a"}`)); st != 503 {
		t.Errorf("viber while down: %d", st)
	}
	s.SetDownMode(fakeroutee.Hangup)
	req, _ := http.NewRequest("POST", base+"/viber", strings.NewReader(valid(`{"text":"a"}`)))
	if resp, err := httpClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("hangup: got an answer %d", resp.StatusCode)
	}
	s.SetDown(false)
	if st, _ := viber(t, base, tok, valid(`{"text":"a"}`)); st != 200 {
		t.Errorf("back up: %d", st)
	}
	if len(s.Messages()) != 1 {
		t.Errorf("messages %d", len(s.Messages()))
	}
}

func TestDelayRespectsCancellation(t *testing.T) {
	s, base, _ := start(t)
	tok := token(t, base)
	s.SetDelay(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/viber", strings.NewReader(valid(`{"text":"a"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	begin := time.Now()
	if resp, err := httpClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("no timeout")
	}
	s.SetDelay(10 * time.Millisecond)
	if st, _ := viber(t, base, tok, valid(`{"text":"b"}`)); st != 200 {
		t.Errorf("short delay: %d", st)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	if msgs := s.Messages(); len(msgs) != 1 || msgs[0].Text != "b" {
		t.Errorf("messages %+v", msgs)
	}
}

func TestCallbacks(t *testing.T) {
	type post struct {
		path string
		body map[string]any
	}
	var (
		mu    sync.Mutex
		posts []post
		fail  bool
	)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p post
		p.path = r.URL.Path
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&p.body) != nil {
			http.Error(w, "bad", 400)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if fail {
			http.Error(w, "nope", http.StatusInternalServerError)
			return
		}
		posts = append(posts, p)
	}))
	defer hooks.Close()

	s, base, c := start(t)
	tok := token(t, base)
	body := strings.NewReplacer("http://127.0.0.1:1/cb/s", hooks.URL+"/cb/secret-path", "http://127.0.0.1:1/in/s",
		hooks.URL+"/in/secret-path").Replace(valid(`{"text":"Hello"}`))
	if st, b := viber(t, base, tok, body); st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	m := s.Messages()[0]
	c.Add(time.Minute + 303*time.Millisecond)
	if err := s.ReportStatus(context.Background(), m.TrackingID, "Undelivered", "Not Viber User"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReportStatus(context.Background(), "unknown", "Sent", ""); err == nil {
		t.Error("unknown tracking id: no error")
	}
	if _, err := s.StatusPayload("unknown", "Sent", ""); err == nil {
		t.Error("StatusPayload of an unknown tracking id: no error")
	}
	sentAt := time.Date(2021, 12, 30, 14, 20, 0, 0, time.FixedZone("", 3600))
	in := fakeroutee.Inbound{From: "+375298603938", To: "sender-1", Text: "Thanks", MediaURL: "https://m.example/p.pdf",
		FileName: "p.pdf", SentAt: sentAt}
	if err := s.SendInbound(context.Background(), m.InboundURL, in); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	err := s.ReportStatus(context.Background(), m.TrackingID, "Seen", "")
	if err == nil || strings.Contains(err.Error(), "secret-path") {
		t.Errorf("non-2xx answer: %v", err)
	}
	if err := s.SendInbound(context.Background(), m.InboundURL, in); err == nil {
		t.Error("inbound, non-2xx answer: no error")
	}

	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 2 {
		t.Fatalf("%d posts", len(posts))
	}
	st := posts[0]
	status, _ := st.body["status"].(map[string]any)
	reason, _ := status["reason"].(map[string]any)
	if st.path != "/cb/secret-path" || st.body["trackingId"] != m.TrackingID || st.body["label"] != "42" ||
		st.body["to"] != "+375298603938" || st.body["from"] != "sender-1" || st.body["country"] != "BY" ||
		st.body["direction"] != "Outbound" || st.body["originatingService"] != "Viber" || st.body["ttl"] != 86400.0 ||
		status["name"] != "Undelivered" || reason["detailedStatus"] != "Not Viber User" ||
		status["updatedDate"] != "2025-03-01T10:01:00.303Z" || st.body["createdAt"] != "2025-03-01T10:00:00.000Z" ||
		fmt.Sprint(st.body["body"]) != "map[text:Hello]" {
		t.Errorf("status post %+v", st)
	}
	ib := posts[1]
	want := map[string]any{"from": "+375298603938", "to": "sender-1", "message": "Thanks", "sentDate": "2021-12-30T13:20:00.000Z",
		"direction": "Inbound", "media": "https://m.example/p.pdf", "filename": "p.pdf"}
	if ib.path != "/in/secret-path" || fmt.Sprint(ib.body) != fmt.Sprint(want) {
		t.Errorf("inbound post %+v, want %v", ib, want)
	}
	// Without media, the media fields are left out; no SentAt means now.
	var p map[string]any
	if err := json.Unmarshal(s.InboundPayload(fakeroutee.Inbound{From: "+1", Text: "x"}), &p); err != nil {
		t.Fatal(err)
	}
	if _, ok := p["media"]; ok || p["sentDate"] != "2025-03-01T10:01:00.303Z" {
		t.Errorf("text inbound %v", p)
	}
}

func TestConcurrentUse(t *testing.T) {
	s, base, _ := start(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			tok := token(t, base)
			body := strings.Replace(valid(`{"text":"a"}`), `"label":"42"`, fmt.Sprintf(`"label":"%d"`, i), 1)
			viber(t, base, tok, body)
		})
	}
	wg.Go(func() {
		for range 20 {
			s.SetDelay(0)
			s.RevokeTokens()
			_ = s.Messages()
			_ = s.Violations()
		}
	})
	wg.Wait()
	if v := s.Violations(); len(v) != 0 {
		t.Errorf("violations %q", v)
	}
}

func TestPricesPerCountry(t *testing.T) {
	s, base, _ := start(t)
	tok := token(t, base)
	send := func(to string) fakeroutee.Message {
		t.Helper()
		body := strings.Replace(valid(`{"text":"Hello"}`), "+375298603938", to, 1)
		if st, b := viber(t, base, tok, body); st != 200 {
			t.Fatalf("%d %s", st, b)
		}
		msgs := s.Messages()
		return msgs[len(msgs)-1]
	}
	by, de, fr := send("+375298603938"), send("+4915112345678"), send("+33612345678")
	payload := func(m fakeroutee.Message) map[string]any {
		t.Helper()
		b, err := s.StatusPayload(m.TrackingID, "Delivered", "")
		if err != nil {
			t.Fatal(err)
		}
		var p map[string]any
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// No prices set: the callbacks carry none.
	if p := payload(by); p["price"] != nil || p["currency"] != nil {
		t.Errorf("without prices: %v", p)
	}
	s.SetPrices(map[string]float64{"BY": 0.021, "DE": 0.013}, "")
	if p := payload(by); p["price"] != 0.021 || p["country"] != "BY" || p["currency"] != nil {
		t.Errorf("BY: %v", p)
	}
	if p := payload(de); p["price"] != 0.013 || p["country"] != "DE" {
		t.Errorf("DE: %v", p)
	}
	if p := payload(fr); p["price"] != nil {
		t.Errorf("FR has no price and no default: %v", p)
	}
	s.SetPrices(map[string]float64{"DE": 0.013, "": 0.05}, "USD")
	if p := payload(fr); p["price"] != 0.05 || p["currency"] != "USD" {
		t.Errorf("FR with a default: %v", p)
	}
	// The tracking record carries the same price.
	req, _ := http.NewRequest("GET", base+"/viber/tracking/"+de.TrackingID, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	st, b := do(t, req)
	var rec map[string]any
	if st != 200 || json.Unmarshal(b, &rec) != nil || rec["price"] != 0.013 {
		t.Errorf("tracking: %d %s", st, b)
	}
}

package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"sessiondesk/store"
)

type apiContactJSON struct {
	ID             int64    `json:"id"`
	Phone          string   `json:"phone"`
	Name           string   `json:"name"`
	NameSetByAgent bool     `json:"name_set_by_agent"`
	Email          string   `json:"email"`
	ExternalID     string   `json:"external_id"`
	Tags           []string `json:"tags"`
	Note           string   `json:"note"`
	ConversationID int64    `json:"conversation_id"`
}

func (ta *testApp) contactID(t *testing.T, conv int64) int64 {
	t.Helper()
	var id int64
	if err := ta.Store.Read(context.Background(), func(r *store.Reader) error {
		c, err := r.Conversation(context.Background(), conv)
		id = c.Contact.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (ta *testApp) contactAudits(t *testing.T) []store.AuditEntry {
	t.Helper()
	var out []store.AuditEntry
	if err := ta.Store.Read(context.Background(), func(r *store.Reader) (err error) {
		out, err = r.Audit(context.Background(), store.AuditFilter{Action: store.AuditContactEdit})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// GET and PATCH /api/v1/contacts/{id}: a save returns the contact and is
// audited; every bad request gets the API's error shape, naming the field
// when one is to blame, and changes nothing.
func TestContactAPI(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	id := ta.contactID(t, conv)
	path := "/api/v1/contacts/" + strconv.FormatInt(id, 10)

	status, body := ta.do(t, "GET", path, "", "")
	var got apiContactJSON
	if status != 200 || json.Unmarshal(body, &got) != nil || got.Phone != "+375298603938" || got.Name != "Olga Petrova" ||
		got.ConversationID != conv || got.Tags == nil {
		t.Fatalf("GET: %d %s", status, body)
	}
	status, body = ta.do(t, "PATCH", path, "application/json",
		`{"name":"Olga P. (wholesale)","email":"olga@example.com","external_id":"CRM-77","tags":["vip","b2b"],"note":"Calls after 18:00"}`)
	if status != 200 || json.Unmarshal(body, &got) != nil || got.Name != "Olga P. (wholesale)" || !got.NameSetByAgent ||
		strings.Join(got.Tags, ",") != "vip,b2b" || got.ExternalID != "CRM-77" {
		t.Fatalf("PATCH: %d %s", status, body)
	}
	if a := ta.contactAudits(t); len(a) != 1 || a[0].ConversationID != conv || a[0].AgentID == 0 {
		t.Fatalf("audit after the PATCH: %+v", a)
	}

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"unknown contact", "GET", "/api/v1/contacts/9999", "", 404, "not_found", ""},
		{"unknown contact (patch)", "PATCH", "/api/v1/contacts/9999", `{"note":"x"}`, 404, "not_found", ""},
		{"malformed id", "GET", "/api/v1/contacts/abc", "", 404, "not_found", ""},
		{"unknown field", "PATCH", path, `{"note":"x","nmae":"typo"}`, 400, "bad_request", ""},
		{"malformed JSON", "PATCH", path, `{"note":`, 400, "bad_request", ""},
		{"empty body", "PATCH", path, ``, 400, "bad_request", ""},
		{"null body", "PATCH", path, `null`, 400, "bad_request", ""},
		{"an array", "PATCH", path, `["note"]`, 400, "bad_request", ""},
		{"two objects", "PATCH", path, `{"note":"a"}{"note":"b"}`, 400, "bad_request", ""},
		{"huge body", "PATCH", path, `{"note":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "too_large", ""},
		{"blank name", "PATCH", path, `{"name":"  "}`, 422, "invalid", "name"},
		{"null name", "PATCH", path, `{"name":null}`, 422, "invalid", "name"},
		{"name not a string", "PATCH", path, `{"name":42}`, 422, "invalid", "name"},
		{"long name", "PATCH", path, `{"name":"` + strings.Repeat("n", 101) + `"}`, 422, "invalid", "name"},
		{"bad email", "PATCH", path, `{"email":"olga@"}`, 422, "invalid", "email"},
		{"long external id", "PATCH", path, `{"external_id":"` + strings.Repeat("x", 101) + `"}`, 422, "invalid", "external_id"},
		{"tags as a string", "PATCH", path, `{"tags":"vip,b2b"}`, 422, "invalid", "tags"},
		{"tag with a comma", "PATCH", path, `{"tags":["vip,b2b"]}`, 422, "invalid", "tags"},
		{"21 tags", "PATCH", path, `{"tags":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17","18","19","20","21"]}`, 422, "invalid", "tags"},
		{"long tag", "PATCH", path, `{"tags":["` + strings.Repeat("t", 33) + `"]}`, 422, "invalid", "tags"},
		{"long note", "PATCH", path, `{"note":"` + strings.Repeat("x", 2001) + `"}`, 422, "invalid", "note"},
		{"phone is Viber's", "PATCH", path, `{"phone":"+10000000000"}`, 422, "invalid", "phone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := ta.do(t, tc.method, tc.path, "application/json", tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d (%s)", status, tc.status, body)
			}
			e := decodeError(t, body)
			var withField struct {
				Field string `json:"field"`
			}
			_ = json.Unmarshal(body, &withField)
			if e.Code != tc.code || withField.Field != tc.field {
				t.Errorf("code %q field %q, want %q %q (%s)", e.Code, withField.Field, tc.code, tc.field, e.Message)
			}
			if f := strings.TrimSuffix(strings.ReplaceAll(tc.field, "_", " "), "s"); tc.field != "" && !strings.Contains(strings.ToLower(e.Message), f) {
				t.Errorf("the message %q does not name the field %s", e.Message, tc.field)
			}
		})
	}
	status, body = ta.do(t, "GET", path, "", "")
	if json.Unmarshal(body, &got) != nil || got.Name != "Olga P. (wholesale)" || got.Note != "Calls after 18:00" || len(got.Tags) != 2 {
		t.Errorf("after the refused requests: %d %s", status, body)
	}
	if a := ta.contactAudits(t); len(a) != 1 {
		t.Errorf("refused requests were audited: %d entries", len(a))
	}
	// A cross-site PATCH from a browser is refused like every state change.
	if status, _ := ta.do(t, "PATCH", path, "application/json", `{"note":"gotcha"}`,
		"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"); status != http.StatusForbidden {
		t.Errorf("cross-site PATCH: %d, want 403", status)
	}
}

// An agent renames a client in the API: every open page gets the new row
// over its websocket, and the page viewing the conversation the new panel.
func TestContactEditReRendersRowLive(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	ta.clock.Add(time.Minute)
	ta.clientWrites(t, "+375291112233", "Another client")
	cursor := pageCursor(t, ta, "/")
	convS := strconv.FormatInt(conv, 10)
	other, _, err := ta.dial(t, "/ws?after="+strconv.FormatInt(cursor, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	viewer, _, err := ta.dial(t, "/ws?conversation="+convS+"&after="+strconv.FormatInt(cursor, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()

	path := "/api/v1/contacts/" + strconv.FormatInt(ta.contactID(t, conv), 10)
	if status, body := ta.do(t, "PATCH", path, "application/json", `{"name":"Olga <b>Petrova</b>","tags":["vip"]}`); status != 200 {
		t.Fatalf("PATCH: %d %s", status, body)
	}
	for name, conn := range map[string]*websocket.Conn{"other": other, "viewer": viewer} {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		data, err := readEventFrame(conn)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		frame := htmlDoc(t, data)
		row := frame.Find(`#list-delta [data-conversation-id="` + convS + `"]`)
		if got := strings.TrimSpace(row.Find(`[data-testid="row-name"]`).Text()); got != "Olga <b>Petrova</b>" {
			t.Errorf("%s: the live row reads %q, want the new name (as text)", name, got)
		}
		if strings.Contains(string(data), "<b>Petrova</b>") {
			t.Errorf("%s: the name went out as HTML", name)
		}
		panel := frame.Find(`#session-panel [data-testid="contact"]`)
		if name == "viewer" {
			if got := strings.TrimSpace(panel.Find(`[data-testid="contact-name"]`).Text()); got != "Olga <b>Petrova</b>" {
				t.Errorf("viewer: the panel's contact reads %q", got)
			}
			if got := strings.TrimSpace(panel.Find(`[data-testid="contact-tags"]`).Text()); got != "vip" {
				t.Errorf("viewer: the panel's tags read %q", got)
			}
			if frame.Find(`#strip-contact`).Length() != 1 {
				t.Errorf("viewer: the phone strip is not refreshed")
			}
		} else if panel.Length() != 0 {
			t.Errorf("other: got the panel of a conversation it does not show")
		}
	}
}

// The contact card's form saves the fields it holds and keeps the others:
// the page's script sends only what the agent changed, so a field a
// colleague changed meanwhile stays. A refusal comes back in the card with
// what was typed; without JS (every field) a save redirects back.
func TestContactFormSavesOnlySentFields(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	convS := strconv.FormatInt(conv, 10)
	id := ta.contactID(t, conv)
	_, page := ta.do(t, "GET", "/c/"+convS, "", "")
	doc := htmlDoc(t, page)
	if doc.Find(`#contact-form [name="name"]`).AttrOr("value", "") != "Olga Petrova" ||
		doc.Find(`[data-testid="contact-search"]`).AttrOr("href", "") != "/search?q=%2B375298603938" {
		t.Fatalf("the rendered card: %q", doc.Find(`#contact-card`).Text())
	}
	// A colleague sets the note meanwhile.
	if _, err := ta.Store.EditContact(context.Background(), 0, id, store.ContactChange{Note: ptrTo("from a colleague")}); err != nil {
		t.Fatal(err)
	}
	hx := []string{"HX-Request", "true", "Origin", ta.base, "Sec-Fetch-Site", "same-origin"}
	status, body := ta.do(t, "POST", "/c/"+convS+"/contact", "application/x-www-form-urlencoded",
		url.Values{"tags": {"vip, wholesale,"}}.Encode(), hx...)
	card := htmlDoc(t, body).Find(`#contact-card[hx-swap-oob="true"]`)
	if status != 200 || card.Length() != 1 || strings.TrimSpace(card.Find(`[data-testid="contact-tags"]`).Text()) == "" {
		t.Fatalf("save: %d %.300s", status, body)
	}
	var got apiContactJSON
	_, b := ta.do(t, "GET", "/api/v1/contacts/"+strconv.FormatInt(id, 10), "", "")
	if json.Unmarshal(b, &got) != nil || got.Note != "from a colleague" || strings.Join(got.Tags, "|") != "vip|wholesale" {
		t.Errorf("after the form: %s", b)
	}

	status, body = ta.do(t, "POST", "/c/"+convS+"/contact", "application/x-www-form-urlencoded",
		url.Values{"name": {"Olga P."}, "email": {"not an email"}}.Encode(), hx...)
	card = htmlDoc(t, body).Find(`#contact-card`)
	if status != 200 || card.Find(`[data-testid="contact-error"][data-field="email"]`).Length() != 1 ||
		card.Find(`[name="email"]`).AttrOr("value", "") != "not an email" || card.Find(`[name="name"][data-send]`).AttrOr("value", "") != "Olga P." {
		t.Errorf("refused email: %d %.400s", status, body)
	}
	full := url.Values{"name": {"Olga P."}, "email": {"olga@example.com"}, "external_id": {""}, "tags": {"vip"}, "note": {"from a colleague"}}
	status, _ = ta.doNoRedirect(t, "POST", "/c/"+convS+"/contact", full.Encode())
	if status != http.StatusSeeOther {
		t.Errorf("a save without JS answers %d, want 303", status)
	}
	_, b = ta.do(t, "GET", "/api/v1/contacts/"+strconv.FormatInt(id, 10), "", "")
	if json.Unmarshal(b, &got) != nil || got.Name != "Olga P." || got.Email != "olga@example.com" {
		t.Errorf("after the plain form: %s", b)
	}
}

func ptrTo[T any](v T) *T { return &v }

// doNoRedirect posts a plain form and returns the status without following a redirect.
func (ta *testApp) doNoRedirect(t *testing.T, method, path, body string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, ta.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header
}

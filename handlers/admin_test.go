package handlers

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/labstack/echo/v4"

	"sessiondesk/session"
	"sessiondesk/store"
)

// adminHarness serves the admin routes with the agent named by the test's
// X-Test-Agent header (a login), standing in for authenticate.
type adminHarness struct {
	t      *testing.T
	s      *Server
	e      *echo.Echo
	agents map[string]store.Agent
}

func newAdminHarness(t *testing.T) *adminHarness {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "test.db"), store.Options{
		Rules: session.Defaults(), Rates: session.Rates{Text: 0.05, Media: 0.1, Currency: "EUR"},
		Now: func() time.Time { return time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &adminHarness{t: t, agents: map[string]store.Agent{}}
	for login, role := range map[string]string{"anna": "admin", "olga": "agent"} {
		a, err := st.EnsureAgent(ctx, login, strings.ToUpper(login[:1])+login[1:], role)
		if err != nil {
			t.Fatal(err)
		}
		h.agents[login] = a
	}
	h.s = New(Deps{Store: st, Log: slog.New(slog.DiscardHandler)})
	h.e = echo.New()
	h.e.HTTPErrorHandler = h.s.errorHandler
	g := h.e.Group("", func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if a, ok := h.agents[c.Request().Header.Get("X-Test-Agent")]; ok {
				c.Set("agent", a)
			}
			return next(c)
		}
	})
	h.s.registerAdmin(g)
	return h
}

func (h *adminHarness) do(method, target, agent string, form url.Values, header ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
	}
	req.Header.Set("X-Test-Agent", agent)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.e.ServeHTTP(rec, req)
	return rec
}

func doc(t *testing.T, rec *httptest.ResponseRecorder) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCSVCellNeutralisesFormulas(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "",
		"Olga":                    "Olga",
		"=HYPERLINK(\"x\",\"y\")": "'=HYPERLINK(\"x\",\"y\")",
		"+1+2":                    "'+1+2",
		"-2+3":                    "'-2+3",
		"@SUM(A1)":                "'@SUM(A1)",
		"\t=1":                    "'\t=1",
		"\r=1":                    "'\r=1",
		"a=1":                     "a=1",
		" =1":                     " =1",
		"{\"kind\":\"text\"}":     "{\"kind\":\"text\"}",
		"12":                      "12",
	} {
		if got := csvCell(in); got != want {
			t.Errorf("csvCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAdminPagesAreForAdminsOnly(t *testing.T) {
	h := newAdminHarness(t)
	for _, r := range []struct{ method, path string }{
		{"GET", "/admin"}, {"GET", "/admin/audit"}, {"GET", "/admin/audit.csv"}, {"GET", "/admin/settings"},
		{"POST", "/admin/settings"}, {"GET", "/admin/tokens"}, {"POST", "/admin/tokens"}, {"POST", "/admin/tokens/1/revoke"},
		{"GET", "/admin/nothing-here"},
	} {
		rec := h.do(r.method, r.path, "olga", url.Values{"name": {"x"}})
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "Only admins") {
			t.Errorf("%s %s as an agent = %d %.200s", r.method, r.path, rec.Code, rec.Body.String())
		}
		if rec := h.do(r.method, r.path, "", nil); rec.Code != http.StatusForbidden {
			t.Errorf("%s %s with no agent = %d", r.method, r.path, rec.Code)
		}
	}
	rec := h.do("GET", "/admin/settings", "olga", nil, "Accept", "application/json")
	var body apiError
	if rec.Code != http.StatusForbidden || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Code != "forbidden" {
		t.Errorf("JSON 403 = %d %s", rec.Code, rec.Body.String())
	}
	if h.s.Store.Rules().MaxUnanswered != 5 {
		t.Errorf("a refused post changed settings")
	}
	for _, p := range []string{"/admin", "/admin/audit", "/admin/settings", "/admin/tokens"} {
		rec := h.do("GET", p, "anna", nil)
		if rec.Code != http.StatusOK || doc(t, rec).Find(`[data-testid="admin-page"]`).Length() != 1 {
			t.Errorf("GET %s as an admin = %d", p, rec.Code)
		}
	}
}

func settingsValues() url.Values {
	return url.Values{
		"window_hours": {"12"}, "max_per_session": {"60"}, "max_unanswered": {"2"}, "after_cap": {"close"},
		"text_max": {"1000"}, "rate_text": {"0.07"}, "rate_media": {"0.2"}, "currency": {"usd"},
		"canned_title": {"Greeting", "", "Bye"}, "canned_text": {"Hello!\r\nHow can I help?", "", "Goodbye"},
	}
}

func TestAdminSettingsForm(t *testing.T) {
	h := newAdminHarness(t)
	rec := h.do("POST", "/admin/settings", "anna", settingsValues())
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/admin/settings?saved=1" {
		t.Fatalf("save = %d %s %.300s", rec.Code, rec.Header().Get("Location"), rec.Body.String())
	}
	st := h.s.Store
	if r := st.Rules(); r.MaxUnanswered != 2 || r.Window != 12*time.Hour || r.AfterCap != session.Close {
		t.Errorf("rules = %+v", r)
	}
	if r := st.Rates(); r != (session.Rates{Text: 0.07, Media: 0.2, Currency: "USD"}) {
		t.Errorf("rates = %+v", r)
	}
	canned, _ := st.CannedReplies(context.Background())
	if len(canned) != 2 || canned[0].Text != "Hello!\nHow can I help?" || canned[1].Title != "Bye" {
		t.Errorf("canned = %+v", canned)
	}
	page := doc(t, h.do("GET", "/admin/settings?saved=1", "anna", nil))
	if page.Find(`[data-testid="settings-saved"]`).Length() != 1 ||
		page.Find(`[data-testid="settings-max-unanswered"]`).AttrOr("value", "") != "2" ||
		page.Find(`[data-testid="canned-item"]`).Length() != 2+cannedBlankRows {
		t.Errorf("settings page after saving: %.500s", page.Text())
	}

	// A refused form comes back with what was typed and the reason.
	bad := settingsValues()
	bad.Set("currency", "EU")
	bad.Set("max_unanswered", "3")
	rec = h.do("POST", "/admin/settings", "anna", bad)
	d := doc(t, rec)
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(d.Find(`[data-testid="settings-error"]`).Text(), "three letters") ||
		d.Find(`[data-testid="settings-max-unanswered"]`).AttrOr("value", "") != "3" {
		t.Errorf("refused save = %d %.500s", rec.Code, rec.Body.String())
	}
	bad = settingsValues()
	bad.Set("rate_text", "NaN")
	if rec := h.do("POST", "/admin/settings", "anna", bad); rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("NaN rate = %d", rec.Code)
	}
	if st.Rules().MaxUnanswered != 2 {
		t.Errorf("a refused save changed the rules")
	}
	var entries []store.AuditEntry
	_ = st.Read(context.Background(), func(r *store.Reader) error {
		var err error
		entries, err = r.Audit(context.Background(), store.AuditFilter{})
		return err
	})
	if len(entries) != 1 || entries[0].Action != store.AuditSettings || entries[0].AgentName != "Anna" {
		t.Errorf("audit = %+v", entries)
	}
}

var secretRE = regexp.MustCompile(`sdk_[A-Za-z0-9_-]{43}`)

func TestAdminTokensAndTokenAgent(t *testing.T) {
	h := newAdminHarness(t)
	rec := h.do("POST", "/admin/tokens", "anna", url.Values{"name": {"CRM sync"}})
	secret := doc(t, rec).Find(`[data-testid="token-secret"]`).AttrOr("value", "")
	if rec.Code != http.StatusOK || !secretRE.MatchString(secret) || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("create = %d %q %q", rec.Code, secret, rec.Header().Get("Cache-Control"))
	}
	list := h.do("GET", "/admin/tokens", "anna", nil)
	if strings.Contains(list.Body.String(), secret) || doc(t, list).Find(`[data-testid="token-row"]`).Length() != 1 {
		t.Errorf("the list shows the secret again, or not the token")
	}
	if rec := h.do("POST", "/admin/tokens", "anna", url.Values{"name": {""}}); rec.Code != http.StatusUnprocessableEntity ||
		secretRE.MatchString(rec.Body.String()) {
		t.Errorf("nameless token = %d", rec.Code)
	}

	req := func(auth ...string) *http.Request {
		r := httptest.NewRequest("GET", "/api/v1/conversations", nil)
		for _, a := range auth {
			r.Header.Add("Authorization", a)
		}
		return r
	}
	a, ok, err := h.s.tokenAgent(req("Bearer " + secret))
	if err != nil || !ok || a.Name != `API token "CRM sync"` || a.Role != "agent" {
		t.Fatalf("tokenAgent = %+v %v %v", a, ok, err)
	}
	for _, none := range [][]string{nil, {"Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig"}, {"Basic dXNlcjpwYXNz"}} {
		if _, ok, err := h.s.tokenAgent(req(none...)); ok || err != nil {
			t.Errorf("tokenAgent(%q) = %v %v, want none", none, ok, err)
		}
	}
	unauthorized := func(err error) bool {
		var he *echo.HTTPError
		return errors.As(err, &he) && he.Code == http.StatusUnauthorized && errors.Is(err, store.ErrInvalidToken)
	}
	if _, ok, err := h.s.tokenAgent(req("Bearer sdk_nope")); !ok || !unauthorized(err) {
		t.Errorf("unknown token = %v %v", ok, err)
	}
	if _, ok, err := h.s.tokenAgent(req("Bearer "+secret, "Bearer "+secret)); !ok || !unauthorized(err) {
		t.Errorf("two tokens = %v %v", ok, err)
	}

	id := doc(t, list).Find(`[data-testid="token-row"]`).AttrOr("data-token-id", "")
	if rec := h.do("POST", "/admin/tokens/"+id+"/revoke", "anna", url.Values{}); rec.Code != http.StatusSeeOther {
		t.Fatalf("revoke = %d %s", rec.Code, rec.Body.String())
	}
	if _, ok, err := h.s.tokenAgent(req("Bearer " + secret)); !ok || !unauthorized(err) {
		t.Errorf("revoked token = %v %v", ok, err)
	}
	if rec := h.do("POST", "/admin/tokens/999/revoke", "anna", url.Values{}); rec.Code != http.StatusNotFound {
		t.Errorf("revoke unknown = %d", rec.Code)
	}
	list = h.do("GET", "/admin/tokens", "anna", nil)
	if s := doc(t, list).Find(`[data-testid="token-status"]`).Text(); !strings.Contains(s, "Revoked") ||
		doc(t, list).Find(`[data-testid="token-revoke"]`).Length() != 0 {
		t.Errorf("revoked token row: %q", s)
	}
}

func TestAdminAuditPageAndCSV(t *testing.T) {
	h := newAdminHarness(t)
	ctx := context.Background()
	anna := h.agents["anna"]
	for i := range 55 {
		name := "token " + string(rune('A'+i%26))
		if i == 54 {
			name = `=HYPERLINK("http://evil","x")`
		}
		if _, _, err := h.s.Store.CreateToken(ctx, anna.ID, name); err != nil {
			t.Fatal(err)
		}
	}
	rec := h.do("GET", "/admin/audit?action=token_create", "anna", nil)
	d := doc(t, rec)
	next := d.Find(`[data-testid="audit-next"]`).AttrOr("href", "")
	if rec.Code != http.StatusOK || d.Find(`[data-testid="audit-row"]`).Length() != auditPageSize ||
		!strings.Contains(next, "before=") || !strings.Contains(next, "action=token_create") {
		t.Fatalf("first page = %d, %d rows, next %q", rec.Code, d.Find(`[data-testid="audit-row"]`).Length(), next)
	}
	d = doc(t, h.do("GET", next, "anna", nil))
	if n := d.Find(`[data-testid="audit-row"]`).Length(); n != 5 || d.Find(`[data-testid="audit-next"]`).Length() != 0 {
		t.Errorf("second page: %d rows", n)
	}
	if rec := h.do("GET", "/admin/audit?action=nope", "anna", nil); rec.Code != http.StatusBadRequest ||
		!strings.Contains(rec.Body.String(), "no audit action") {
		t.Errorf("unknown action = %d", rec.Code)
	}
	if d := doc(t, h.do("GET", "/admin/audit?action=settings", "anna", nil)); d.Find(`[data-testid="audit-empty"]`).Length() != 1 {
		t.Errorf("no settings rows, but no empty note")
	}

	rec = h.do("GET", "/admin/audit.csv?action=token_create&agent="+strconv.FormatInt(anna.ID, 10), "anna", nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Disposition") != `attachment; filename="sessiondesk-audit.csv"` ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/csv") {
		t.Fatalf("csv = %d %v", rec.Code, rec.Header())
	}
	records, err := csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 56 || strings.Join(records[0], ",") != strings.Join(auditCSVHeader, ",") {
		t.Fatalf("csv: %d records, header %v", len(records), records[0])
	}
	newest := records[1]
	if newest[3] != "Anna" || newest[6] != "token_create" || !strings.HasPrefix(newest[9], `Created API token "=HYPERLINK`) {
		t.Errorf("newest record = %q", newest)
	}
	// An agent named like a formula is exported as text.
	evil, err := h.s.Store.EnsureAgent(ctx, "evil", "=2+5", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.s.Store.CreateToken(ctx, evil.ID, "-1"); err != nil {
		t.Fatal(err)
	}
	rec = h.do("GET", "/admin/audit.csv", "anna", nil)
	if records, err = csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll(); err != nil {
		t.Fatal(err)
	}
	if len(records) != 57 || records[1][3] != "'=2+5" {
		t.Errorf("%d records, newest %q", len(records), records[1])
	}
	for _, rec := range records[1:] {
		for _, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("formula cell %q", cell)
			}
		}
	}
	if rec := h.do("GET", "/admin/audit.csv?from=yesterday", "anna", nil); rec.Code != http.StatusBadRequest {
		t.Errorf("bad date = %d", rec.Code)
	}
}

// The settings form refuses values outside what Viber allows, naming the
// range, and keeps what was in force.
func TestAdminSettingsWithinVibersRanges(t *testing.T) {
	h := newAdminHarness(t)
	for field, tc := range map[string]struct{ value, want string }{
		"window_hours":    {"25", "at most 24 hours"},
		"text_max":        {"1001", "1 to 1000"},
		"max_unanswered":  {"11", "1 to 10"},
		"max_per_session": {"61", "1 to 60"},
	} {
		bad := settingsValues()
		bad.Set(field, tc.value)
		rec := h.do("POST", "/admin/settings", "anna", bad)
		if msg := doc(t, rec).Find(`[data-testid="settings-error"]`).Text(); rec.Code != http.StatusUnprocessableEntity ||
			!strings.Contains(msg, tc.want) {
			t.Errorf("%s=%s: %d %q, want 422 naming %q", field, tc.value, rec.Code, msg, tc.want)
		}
	}
	if r := h.s.Store.Rules(); r != session.Defaults() {
		t.Errorf("a refused save changed the rules: %+v", r)
	}
	edges := settingsValues()
	edges.Set("window_hours", "24")
	edges.Set("text_max", "1000")
	edges.Set("max_unanswered", "10")
	if rec := h.do("POST", "/admin/settings", "anna", edges); rec.Code != http.StatusSeeOther {
		t.Errorf("the edges of the ranges: %d %.300s", rec.Code, rec.Body.String())
	}
}

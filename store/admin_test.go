package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sessiondesk/clock"
	"sessiondesk/session"
)

func audit(t testing.TB, s *Store, f AuditFilter) []AuditEntry {
	t.Helper()
	var out []AuditEntry
	err := s.Read(context.Background(), func(r *Reader) error {
		var err error
		out, err = r.Audit(context.Background(), f)
		return err
	})
	if err != nil {
		t.Fatalf("read audit: %v", err)
	}
	return out
}

func mustAgent(t testing.TB, s *Store, login, role string) Agent {
	t.Helper()
	a, err := s.EnsureAgent(context.Background(), login, strings.ToUpper(login[:1])+login[1:], role)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func sendAs(s *Store, agentID, convID int64, text string) ([]Message, error) {
	return s.AcceptBusinessMessages(context.Background(), BusinessSend{
		ConversationID: convID, AgentID: agentID, Parts: []session.Part{{Kind: session.Text, Text: text}},
	})
}

// preassign assigns the conversation without an audit row, so that a reply
// (which assigns an unassigned conversation, audited) adds only its send rows.
func preassign(t testing.TB, s *Store, conv, agentID int64) {
	t.Helper()
	if _, err := s.write.Exec(`UPDATE conversations SET assignee_id = ? WHERE id = ?`, agentID, conv); err != nil {
		t.Fatal(err)
	}
}

func invalidField(err error) string {
	var inv *InvalidError
	if errors.As(err, &inv) {
		return inv.Field
	}
	return ""
}

func TestAuditSendIsInTheSendTransaction(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	olga := mustAgent(t, s, "olga", "agent")
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	preassign(t, s, conv, olga.ID)

	msgs, err := sendAs(s, olga.ID, conv, "Hi there")
	if err != nil {
		t.Fatal(err)
	}
	got := audit(t, s, AuditFilter{})
	if len(got) != 1 {
		t.Fatalf("audit after one send = %+v, want one row", got)
	}
	e := got[0]
	if e.Action != AuditSend || e.AgentID != olga.ID || e.AgentName != "Olga" || e.ConversationID != conv ||
		e.MessageID != msgs[0].ID || e.TokenID != 0 || !e.At.Equal(t0) {
		t.Errorf("send row = %+v", e)
	}
	var d sendDetail
	if err := json.Unmarshal([]byte(e.Detail), &d); err != nil || d != (sendDetail{Kind: "text", Session: 1}) {
		t.Errorf("send detail = %s (%v)", e.Detail, err)
	}
	if e.Summary() != "Sent a text in session 1." {
		t.Errorf("summary = %q", e.Summary())
	}

	// When the audit row cannot be written, the send is not stored either:
	// both are one transaction. (A temporary trigger on the one write connection.)
	if _, err := s.write.ExecContext(ctx, `CREATE TEMP TRIGGER audit_down BEFORE INSERT ON audit
		BEGIN SELECT RAISE(ABORT, 'audit unavailable'); END`); err != nil {
		t.Fatal(err)
	}
	if _, err := sendAs(s, olga.ID, conv, "lost?"); err == nil || !strings.Contains(err.Error(), "audit unavailable") {
		t.Fatalf("send with the audit failing = %v, want the audit's error", err)
	}
	if _, err := s.write.ExecContext(ctx, `DROP TRIGGER temp.audit_down`); err != nil {
		t.Fatal(err)
	}
	if st := state(t, s, conv); st.Current.Used != 1 || st.Unanswered != 1 {
		t.Errorf("after the failed send: used %d, unanswered %d; want 1 and 1 (nothing stored)", st.Current.Used, st.Unanswered)
	}

	// A refused send writes no row.
	if _, err := sendText(s, conv, strings.Repeat("x", 1001), false); refusalCode(err) != session.TextTooLong {
		t.Fatalf("long text = %v", err)
	}
	if got := audit(t, s, AuditFilter{}); len(got) != 1 {
		t.Errorf("audit after a refused send has %d rows, want 1", len(got))
	}

	// The log is append-only.
	if _, err := s.write.ExecContext(ctx, `UPDATE audit SET detail = '' WHERE id = ?`, e.ID); err == nil ||
		!strings.Contains(err.Error(), "append-only") {
		t.Errorf("update of an audit row = %v, want refused", err)
	}
	if _, err := s.write.ExecContext(ctx, `DELETE FROM audit`); err == nil {
		t.Error("delete of audit rows was allowed")
	}
}

func TestAuditRolloverAndSystemSend(t *testing.T) {
	rules := session.Defaults()
	rules.MaxPerSession = 1
	s, _ := newStore(t, rules)
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	if _, err := sendText(s, conv, "one", false); err != nil {
		t.Fatal(err)
	}
	if _, err := sendText(s, conv, "two", true); err != nil {
		t.Fatal(err)
	}
	got := audit(t, s, AuditFilter{})
	if len(got) != 2 || got[0].AgentID != 0 || got[0].AgentName != "" {
		t.Fatalf("audit = %+v", got)
	}
	if got[0].Summary() != "Sent a text in session 2, which began a new billed session." {
		t.Errorf("rollover summary = %q", got[0].Summary())
	}
}

func TestAuditRetryCarriesTheOriginal(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	olga := mustAgent(t, s, "olga", "agent")
	ivan := mustAgent(t, s, "ivan", "agent")
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	preassign(t, s, conv, olga.ID)
	msgs, err := sendAs(s, olga.ID, conv, "Hi")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RejectMessage(ctx, MessageRef{ID: msgs[0].ID}, "Not Viber User"); err != nil {
		t.Fatal(err)
	}
	again, err := s.RetryMessage(ctx, msgs[0].ID, ivan.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	got := audit(t, s, AuditFilter{})
	if len(got) != 3 {
		t.Fatalf("audit = %+v, want send, send, retry", got)
	}
	retry, send := got[0], got[1]
	if retry.Action != AuditRetry || retry.MessageID != msgs[0].ID || retry.AgentID != ivan.ID || retry.ConversationID != conv {
		t.Errorf("retry row = %+v", retry)
	}
	var d retryDetail
	if err := json.Unmarshal([]byte(retry.Detail), &d); err != nil ||
		d != (retryDetail{OriginalMessageID: msgs[0].ID, OriginalStatus: StatusFailed, NewMessageID: again.ID, Session: 1}) {
		t.Errorf("retry detail = %s (%v)", retry.Detail, err)
	}
	if send.Action != AuditSend || send.MessageID != again.ID || send.AgentID != ivan.ID {
		t.Errorf("the new message's send row = %+v", send)
	}

	// A refused retry writes nothing: max unanswered reached first.
	set := s.Settings()
	set.Rates.Currency = "EUR"
	set.Rules.MaxUnanswered = 1
	if err := s.SaveSettings(ctx, 0, set); err != nil {
		t.Fatal(err)
	}
	if err := s.RejectMessage(ctx, MessageRef{ID: again.ID}, "Not Viber User"); err != nil {
		t.Fatal(err)
	}
	if _, err := sendText(s, conv, "fills the one unanswered slot", false); err != nil {
		t.Fatal(err)
	}
	before := len(audit(t, s, AuditFilter{}))
	if _, err := s.RetryMessage(ctx, again.ID, ivan.ID, false); refusalCode(err) != session.AwaitingClient {
		t.Fatalf("retry over the unanswered limit = %v", err)
	}
	if after := len(audit(t, s, AuditFilter{})); after != before {
		t.Errorf("a refused retry added %d audit rows", after-before)
	}
}

func TestAuditFiltersAndPaging(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	olga := mustAgent(t, s, "olga", "agent")
	ivan := mustAgent(t, s, "ivan", "agent")
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	preassign(t, s, conv, olga.ID)
	var ids []int64
	for i := range 7 {
		who := olga
		if i%2 == 1 {
			who = ivan
		}
		if i%4 == 0 {
			receive(t, s, "+375298603938", "ok")
		}
		m, err := sendAs(s, who.ID, conv, "reply")
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		ids = append(ids, m[0].ID)
		clk.Add(time.Minute)
	}
	// Newest first, three at a time.
	var pages [][]int64
	var before int64
	for {
		page := audit(t, s, AuditFilter{Limit: 3, BeforeID: before})
		if len(page) == 0 {
			break
		}
		var msgIDs []int64
		for _, e := range page {
			msgIDs = append(msgIDs, e.MessageID)
		}
		pages = append(pages, msgIDs)
		before = page[len(page)-1].ID
	}
	want := [][]int64{{ids[6], ids[5], ids[4]}, {ids[3], ids[2], ids[1]}, {ids[0]}}
	if len(pages) != 3 || !equalIDs(pages[0], want[0]) || !equalIDs(pages[1], want[1]) || !equalIDs(pages[2], want[2]) {
		t.Errorf("pages = %v, want %v", pages, want)
	}
	if got := audit(t, s, AuditFilter{AgentID: ivan.ID}); len(got) != 3 {
		t.Errorf("ivan's rows = %d, want 3", len(got))
	}
	if got := audit(t, s, AuditFilter{Action: AuditRetry}); len(got) != 0 {
		t.Errorf("retry rows = %d, want 0", len(got))
	}
	// Sends at t0, t0+1m, ... t0+6m: [t0+2m, t0+4m) holds two.
	got := audit(t, s, AuditFilter{Since: t0.Add(2 * time.Minute), Until: t0.Add(4 * time.Minute)})
	if len(got) != 2 || got[0].MessageID != ids[3] || got[1].MessageID != ids[2] {
		t.Errorf("time window = %+v", got)
	}
	var agents []Agent
	_ = s.Read(context.Background(), func(r *Reader) error {
		var err error
		agents, err = r.Agents(context.Background())
		return err
	})
	if len(agents) != 2 || agents[0].Name != "Ivan" || agents[1].Name != "Olga" {
		t.Errorf("agents = %+v", agents)
	}
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSettingsValidation(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	valid := func() AdminSettings {
		return AdminSettings{
			Rules: session.Defaults(),
			Rates: session.Rates{Text: 0.05, Media: 0.1, Currency: "eur"},
			CannedReplies: []CannedReply{
				{Title: " Greeting ", Text: "Hello! How can I help?\r\n"},
			},
		}
	}
	for name, tc := range map[string]struct {
		edit  func(*AdminSettings)
		field string
	}{
		"zero window":        {func(a *AdminSettings) { a.Rules.Window = 0 }, "rules"},
		"zero unanswered":    {func(a *AdminSettings) { a.Rules.MaxUnanswered = 0 }, "rules"},
		"bad after cap":      {func(a *AdminSettings) { a.Rules.AfterCap = "explode" }, "rules"},
		"negative text rate": {func(a *AdminSettings) { a.Rates.Text = -0.01 }, "rate_text"},
		"negative media":     {func(a *AdminSettings) { a.Rates.Media = -1 }, "rate_media"},
		"two-letter money":   {func(a *AdminSettings) { a.Rates.Currency = "EU" }, "currency"},
		"digits for money":   {func(a *AdminSettings) { a.Rates.Currency = "E1R" }, "currency"},
		"empty canned text":  {func(a *AdminSettings) { a.CannedReplies[0].Text = "  \n " }, "canned_replies"},
		"no canned title":    {func(a *AdminSettings) { a.CannedReplies[0].Title = " " }, "canned_replies"},
		"1001 code points": {func(a *AdminSettings) {
			a.CannedReplies[0].Text = strings.Repeat("é", 1001)
		}, "canned_replies"},
	} {
		t.Run(name, func(t *testing.T) {
			a := valid()
			tc.edit(&a)
			if err := s.SaveSettings(ctx, 0, a); invalidField(err) != tc.field {
				t.Errorf("save = %v, want an invalid %s", err, tc.field)
			}
		})
	}
	if got := audit(t, s, AuditFilter{}); len(got) != 0 {
		t.Errorf("refused saves wrote audit rows: %+v", got)
	}
	if s.Rates() != (session.Rates{}) || s.Rules() != session.Defaults() {
		t.Errorf("refused saves changed the settings: %+v %+v", s.Rules(), s.Rates())
	}
	// 1000 code points of a two-byte letter are fine; the currency is upper-cased,
	// the title trimmed, CRLF made LF and trailing space dropped.
	a := valid()
	a.CannedReplies = append(a.CannedReplies, CannedReply{Title: "Long", Text: strings.Repeat("é", 1000)})
	if err := s.SaveSettings(ctx, 0, a); err != nil {
		t.Fatal(err)
	}
	got := s.Settings()
	if got.Rates.Currency != "EUR" || got.CannedReplies[0] != (CannedReply{Title: "Greeting", Text: "Hello! How can I help?"}) {
		t.Errorf("saved = %+v", got)
	}
	if c, _ := s.CannedReplies(ctx); len(c) != 2 || c[1].Title != "Long" {
		t.Errorf("canned replies = %+v", c)
	}
}

func TestSettingsAuditAndRestart(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewManual(t0)
	flags := Options{Rules: session.Defaults(), Rates: session.Rates{Text: 0.01, Media: 0.02, Currency: "EUR"}, Now: clk.Now}
	s, err := Open(context.Background(), filepath.Join(dir, "db"), flags)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin := mustAgent(t, s, "anna", "admin")
	if _, stored, err := s.LoadSettings(ctx); err != nil || stored {
		t.Fatalf("fresh database: stored %v, %v", stored, err)
	}

	next := s.Settings()
	next.Rules.MaxUnanswered = 2
	next.Rules.Window = 12 * time.Hour
	next.Rates.Currency = "USD"
	next.CannedReplies = []CannedReply{{Title: "Hi", Text: "Hello"}}
	if err := s.SaveSettings(ctx, admin.ID, next); err != nil {
		t.Fatal(err)
	}
	rows := audit(t, s, AuditFilter{Action: AuditSettings})
	if len(rows) != 1 || rows[0].AgentID != admin.ID || rows[0].ConversationID != 0 {
		t.Fatalf("settings rows = %+v", rows)
	}
	var d settingsDetail
	if err := json.Unmarshal([]byte(rows[0].Detail), &d); err != nil {
		t.Fatal(err)
	}
	fields := map[string][2]any{}
	for _, c := range d.Changes {
		fields[c.Field] = [2]any{c.Old, c.New}
	}
	if len(fields) != 4 || fields["max_unanswered"] != [2]any{5.0, 2.0} || fields["window"] != [2]any{"24h", "12h"} ||
		fields["currency"] != [2]any{"EUR", "USD"} {
		t.Errorf("changes = %s", rows[0].Detail)
	}
	want := "Changed settings: session window: 24h → 12h; messages before the client must reply: 5 → 2; currency: EUR → USD; canned replies: 0 replies → 1 reply."
	if rows[0].Summary() != want {
		t.Errorf("summary = %q\nwant      %q", rows[0].Summary(), want)
	}

	// Saving what is in force changes nothing and writes no row.
	if err := s.SaveSettings(ctx, admin.ID, s.Settings()); err != nil {
		t.Fatal(err)
	}
	if n := len(audit(t, s, AuditFilter{Action: AuditSettings})); n != 1 {
		t.Errorf("an unchanged save wrote a row: %d rows", n)
	}

	// After a restart with the same flags, the stored values are in force.
	s.Close()
	s, err = Open(ctx, filepath.Join(dir, "db"), flags)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r := s.Rules(); r.MaxUnanswered != 2 || r.Window != 12*time.Hour || r.MaxPerSession != 60 || r.FutureSkew != flags.Rules.FutureSkew {
		t.Errorf("rules after restart = %+v", r)
	}
	if r := s.Rates(); r != (session.Rates{Text: 0.01, Media: 0.02, Currency: "USD"}) {
		t.Errorf("rates after restart = %+v", r)
	}
	loaded, stored, err := s.LoadSettings(ctx)
	if err != nil || !stored || loaded.Rules.MaxUnanswered != 2 || len(loaded.CannedReplies) != 1 {
		t.Errorf("LoadSettings = %+v, %v, %v", loaded, stored, err)
	}
}

func TestRuntimeRulesApplyToTheNextSend(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	// A copy with another clock (as the demo data uses) shares the settings.
	other := s.WithClock(func() time.Time { return t0 })
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	for i := range 2 {
		if _, err := sendText(s, conv, "reply", false); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	set := s.Settings()
	set.Rates.Currency = "EUR"
	set.Rules.MaxUnanswered = 2
	if err := s.SaveSettings(ctx, 0, set); err != nil {
		t.Fatal(err)
	}
	if _, err := sendText(s, conv, "third", false); refusalCode(err) != session.AwaitingClient {
		t.Fatalf("third send with max unanswered 2 = %v, want awaiting_client", err)
	}
	if _, err := sendText(other, conv, "third", false); refusalCode(err) != session.AwaitingClient {
		t.Fatalf("third send through WithClock = %v, want awaiting_client", err)
	}
	var readerRules session.Settings
	_ = s.Read(ctx, func(r *Reader) error { readerRules = r.rules; return nil })
	if readerRules.MaxUnanswered != 2 {
		t.Errorf("reader rules = %+v", readerRules)
	}
	set.Rules.MaxUnanswered = 3
	if err := s.SaveSettings(ctx, 0, set); err != nil {
		t.Fatal(err)
	}
	if _, err := sendText(s, conv, "third", false); err != nil {
		t.Fatalf("third send with max unanswered 3 = %v", err)
	}
}

func TestTokenLifecycle(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	admin := mustAgent(t, s, "anna", "admin")
	if _, _, err := s.CreateToken(ctx, admin.ID, "  "); invalidField(err) != "name" {
		t.Errorf("nameless token = %v", err)
	}
	secret, info, err := s.CreateToken(ctx, admin.ID, "CRM sync")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "sdk_") || len(secret) != 4+43 || info.Prefix != secret[:10] || info.Role != "agent" ||
		info.CreatedByName != "Anna" {
		t.Errorf("secret %q, info %+v", secret, info)
	}

	// Only the hash is stored: no column holds the secret.
	var hash, prefix string
	if err := s.write.QueryRowContext(ctx, `SELECT hash, prefix FROM api_tokens WHERE id = ?`, info.ID).Scan(&hash, &prefix); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret))
	if hash != hex.EncodeToString(sum[:]) || prefix != secret[:10] {
		t.Errorf("stored hash %q prefix %q", hash, prefix)
	}
	var leaks int
	if err := s.write.QueryRowContext(ctx, `SELECT count(*) FROM api_tokens WHERE instr(name || hash || prefix, ?) > 0`,
		secret[10:]).Scan(&leaks); err != nil || leaks != 0 {
		t.Errorf("the secret is stored: %d rows, %v", leaks, err)
	}

	a, ti, err := s.TokenAgent(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != info.AgentID || a.Login != "token:"+strconv.FormatInt(info.ID, 10) || a.Name != `API token "CRM sync"` || a.Role != "agent" {
		t.Errorf("token agent = %+v", a)
	}
	if !ti.LastUsedAt.Equal(t0) {
		t.Errorf("last used = %v, want %v", ti.LastUsedAt, t0)
	}
	lastUsed := func() time.Time {
		var v int64
		_ = s.write.QueryRowContext(ctx, `SELECT last_used_at FROM api_tokens WHERE id = ?`, info.ID).Scan(&v)
		return fromMS(v)
	}
	clk.Add(30 * time.Second)
	if _, _, err := s.TokenAgent(ctx, secret); err != nil || !lastUsed().Equal(t0) {
		t.Errorf("within a minute: last used %v, %v; want unchanged", lastUsed(), err)
	}
	clk.Add(31 * time.Second)
	if _, _, err := s.TokenAgent(ctx, secret); err != nil || !lastUsed().Equal(t0.Add(61*time.Second)) {
		t.Errorf("after a minute: last used %v, %v", lastUsed(), err)
	}

	// What the token sends is audited under its agent and the token.
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	if _, err := sendAs(s, a.ID, conv, "from the CRM"); err != nil {
		t.Fatal(err)
	}
	rows := audit(t, s, AuditFilter{Action: AuditSend})
	if len(rows) != 1 || rows[0].TokenID != info.ID || rows[0].TokenName != "CRM sync" || rows[0].AgentName != a.Name {
		t.Errorf("token send row = %+v", rows)
	}

	// A sign-in claiming the token's login cannot raise the token's role.
	if _, err := s.EnsureAgent(ctx, a.Login, "Mallory", "admin"); err != nil {
		t.Fatal(err)
	}
	if a, _, err := s.TokenAgent(ctx, secret); err != nil || a.Role != "agent" {
		t.Errorf("token agent after a login clash = %+v, %v", a, err)
	}

	// Unknown, malformed and tampered secrets are refused.
	for _, bad := range []string{"", "sdk_", "Bearer " + secret, secret + "x", secret[:len(secret)-1] + "A",
		"abc_" + secret[4:]} {
		if bad == secret {
			continue
		}
		if _, _, err := s.TokenAgent(ctx, bad); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("TokenAgent(%q) = %v, want ErrInvalidToken", bad, err)
		}
	}

	if err := s.RevokeToken(ctx, admin.ID, info.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TokenAgent(ctx, secret); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("revoked token = %v, want ErrInvalidToken", err)
	}
	if err := s.RevokeToken(ctx, admin.ID, info.ID); err != nil {
		t.Errorf("second revoke = %v, want nothing to do", err)
	}
	if err := s.RevokeToken(ctx, admin.ID, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke unknown = %v", err)
	}
	var tokens []TokenInfo
	_ = s.Read(ctx, func(r *Reader) error {
		var err error
		tokens, err = r.Tokens(ctx)
		return err
	})
	if len(tokens) != 1 || !tokens[0].Revoked() || tokens[0].RevokedByName != "Anna" || tokens[0].CreatedByName != "Anna" {
		t.Errorf("tokens = %+v", tokens)
	}
	created, revoked := audit(t, s, AuditFilter{Action: AuditTokenCreate}), audit(t, s, AuditFilter{Action: AuditTokenRevoke})
	if len(created) != 1 || len(revoked) != 1 || created[0].AgentID != admin.ID ||
		revoked[0].Summary() != `Revoked API token "CRM sync" (`+info.Prefix+`…).` {
		t.Errorf("token rows: created %+v, revoked %+v", created, revoked)
	}
	if strings.Contains(created[0].Detail, secret[10:]) {
		t.Error("the audit row holds the secret")
	}
}

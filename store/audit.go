package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Audit actions: what an audit row records.
const (
	AuditSend        = "send"         // an accepted business message
	AuditRetry       = "retry"        // a failed message sent again (its new message has its own send row)
	AuditSettings    = "settings"     // an admin changed the runtime settings
	AuditTokenCreate = "token_create" // an admin created an API token
	AuditTokenRevoke = "token_revoke" // an admin revoked an API token
	AuditStatus      = "status"       // a conversation's status changed (by an agent, a client message, a snooze ending)
	AuditAssign      = "assign"       // a conversation's assignee changed (by an agent, a reply, the round robin)
)

// AuditActions returns every audit action, for filters.
func AuditActions() []string {
	return []string{AuditSend, AuditRetry, AuditConfirmArrived, AuditResend, AuditSettings, AuditTokenCreate, AuditTokenRevoke,
		AuditStatus, AuditAssign, AuditContactEdit, AuditBudget}
}

// AuditEntry is one row of the append-only audit log.
type AuditEntry struct {
	ID        int64
	At        time.Time
	AgentID   int64 // 0: the system
	AgentName string
	// TokenID is the API token that acted (its agent is AgentID); 0 when none did.
	TokenID        int64
	TokenName      string
	Action         string
	ConversationID int64 // 0 when the action concerns no conversation
	MessageID      int64 // 0 when it concerns no message
	// Detail is what changed, as JSON (see Summary for a sentence).
	Detail string
}

// AuditFilter selects audit entries. Zero fields do not filter.
type AuditFilter struct {
	Since, Until time.Time // Since <= At < Until
	AgentID      int64
	Action       string
	// Limit is the page size: 100 when zero, at most MaxAuditPage.
	Limit int
	// BeforeID pages back: only entries with a smaller id (the last id of the
	// previous page).
	BeforeID int64
}

// MaxAuditPage is the most entries one Audit call returns.
const MaxAuditPage = 1000

// The details stored as JSON, one shape per action.
type (
	sendDetail struct {
		Kind       string `json:"kind"`
		Session    int    `json:"session"`
		NewSession bool   `json:"new_session"`
	}
	retryDetail struct {
		OriginalMessageID int64  `json:"original_message_id"`
		OriginalStatus    string `json:"original_status"`
		NewMessageID      int64  `json:"new_message_id"`
		Session           int    `json:"session"`
		NewSession        bool   `json:"new_session"`
	}
	settingsDetail struct {
		Changes []settingChange `json:"changes"`
	}
	settingChange struct {
		Field string `json:"field"`
		Old   any    `json:"old"`
		New   any    `json:"new"`
	}
	tokenDetail struct {
		TokenID int64  `json:"token_id"`
		Name    string `json:"name"`
		Prefix  string `json:"prefix"`
	}
)

// appendAudit writes one audit row inside the caller's transaction. agentID 0
// is the system; when the agent is an API token's, the row names the token too.
func appendAudit(ctx context.Context, tx queryer, at time.Time, agentID int64, action string,
	conversationID, messageID int64, detail any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO audit (at, agent_id, token_id, action, conversation_id, message_id, detail)
		VALUES (?1, ?2, (SELECT id FROM api_tokens WHERE agent_id = ?2), ?3, ?4, ?5, ?6)`,
		ms(at), nullID(agentID), action, nullID(conversationID), nullID(messageID), string(b)); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// nullID stores 0 as NULL.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// Audit returns the entries that match f, newest first.
func (r *Reader) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxAuditPage)
	var since, until int64
	if !f.Since.IsZero() {
		since = ms(f.Since)
	}
	if !f.Until.IsZero() {
		until = ms(f.Until)
	}
	rows, err := r.q.QueryContext(ctx, `
		SELECT a.id, a.at, coalesce(a.agent_id, 0), coalesce(ag.name, ''), coalesce(a.token_id, 0),
		       coalesce(t.name, ''), a.action, coalesce(a.conversation_id, 0), coalesce(a.message_id, 0), a.detail
		FROM audit a
		LEFT JOIN agents ag ON ag.id = a.agent_id
		LEFT JOIN api_tokens t ON t.id = a.token_id
		WHERE (?1 = 0 OR a.at >= ?1) AND (?2 = 0 OR a.at < ?2) AND (?3 = 0 OR a.agent_id = ?3)
		  AND (?4 = '' OR a.action = ?4) AND (?5 = 0 OR a.id < ?5)
		ORDER BY a.id DESC LIMIT ?6`,
		since, until, f.AgentID, f.Action, f.BeforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.AgentID, &e.AgentName, &e.TokenID, &e.TokenName, &e.Action,
			&e.ConversationID, &e.MessageID, &e.Detail); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Agents returns every agent, API tokens' included, by name: the audit log's
// agent filter.
func (r *Reader) Agents(ctx context.Context) ([]Agent, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT id, login, name, role, created_at FROM agents ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	defer rows.Close()
	var out []Agent
	for rows.Next() {
		var a Agent
		var created int64
		if err := rows.Scan(&a.ID, &a.Login, &a.Name, &a.Role, &created); err != nil {
			return nil, fmt.Errorf("list agents: %w", err)
		}
		a.CreatedAt = fromMS(created)
		out = append(out, a)
	}
	return out, rows.Err()
}

// AgentRole returns the role of the agent with id, and false when there is no
// such agent: one indexed read, for checks that run per open page.
func (r *Reader) AgentRole(ctx context.Context, id int64) (role string, ok bool, err error) {
	err = r.q.QueryRowContext(ctx, `SELECT role FROM agents WHERE id = ?`, id).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("agent %d: %w", id, err)
	}
	return role, true, nil
}

// Summary says in one sentence what the entry records.
func (e AuditEntry) Summary() string {
	switch e.Action {
	case AuditSend:
		var d sendDetail
		if json.Unmarshal([]byte(e.Detail), &d) != nil {
			break
		}
		s := fmt.Sprintf("Sent %s in session %d", kindNoun(d.Kind), d.Session)
		if d.NewSession {
			s += ", which began a new billed session"
		}
		return s + "."
	case AuditRetry:
		var d retryDetail
		if json.Unmarshal([]byte(e.Detail), &d) != nil {
			break
		}
		s := fmt.Sprintf("Sent message %d again (it was %s) as message %d, in session %d",
			d.OriginalMessageID, d.OriginalStatus, d.NewMessageID, d.Session)
		if d.NewSession {
			s += ", which began a new billed session"
		}
		return s + "."
	case AuditSettings:
		var d settingsDetail
		if json.Unmarshal([]byte(e.Detail), &d) != nil {
			break
		}
		parts := make([]string, 0, len(d.Changes))
		for _, c := range d.Changes {
			parts = append(parts, settingLabel(c.Field)+": "+changeValue(c.Field, c.Old)+" → "+changeValue(c.Field, c.New))
		}
		return "Changed settings: " + strings.Join(parts, "; ") + "."
	case AuditConfirmArrived, AuditResend:
		return resolveSummary(e)
	case AuditStatus:
		if s, ok := statusSummary(e.Detail); ok {
			return s
		}
	case AuditAssign:
		if s, ok := assignSummary(e.Detail); ok {
			return s
		}
	case AuditContactEdit:
		return contactSummary(e)
	case AuditBudget:
		var d budgetDetail
		if json.Unmarshal([]byte(e.Detail), &d) != nil {
			break
		}
		return fmt.Sprintf("The spend of %s reached %d%% of the monthly budget: %s of %s %s.", d.Month, d.Threshold,
			strconv.FormatFloat(d.Spend, 'f', 2, 64), strconv.FormatFloat(d.Budget, 'f', 2, 64), d.Currency)
	case AuditTokenCreate, AuditTokenRevoke:
		var d tokenDetail
		if json.Unmarshal([]byte(e.Detail), &d) != nil {
			break
		}
		verb := "Created"
		if e.Action == AuditTokenRevoke {
			verb = "Revoked"
		}
		return fmt.Sprintf("%s API token %q (%s…).", verb, d.Name, d.Prefix)
	}
	return e.Detail
}

func kindNoun(kind string) string {
	switch kind {
	case "text":
		return "a text"
	case "image":
		return "an image"
	case "file":
		return "a file"
	}
	return "a message"
}

var settingLabels = map[string]string{
	"window":          "session window",
	"max_per_session": "messages per session",
	"max_unanswered":  "messages before the client must reply",
	"after_cap":       "after the cap",
	"text_max":        "text length",
	"rate_text":       "text session rate",
	"rate_media":      "media session rate",
	"currency":        "currency",
	"canned_replies":  "canned replies",
	"auto_assign":     "round-robin auto-assignment",
	// Issue 12.
	"country_rates":      "rates per country",
	"sender_country":     "sender country",
	"rate_international": "international per-message rate",
	"monthly_budget":     "monthly budget",
}

func settingLabel(field string) string {
	if l, ok := settingLabels[field]; ok {
		return l
	}
	return field
}

// changeValue shows one side of a settings change; canned replies by their count.
func changeValue(field string, v any) string {
	switch v := v.(type) {
	case nil:
		if field == "canned_replies" {
			return "none"
		}
		return "—"
	case []any:
		if len(v) == 1 {
			return "1 reply"
		}
		return strconv.Itoa(len(v)) + " replies"
	case map[string]any:
		if len(v) == 1 {
			return "1 country"
		}
		return strconv.Itoa(len(v)) + " countries"
	case bool:
		if v {
			return "on"
		}
		return "off"
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case string:
		if v == "" {
			return "—"
		}
		return v
	}
	return fmt.Sprint(v)
}

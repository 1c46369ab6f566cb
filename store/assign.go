package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A conversation's status and assignee (migration 00011).
//
// Every change is one write transaction that updates the conversation, appends
// an audit row and an EventConversation event, so the live pages redraw the
// row and the thread header. Concurrent changes are serialised by the one
// writer: the last one wins, and the audit log shows each in order, each
// naming what it replaced (an "assign to me" by two agents at once leaves the
// conversation with the second, and two audit rows: none → first, first →
// second).

// Conversation statuses.
const (
	ConvOpen     = "open"     // someone has to act
	ConvPending  = "pending"  // waiting on the client
	ConvSnoozed  = "snoozed"  // put aside until SnoozedUntil, then open again
	ConvResolved = "resolved" // done
)

// MaxSnooze is how far ahead a conversation may be snoozed.
const MaxSnooze = 30 * 24 * time.Hour

// ConvStatuses returns every conversation status, in the order the inbox offers them.
func ConvStatuses() []string { return []string{ConvOpen, ConvPending, ConvSnoozed, ConvResolved} }

// ValidConvStatus reports whether s is a conversation status.
func ValidConvStatus(s string) bool {
	switch s {
	case ConvOpen, ConvPending, ConvSnoozed, ConvResolved:
		return true
	}
	return false
}

// Why a status or assignee changed by itself (the audit detail's reason).
const (
	ReasonClientMessage = "client_message" // a client message reopened it (trigger messages_reopen)
	ReasonSnoozeEnded   = "snooze_ended"   // its snooze time came
	ReasonReply         = "reply"          // an agent replied to it while unassigned
	ReasonRoundRobin    = "round_robin"    // the automatic rotation among online agents
)

// AgentRef names an agent: a conversation's assignee.
type AgentRef struct {
	ID    int64
	Login string
	Name  string
}

// ConversationUpdate is a change an agent asks for; zero fields change nothing.
type ConversationUpdate struct {
	// Status is the new status, "" to keep it. ConvSnoozed needs SnoozedUntil,
	// after now and at most MaxSnooze ahead; the other statuses refuse one.
	Status       string
	SnoozedUntil time.Time
	// Assign changes the assignee to the agent with login Assignee, or
	// unassigns the conversation when Assignee is "".
	Assign   bool
	Assignee string
}

// The audit details of a status and an assignee change.
type (
	statusDetail struct {
		From   string     `json:"from"`
		To     string     `json:"to"`
		Until  *time.Time `json:"until,omitempty"`
		Reason string     `json:"reason,omitempty"`
	}
	assignDetail struct {
		From     string `json:"from"` // login, "" for unassigned
		FromName string `json:"from_name,omitempty"`
		To       string `json:"to"`
		ToName   string `json:"to_name,omitempty"`
		Reason   string `json:"reason,omitempty"`
	}
)

// tokenLogins matches the logins of API tokens' own agents, which are never
// assigned: an integration does not own a client.
const tokenLogins = `'token:%'`

// UpdateConversation applies an agent's change of status and/or assignee in
// one transaction, with an audit row per changed field and one event. It
// returns whether anything changed (asking for what already holds changes
// and audits nothing); ErrNotFound for an unknown conversation; an
// *InvalidError for a bad status, snooze time or unknown assignee.
func (s *Store) UpdateConversation(ctx context.Context, conversationID, agentID int64, u ConversationUpdate) (changed bool, err error) {
	if u.Status == "" && !u.Assign {
		return false, &InvalidError{Field: "status", Message: "Nothing to change: give a status or an assignee."}
	}
	if u.Status != "" && !ValidConvStatus(u.Status) {
		return false, &InvalidError{Field: "status",
			Message: fmt.Sprintf("Unknown status %q: use one of %s.", u.Status, strings.Join(ConvStatuses(), ", "))}
	}
	if u.Status != ConvSnoozed && !u.SnoozedUntil.IsZero() {
		return false, &InvalidError{Field: "snoozed_until", Message: `A snooze time goes only with the status "snoozed".`}
	}
	err = s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		changed = false
		now := s.opts.Now()
		var (
			status     string
			until      int64
			assigneeID sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, `SELECT status, snoozed_until, assignee_id FROM conversations WHERE id = ?`,
			conversationID).Scan(&status, &until, &assigneeID)
		if errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("conversation %d: %w", conversationID, ErrNotFound)
		}
		if err != nil {
			return false, fmt.Errorf("conversation %d: %w", conversationID, err)
		}
		if u.Status != "" {
			var next int64
			if u.Status == ConvSnoozed {
				if err := checkSnooze(u.SnoozedUntil, now); err != nil {
					return false, err
				}
				next = ms(u.SnoozedUntil)
			}
			if u.Status != status || next != until {
				if _, err := tx.ExecContext(ctx, `UPDATE conversations SET status = ?, snoozed_until = ? WHERE id = ?`,
					u.Status, next, conversationID); err != nil {
					return false, fmt.Errorf("set status of conversation %d: %w", conversationID, err)
				}
				d := statusDetail{From: status, To: u.Status}
				if next != 0 {
					t := fromMS(next)
					d.Until = &t
				}
				if err := appendAudit(ctx, tx, now, agentID, AuditStatus, conversationID, 0, d); err != nil {
					return false, err
				}
				changed = true
			}
		}
		if u.Assign {
			to, err := assignableAgent(ctx, tx, u.Assignee)
			if err != nil {
				return false, err
			}
			if to.ID != assigneeID.Int64 {
				if err := setAssignee(ctx, tx, now, conversationID, agentID, assigneeID.Int64, to, ""); err != nil {
					return false, err
				}
				changed = true
			}
		}
		if !changed {
			return false, nil
		}
		return true, appendEvent(ctx, tx, EventConversation, conversationID, 0, now)
	})
	if err != nil {
		return false, fmt.Errorf("update conversation %d: %w", conversationID, err)
	}
	return changed, nil
}

// checkSnooze refuses a snooze time that is not ahead of now or too far ahead.
func checkSnooze(until, now time.Time) error {
	switch {
	case until.IsZero():
		return &InvalidError{Field: "snoozed_until", Message: "Snoozing needs a time to reopen at (snoozed_until)."}
	case !until.After(now):
		return &InvalidError{Field: "snoozed_until", Message: "The snooze time must be in the future."}
	case until.Sub(now) > MaxSnooze:
		return &InvalidError{Field: "snoozed_until",
			Message: fmt.Sprintf("A conversation can be snoozed for at most %d days.", int(MaxSnooze/(24*time.Hour)))}
	}
	return nil
}

// assignableAgent finds the agent with this login; "" is nobody (the zero
// AgentRef). API tokens' agents are not assignable.
func assignableAgent(ctx context.Context, q queryer, login string) (AgentRef, error) {
	if login == "" {
		return AgentRef{}, nil
	}
	var a AgentRef
	err := q.QueryRowContext(ctx, `SELECT id, login, name FROM agents WHERE login = ? AND login NOT LIKE `+tokenLogins,
		login).Scan(&a.ID, &a.Login, &a.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return AgentRef{}, &InvalidError{Field: "assignee", Message: fmt.Sprintf("No agent has the login %q.", login)}
	}
	if err != nil {
		return AgentRef{}, fmt.Errorf("find agent %q: %w", login, err)
	}
	return a, nil
}

// setAssignee records a new assignee (to.ID 0: none) with its audit row;
// the caller appends the event.
func setAssignee(ctx context.Context, tx queryer, now time.Time, conversationID, agentID, fromID int64, to AgentRef, reason string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE conversations SET assignee_id = ? WHERE id = ?`,
		nullID(to.ID), conversationID); err != nil {
		return fmt.Errorf("assign conversation %d: %w", conversationID, err)
	}
	d := assignDetail{To: to.Login, ToName: to.Name, Reason: reason}
	if fromID != 0 {
		if err := tx.QueryRowContext(ctx, `SELECT login, name FROM agents WHERE id = ?`, fromID).Scan(&d.From, &d.FromName); err != nil {
			return fmt.Errorf("previous assignee of conversation %d: %w", conversationID, err)
		}
	}
	return appendAudit(ctx, tx, now, agentID, AuditAssign, conversationID, 0, d)
}

// assignOnReply makes the replier the assignee of an unassigned conversation,
// inside the send's transaction; audited as the system's, for the reply.
// API tokens' agents never become assignees.
func assignOnReply(ctx context.Context, tx queryer, now time.Time, conversationID, agentID int64) error {
	if agentID == 0 {
		return nil
	}
	var to AgentRef
	err := tx.QueryRowContext(ctx, `SELECT id, login, name FROM agents WHERE id = ? AND login NOT LIKE `+tokenLogins,
		agentID).Scan(&to.ID, &to.Login, &to.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // an API token replied
	}
	if err != nil {
		return fmt.Errorf("assign conversation %d to the replier: %w", conversationID, err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE conversations SET assignee_id = ? WHERE id = ? AND assignee_id IS NULL`,
		to.ID, conversationID)
	if err != nil {
		return fmt.Errorf("assign conversation %d to the replier: %w", conversationID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // assigned already
	}
	if err := appendAudit(ctx, tx, now, 0, AuditAssign, conversationID, 0,
		assignDetail{To: to.Login, ToName: to.Name, Reason: ReasonReply}); err != nil {
		return err
	}
	return appendEvent(ctx, tx, EventConversation, conversationID, 0, now)
}

// SetOnlineAgents tells the store who is online (has a live page open), for
// the round-robin auto-assignment; the live hub knows. fn must be cheap and
// safe to call from any goroutine. Without it nobody is online.
func (s *Store) SetOnlineAgents(fn func() []int64) {
	s.online.Store(&fn)
}

func (s *Store) onlineAgents() []int64 {
	if fn := s.online.Load(); fn != nil && *fn != nil {
		return (*fn)()
	}
	return nil
}

// autoAssign gives an unassigned conversation to the next online agent in
// rotation, when the round robin is on; nobody online leaves it unassigned.
// Called in the transaction of the client message that opened a session.
func (s *Store) autoAssign(ctx context.Context, tx queryer, conversationID int64, now time.Time) error {
	online := s.onlineAgents()
	if len(online) == 0 {
		return nil
	}
	var (
		enabled    bool
		last       int64
		unassigned bool
	)
	if err := tx.QueryRowContext(ctx, `SELECT a.enabled, a.last_agent_id, c.assignee_id IS NULL
		FROM auto_assign a, conversations c WHERE a.id = 1 AND c.id = ?`, conversationID).Scan(&enabled, &last, &unassigned); err != nil {
		return fmt.Errorf("auto-assignment of conversation %d: %w", conversationID, err)
	}
	if !enabled || !unassigned {
		return nil
	}
	ids, err := json.Marshal(online)
	if err != nil {
		return fmt.Errorf("auto-assignment: %w", err)
	}
	// The next online agent after the last one assigned, by id, wrapping round.
	var to AgentRef
	err = tx.QueryRowContext(ctx, `SELECT id, login, name FROM agents
		WHERE id IN (SELECT value FROM json_each(?1)) AND login NOT LIKE `+tokenLogins+`
		ORDER BY id <= ?2, id LIMIT 1`, string(ids), last).Scan(&to.ID, &to.Login, &to.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("auto-assignment of conversation %d: %w", conversationID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE auto_assign SET last_agent_id = ? WHERE id = 1`, to.ID); err != nil {
		return fmt.Errorf("auto-assignment: %w", err)
	}
	if err := setAssignee(ctx, tx, now, conversationID, 0, 0, to, ReasonRoundRobin); err != nil {
		return err
	}
	return appendEvent(ctx, tx, EventConversation, conversationID, 0, now)
}

// AutoAssign reports whether the round-robin auto-assignment is on.
func (s *Store) AutoAssign(ctx context.Context) (bool, error) {
	var on bool
	if err := s.read.QueryRowContext(ctx, `SELECT enabled FROM auto_assign WHERE id = 1`).Scan(&on); err != nil {
		return false, fmt.Errorf("auto-assignment setting: %w", err)
	}
	return on, nil
}

// SetAutoAssign turns the round-robin auto-assignment on or off, audited as
// a settings change; setting what holds changes nothing.
func (s *Store) SetAutoAssign(ctx context.Context, agentID int64, on bool) error {
	return s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		res, err := tx.ExecContext(ctx, `UPDATE auto_assign SET enabled = ? WHERE id = 1 AND enabled <> ?`, on, on)
		if err != nil {
			return false, fmt.Errorf("set auto-assignment: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return false, nil
		}
		return false, appendAudit(ctx, tx, s.opts.Now(), agentID, AuditSettings, 0, 0,
			settingsDetail{Changes: []settingChange{{Field: "auto_assign", Old: !on, New: on}}})
	})
}

// WakeSnoozed reopens every snoozed conversation whose time has come, each
// with an audit row and an event, and returns how many it reopened and when
// the next one is due (zero when none is snoozed). It writes only when one is
// due, so calling it often is cheap.
func (s *Store) WakeSnoozed(ctx context.Context) (woken int, next time.Time, err error) {
	due, err := s.nextSnooze(ctx)
	if err != nil || due.IsZero() || due.After(s.opts.Now()) {
		return 0, due, err
	}
	err = s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		woken = 0
		now := s.opts.Now()
		rows, err := tx.QueryContext(ctx, `UPDATE conversations SET status = 'open', snoozed_until = 0
			WHERE status = 'snoozed' AND snoozed_until <= ? RETURNING id, snoozed_until`, ms(now))
		if err != nil {
			return false, fmt.Errorf("reopen snoozed conversations: %w", err)
		}
		type woke struct{ id, until int64 }
		var list []woke
		for rows.Next() {
			var w woke
			if err := rows.Scan(&w.id, &w.until); err != nil {
				rows.Close()
				return false, fmt.Errorf("reopen snoozed conversations: %w", err)
			}
			list = append(list, w)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("reopen snoozed conversations: %w", err)
		}
		for _, w := range list {
			until := fromMS(w.until)
			if err := appendAudit(ctx, tx, now, 0, AuditStatus, w.id, 0,
				statusDetail{From: ConvSnoozed, To: ConvOpen, Until: &until, Reason: ReasonSnoozeEnded}); err != nil {
				return false, err
			}
			if err := appendEvent(ctx, tx, EventConversation, w.id, 0, now); err != nil {
				return false, err
			}
		}
		woken = len(list)
		return woken > 0, nil
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	next, err = s.nextSnooze(ctx)
	return woken, next, err
}

// nextSnooze is the earliest snooze time, zero when nothing is snoozed.
func (s *Store) nextSnooze(ctx context.Context) (time.Time, error) {
	var due sql.NullInt64
	if err := s.read.QueryRowContext(ctx, `SELECT min(snoozed_until) FROM conversations WHERE status = 'snoozed'`).Scan(&due); err != nil {
		return time.Time{}, fmt.Errorf("next snoozed conversation: %w", err)
	}
	return fromMS(due.Int64), nil
}

// AssignableAgents returns the agents a conversation can be assigned to (every
// agent but the API tokens'), by name.
func (r *Reader) AssignableAgents(ctx context.Context) ([]AgentRef, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT id, login, name FROM agents WHERE login NOT LIKE `+tokenLogins+` ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("assignable agents: %w", err)
	}
	defer rows.Close()
	var out []AgentRef
	for rows.Next() {
		var a AgentRef
		if err := rows.Scan(&a.ID, &a.Login, &a.Name); err != nil {
			return nil, fmt.Errorf("assignable agents: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// statusSummary and assignSummary are the audit log's sentences.
func statusSummary(detail string) (string, bool) {
	var d statusDetail
	if json.Unmarshal([]byte(detail), &d) != nil {
		return "", false
	}
	s := fmt.Sprintf("Status %s → %s", d.From, d.To)
	if d.To == ConvSnoozed && d.Until != nil {
		s += " until " + d.Until.UTC().Format("2 Jan 2006 15:04 UTC")
	}
	switch d.Reason {
	case ReasonClientMessage:
		s += ": the client wrote"
	case ReasonSnoozeEnded:
		s += ": the snooze ended"
	}
	return s + ".", true
}

func assignSummary(detail string) (string, bool) {
	var d assignDetail
	if json.Unmarshal([]byte(detail), &d) != nil {
		return "", false
	}
	who := func(login, name string) string {
		switch {
		case login == "":
			return "nobody"
		case name != "" && name != login:
			return name + " (" + login + ")"
		}
		return login
	}
	s := "Unassigned"
	if d.To != "" {
		s = "Assigned to " + who(d.To, d.ToName)
	}
	if d.From != "" {
		s += ", was " + who(d.From, d.FromName)
	}
	switch d.Reason {
	case ReasonReply:
		s += ": replied while unassigned"
	case ReasonRoundRobin:
		s += ": round-robin among online agents"
	}
	return s + ".", true
}

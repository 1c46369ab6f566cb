package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// A business message is handed to the provider in a "try": BeginTry marks it
// open (tried_at) before the request goes out, and the outcome closes it: sent
// (ApplyStatus with the provider's id), a known failure (SendFailed, or
// RejectMessage), or an uncertain one (MarkUnconfirmed). A queued message whose
// try is still open when the outbox next sees it had its outcome lost (the
// process stopped mid-send, or recording it failed), and is treated as
// uncertain: looked up before anything is sent again.
//
// An unconfirmed message keeps counting for the session rules (it may have
// reached the client). The outbox looks it up at the provider a bounded number
// of times (checking = 1): found, it is sent; known to be absent, it is queued
// again; still unknown after the last check, it waits for an agent, who settles
// it with ResolveUnconfirmed: "it arrived" or "send again".

// ErrNotUnconfirmed is returned when an agent settles a message that is not
// (or no longer) unconfirmed: someone else settled it, or a lookup did.
var ErrNotUnconfirmed = errors.New("the message is not unconfirmed")

// Audit actions of settling an unconfirmed message.
const (
	AuditConfirmArrived = "confirm_arrived" // an agent said an unconfirmed message arrived
	AuditResend         = "resend"          // an agent had an unconfirmed message sent again
)

// Resolutions of an unconfirmed message, for ResolveUnconfirmed.
const (
	ResolveArrived = "arrived" // the agent knows it arrived: mark it sent
	ResolveResend  = "resend"  // the agent wants it sent again: queue the same message
)

type resolveDetail struct {
	Resolution string `json:"resolution"`
	Reason     string `json:"reason"` // why it was unconfirmed
}

// resolveSummary is the audit sentence of settling an unconfirmed message.
func resolveSummary(e AuditEntry) string {
	var d resolveDetail
	if json.Unmarshal([]byte(e.Detail), &d) != nil {
		return e.Detail
	}
	what := "Said message %d arrived"
	if d.Resolution == ResolveResend {
		what = "Had message %d sent again"
	}
	return fmt.Sprintf(what+" (its hand-over to the provider was unconfirmed: %s).", e.MessageID, d.Reason)
}

// BeginTry records that the outbox is about to hand queued message id to the
// provider. It fails with ErrNotFound when the message is no longer queued.
func (s *Store) BeginTry(ctx context.Context, id int64) error {
	return s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		res, err := tx.ExecContext(ctx, `UPDATE messages SET tried_at = ? WHERE id = ? AND direction = 'out' AND status = 'queued'`,
			ms(s.opts.Now()), id)
		if err != nil {
			return false, fmt.Errorf("begin try of message %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return false, fmt.Errorf("queued message %d: %w", id, ErrNotFound)
		}
		return false, nil
	})
}

// MarkUnconfirmed records that a try to hand message id over ended without
// knowing whether the provider took it. checkAt is when the outbox looks it up
// first; zero means no lookup is possible and an agent must settle it. The
// message keeps counting.
func (s *Store) MarkUnconfirmed(ctx context.Context, id int64, reason string, checkAt time.Time) error {
	return s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		now := s.opts.Now()
		var convID int64
		err := tx.QueryRowContext(ctx, `UPDATE messages SET status = 'unconfirmed', status_reason = ?, status_at = ?,
			checking = ?, checks = 0, next_attempt_at = ?, last_error = ?,
			tried_at = CASE WHEN tried_at = 0 THEN ? ELSE tried_at END
			WHERE id = ? AND direction = 'out' AND status = 'queued' RETURNING conversation_id`,
			reason, ms(now), boolInt(!checkAt.IsZero()), ms(checkAt), reason, ms(now), id).Scan(&convID)
		if errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("queued message %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return false, fmt.Errorf("mark message %d unconfirmed: %w", id, err)
		}
		return true, appendEvent(ctx, tx, EventStatus, convID, id, now)
	})
}

// CheckUnknown records a lookup of unconfirmed message id that could not tell
// whether the provider has it. next is when to look again; zero means the
// lookups are over and the message waits for an agent, with reason shown.
func (s *Store) CheckUnknown(ctx context.Context, id int64, reason string, next time.Time) error {
	return s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		var convID int64
		err := tx.QueryRowContext(ctx, `UPDATE messages SET checks = checks + 1, next_attempt_at = ?, checking = ?,
			last_error = ?, status_reason = CASE WHEN ? THEN status_reason ELSE ? END
			WHERE id = ? AND direction = 'out' AND status = 'unconfirmed' RETURNING conversation_id`,
			ms(next), boolInt(!next.IsZero()), reason, !next.IsZero(), reason, id).Scan(&convID)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil // settled meanwhile: nothing to record
		}
		if err != nil {
			return false, fmt.Errorf("record lookup of message %d: %w", id, err)
		}
		if !next.IsZero() {
			return false, nil // nothing the agent sees changed
		}
		return true, appendEvent(ctx, tx, EventStatus, convID, id, s.opts.Now())
	})
}

// NotAtProvider records that a lookup showed the provider does not have
// message id (queued with an open try, or unconfirmed): it is queued again, to
// be sent at once, and the failed try is counted.
func (s *Store) NotAtProvider(ctx context.Context, id int64, reason string) error {
	return s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		now := s.opts.Now()
		var convID int64
		err := tx.QueryRowContext(ctx, `UPDATE messages SET status = 'queued', status_reason = '', status_at = ?,
			tried_at = 0, checking = 0, checks = 0, attempts = attempts + 1, last_error = ?, next_attempt_at = ?
			WHERE id = ? AND direction = 'out' AND provider_id IS NULL
			  AND (status = 'unconfirmed' OR (status = 'queued' AND tried_at <> 0))
			RETURNING conversation_id`, ms(now), reason, ms(now), id).Scan(&convID)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil // settled meanwhile
		}
		if err != nil {
			return false, fmt.Errorf("requeue message %d: %w", id, err)
		}
		return true, appendEvent(ctx, tx, EventStatus, convID, id, now)
	})
}

// ResolveUnconfirmed settles an unconfirmed message of a conversation for an
// agent: ResolveArrived marks it sent (it keeps counting), ResolveResend queues
// the same message again, to go out at once. The check and the change are one
// transaction, so of two clicks at once one acts and the other gets
// ErrNotUnconfirmed, as does a message a lookup settled meanwhile. An unknown
// message, or one of another conversation, is ErrNotFound.
func (s *Store) ResolveUnconfirmed(ctx context.Context, conversationID, id, agentID int64, resolution string) (Message, error) {
	if resolution != ResolveArrived && resolution != ResolveResend {
		return Message{}, &InvalidError{Field: "action", Message: fmt.Sprintf("unknown resolution %q: want %q or %q",
			resolution, ResolveArrived, ResolveResend)}
	}
	var out Message
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		m, err := messageByID(ctx, tx, id)
		if err == nil && (m.Direction != Outbound || m.ConversationID != conversationID) {
			err = fmt.Errorf("business message %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return false, err
		}
		if m.Status != StatusUnconfirmed {
			return false, fmt.Errorf("message %d is %s: %w", id, m.Status, ErrNotUnconfirmed)
		}
		now := s.opts.Now()
		action, q := AuditConfirmArrived, `UPDATE messages SET status = 'sent', status_reason = 'Marked as arrived by an agent',
			status_at = ?1, checking = 0, tried_at = 0 WHERE id = ?2 AND status = 'unconfirmed'`
		if resolution == ResolveResend {
			action, q = AuditResend, `UPDATE messages SET status = 'queued', status_reason = '', status_at = ?1,
				checking = 0, checks = 0, tried_at = 0, next_attempt_at = ?1, last_error = ''
				WHERE id = ?2 AND status = 'unconfirmed'`
		}
		if _, err := tx.ExecContext(ctx, q, ms(now), id); err != nil {
			return false, fmt.Errorf("settle message %d: %w", id, err)
		}
		if err := appendEvent(ctx, tx, EventStatus, m.ConversationID, id, now); err != nil {
			return false, err
		}
		if err := appendAudit(ctx, tx, now, agentID, action, m.ConversationID, id,
			resolveDetail{Resolution: resolution, Reason: m.StatusReason}); err != nil {
			return false, err
		}
		out, err = messageByID(ctx, tx, id)
		return true, err
	})
	if err != nil {
		return Message{}, fmt.Errorf("settle message %d: %w", id, err)
	}
	return out, nil
}

// KnownProviderIDs returns which of the provider's ids are recorded for one of
// our messages: a lookup must not take such a message for another one.
func (s *Store) KnownProviderIDs(ctx context.Context, ids []string) (map[string]bool, error) {
	known := make(map[string]bool)
	for _, id := range ids {
		var n int
		err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE provider_id = ?`, id).Scan(&n)
		if err != nil {
			return nil, fmt.Errorf("look up provider id %q: %w", id, err)
		}
		if n > 0 {
			known[id] = true
		}
	}
	return known, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

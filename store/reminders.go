package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Reminder says that a session of a conversation assigned to an agent is
// about to close with the client's last message unanswered.
type Reminder struct {
	SessionID      int64
	ConversationID int64
	AgentID        int64 // the agent to remind
	ContactName    string
	ContactPhone   string
	EndsAt         time.Time
}

// reminderAssignee is the agent a conversation's reminder goes to: its
// assignee, or while nobody is assigned, the agent who last replied in it (an
// integration's replies name none). It expects the conversation as c.
const reminderAssignee = `coalesce(c.assignee_id, (SELECT agent_id FROM messages
	WHERE conversation_id = c.id AND direction = 'out' AND agent_id IS NOT NULL
	ORDER BY id DESC LIMIT 1))`

// TakeReminders returns the sessions that end within `before` from now, are
// the latest of their conversation, end with the client's message unanswered
// (no counted business message after it), and have an agent to remind; and
// marks them reminded in the same transaction, so that no session is ever
// returned twice, whoever asks and however often.
func (s *Store) TakeReminders(ctx context.Context, before time.Duration) ([]Reminder, error) {
	var out []Reminder
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		out = out[:0] // fn may run again
		now := s.opts.Now()
		rows, err := tx.QueryContext(ctx, `
			SELECT s.id, c.id, `+reminderAssignee+`, ct.name, ct.phone, s.ends_at
			FROM sessions s
			JOIN conversations c ON c.id = s.conversation_id
			JOIN contacts ct ON ct.id = c.contact_id
			JOIN messages m ON m.id = c.last_in_id
			WHERE s.reminded_at IS NULL AND s.ends_at > ? AND s.ends_at <= ?
			  AND m.session_id = s.id AND c.unanswered = 0
			  AND s.number = (SELECT max(number) FROM sessions WHERE conversation_id = c.id)
			ORDER BY s.ends_at, s.id`, ms(now), ms(now.Add(before)))
		if err != nil {
			return false, err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				r      Reminder
				agent  sql.NullInt64
				endsAt int64
			)
			if err := rows.Scan(&r.SessionID, &r.ConversationID, &agent, &r.ContactName, &r.ContactPhone, &endsAt); err != nil {
				return false, err
			}
			if !agent.Valid {
				continue // nobody to remind (yet): it stays a candidate
			}
			r.AgentID, r.EndsAt = agent.Int64, fromMS(endsAt)
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return false, err
		}
		rows.Close()
		for _, r := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE sessions SET reminded_at = ? WHERE id = ?`, ms(now), r.SessionID); err != nil {
				return false, err
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("take session reminders: %w", err)
	}
	return out, nil
}

// MaxMessageID is the id of the newest message, 0 when there is none. A page
// remembers it, so that its script tells a client message that arrived after
// the page was drawn (worth a sound) from one it already showed.
func (r *Reader) MaxMessageID(ctx context.Context) (int64, error) {
	var id int64
	if err := r.q.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM messages`).Scan(&id); err != nil {
		return 0, fmt.Errorf("newest message id: %w", err)
	}
	return id, nil
}

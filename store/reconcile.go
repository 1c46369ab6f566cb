package store

import (
	"context"
	"fmt"
	"time"
)

// Unsettled is a business message Routee has (its tracking id is known)
// whose status is not final yet: what "Check with Routee" asks about.
type Unsettled struct {
	ID             int64
	ConversationID int64
	ProviderID     string
	Status         string
	Route          string // "" for a session message, else the paid route
	Phone          string
}

const unsettledSelect = `SELECT m.id, m.conversation_id, m.provider_id, m.status, coalesce(p.route, ''), ct.phone
	FROM messages m
	JOIN conversations c ON c.id = m.conversation_id JOIN contacts ct ON ct.id = c.contact_id
	LEFT JOIN paid_messages p ON p.message_id = m.id`

func scanUnsettled(ctx context.Context, q queryer, query string, args ...any) ([]Unsettled, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Unsettled
	for rows.Next() {
		var u Unsettled
		if err := rows.Scan(&u.ID, &u.ConversationID, &u.ProviderID, &u.Status, &u.Route, &u.Phone); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// Unsettled returns up to limit of a conversation's business messages with
// a tracking id and no delivery report yet (sent, or unconfirmed), newest
// first. A delivered message may still be seen, but nothing is amiss with
// it: asking about it would only slow the check down.
func (r *Reader) Unsettled(ctx context.Context, conversationID int64, limit int) ([]Unsettled, error) {
	out, err := scanUnsettled(ctx, r.q, unsettledSelect+`
		WHERE m.conversation_id = ? AND m.direction = 'out' AND m.provider_id IS NOT NULL
		  AND m.status IN ('sent', 'unconfirmed')
		ORDER BY m.id DESC LIMIT ?`, conversationID, limit)
	if err != nil {
		return nil, fmt.Errorf("unsettled messages of conversation %d: %w", conversationID, err)
	}
	return out, nil
}

// StuckSent returns up to limit business messages marked sent in [since,
// before) without any later report, oldest first. The lower bound keeps
// messages Routee itself never settles from crowding out newer ones.
func (s *Store) StuckSent(ctx context.Context, since, before time.Time, limit int) ([]Unsettled, error) {
	out, err := scanUnsettled(ctx, s.read, unsettledSelect+`
		WHERE m.id IN (SELECT id FROM messages WHERE status = 'sent' AND status_at >= ? AND status_at < ?
		               ORDER BY status_at LIMIT ?)
		  AND m.provider_id IS NOT NULL
		ORDER BY m.status_at`, ms(since), ms(before), limit)
	if err != nil {
		return nil, fmt.Errorf("messages stuck in sent: %w", err)
	}
	return out, nil
}

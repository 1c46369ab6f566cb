package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"sessiondesk/session"
)

// Contact is a Viber user who wrote to the business.
type Contact struct {
	ID      int64
	Phone   string // E.164
	Name    string
	Country string // ISO 3166 region, "" when unknown
}

// Conversation is a contact's thread with its session state.
type Conversation struct {
	ID      int64
	Contact Contact
	// Last is the newest message, for the list's preview; nil when there is none.
	Last   *Message
	Unread int
	State  session.State
}

// stateColumns reads a conversation's session.State: the latest session row
// and the counts the triggers of migration 00010 keep beside it, in the same
// transaction as every message change (nothing is counted on read). It expects
// the conversation as c and its latest session as s.
const stateColumns = `
	s.id, s.number, s.started_at, s.ends_at, coalesce(s.used, 0), coalesce(s.media_used, 0), c.unanswered`

const latestSessionJoin = `
	LEFT JOIN sessions s ON s.id = (SELECT id FROM sessions
	                                 WHERE conversation_id = c.id ORDER BY number DESC LIMIT 1)`

// stateScan receives stateColumns.
type stateScan struct {
	sessionID                 sql.NullInt64
	number, startedAt, endsAt sql.NullInt64
	used, media, unanswered   int64
}

func (v *stateScan) dest() []any {
	return []any{&v.sessionID, &v.number, &v.startedAt, &v.endsAt, &v.used, &v.media, &v.unanswered}
}

func (v *stateScan) state() session.State {
	st := session.State{Unanswered: int(v.unanswered)}
	if v.sessionID.Valid {
		st.Current = &session.Session{
			Number:    int(v.number.Int64),
			StartedAt: fromMS(v.startedAt.Int64),
			EndsAt:    fromMS(v.endsAt.Int64),
			Used:      int(v.used),
			Media:     v.media > 0,
		}
	}
	return st
}

const conversationSelect = `
SELECT c.id, ct.id, ct.phone, ct.name, ct.country,
       m.id, m.direction, m.kind, m.body, m.status, m.created_at, m.sent_at, coalesce(ms.number, 0),
       c.unread,
` + stateColumns + `
FROM conversations c
JOIN contacts ct ON ct.id = c.contact_id
LEFT JOIN messages m ON m.id = c.last_message_id
LEFT JOIN sessions ms ON ms.id = m.session_id` + latestSessionJoin

func scanConversation(row interface{ Scan(...any) error }) (Conversation, error) {
	var (
		c                       Conversation
		lastID                  sql.NullInt64
		dir, kind, body, status sql.NullString
		lastAt, lastSentAt      sql.NullInt64
		lastSession             int
		unread                  int64
		st                      stateScan
	)
	dest := append([]any{&c.ID, &c.Contact.ID, &c.Contact.Phone, &c.Contact.Name, &c.Contact.Country,
		&lastID, &dir, &kind, &body, &status, &lastAt, &lastSentAt, &lastSession, &unread}, st.dest()...)
	if err := row.Scan(dest...); err != nil {
		return Conversation{}, err
	}
	if lastID.Valid {
		c.Last = &Message{ID: lastID.Int64, ConversationID: c.ID, Direction: dir.String,
			Kind: session.Kind(kind.String), Body: body.String, Status: status.String, CreatedAt: fromMS(lastAt.Int64),
			SentAt: fromMS(lastSentAt.Int64), SessionNumber: lastSession}
	}
	c.Unread = int(unread)
	c.State = st.state()
	return c, nil
}

// Conversations returns up to limit conversations, the latest activity first.
func (r *Reader) Conversations(ctx context.Context, limit int) ([]Conversation, error) {
	rows, err := r.q.QueryContext(ctx, conversationSelect+` ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	defer rows.Close()
	var out []Conversation
	for rows.Next() {
		c, err := scanConversation(rows)
		if err != nil {
			return nil, fmt.Errorf("list conversations: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Conversation returns one conversation, or ErrNotFound.
func (r *Reader) Conversation(ctx context.Context, id int64) (Conversation, error) {
	c, err := scanConversation(r.q.QueryRowContext(ctx, conversationSelect+` WHERE c.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Conversation{}, fmt.Errorf("conversation %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Conversation{}, fmt.Errorf("conversation %d: %w", id, err)
	}
	return c, nil
}

// ConversationByPhone returns the conversation with the contact of this E.164
// number, or ErrNotFound.
func (r *Reader) ConversationByPhone(ctx context.Context, phone string) (Conversation, error) {
	c, err := scanConversation(r.q.QueryRowContext(ctx, conversationSelect+` WHERE ct.phone = ?`, phone))
	if errors.Is(err, sql.ErrNoRows) {
		return Conversation{}, fmt.Errorf("conversation with %s: %w", phone, ErrNotFound)
	}
	if err != nil {
		return Conversation{}, fmt.Errorf("conversation with %s: %w", phone, err)
	}
	return c, nil
}

// Contacts returns up to limit contacts, the most recently active first.
func (r *Reader) Contacts(ctx context.Context, limit int) ([]Contact, error) {
	rows, err := r.q.QueryContext(ctx, `
		SELECT ct.id, ct.phone, ct.name, ct.country FROM contacts ct
		LEFT JOIN conversations c ON c.contact_id = ct.id
		ORDER BY coalesce(c.last_activity_at, 0) DESC, ct.id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	defer rows.Close()
	var out []Contact
	for rows.Next() {
		var ct Contact
		if err := rows.Scan(&ct.ID, &ct.Phone, &ct.Name, &ct.Country); err != nil {
			return nil, fmt.Errorf("list contacts: %w", err)
		}
		out = append(out, ct)
	}
	return out, rows.Err()
}

// loadState reads a conversation's session state inside a write transaction.
func loadState(ctx context.Context, q queryer, conversationID int64) (st session.State, sessionID int64, err error) {
	var v stateScan
	err = q.QueryRowContext(ctx, `SELECT `+stateColumns+` FROM conversations c`+latestSessionJoin+` WHERE c.id = ?`,
		conversationID).Scan(v.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return session.State{}, 0, fmt.Errorf("conversation %d: %w", conversationID, ErrNotFound)
	}
	if err != nil {
		return session.State{}, 0, fmt.Errorf("load session state of conversation %d: %w", conversationID, err)
	}
	return v.state(), v.sessionID.Int64, nil
}

// MarkRead marks every message of a conversation read. It appends an event only
// when something was unread, so pages that call it on every view do not loop.
func (s *Store) MarkRead(ctx context.Context, conversationID int64) error {
	return s.writeTx(ctx, func(tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx, `UPDATE conversations SET last_read_message_id = last_message_id
			WHERE id = ? AND last_read_message_id <> last_message_id`, conversationID)
		if err != nil {
			return false, fmt.Errorf("mark conversation %d read: %w", conversationID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return false, nil
		}
		return true, appendEvent(ctx, tx, EventRead, conversationID, 0, s.opts.Now())
	})
}

// upsertContact returns the contact with this phone, creating it; a non-empty
// name replaces the stored one (Viber users change their display names).
func upsertContact(ctx context.Context, tx *sql.Tx, phone, name, country string, now time.Time) (int64, error) {
	if name == "" {
		name = phone
	}
	var id int64
	err := tx.QueryRowContext(ctx, `
		INSERT INTO contacts (phone, name, country, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (phone) DO UPDATE SET
			name = CASE WHEN excluded.name <> excluded.phone THEN excluded.name ELSE contacts.name END,
			country = CASE WHEN excluded.country <> '' THEN excluded.country ELSE contacts.country END
		RETURNING id`, phone, name, country, ms(now)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("save contact %s: %w", phone, err)
	}
	return id, nil
}

func ensureConversation(ctx context.Context, tx *sql.Tx, contactID int64, now time.Time) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `
		INSERT INTO conversations (contact_id, created_at) VALUES (?, ?)
		ON CONFLICT (contact_id) DO UPDATE SET contact_id = excluded.contact_id
		RETURNING id`, contactID, ms(now)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("save conversation of contact %d: %w", contactID, err)
	}
	return id, nil
}

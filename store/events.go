package store

import (
	"context"
	"fmt"
	"time"
)

// Event kinds: what changed, so a page knows what to redraw.
const (
	EventMessage = "message" // a message was added to a conversation
	EventStatus  = "status"  // a business message's status changed
	EventRead    = "read"    // a conversation was read
	// EventConversation: the conversation itself changed (status, assignee):
	// pages redraw its row and, when viewing it, the thread header.
	EventConversation = "conversation"
	EventNote         = "note"    // an internal note was added (notes.go)
	EventContact      = "contact" // an agent edited the conversation's contact
)

// Event is one row of the append-only events table.
type Event struct {
	ID             int64
	Kind           string
	ConversationID int64
	MessageID      int64 // 0 when the event is about the conversation
	NoteID         int64 // the note of an EventNote; 0 otherwise
	At             time.Time
}

func appendEvent(ctx context.Context, tx queryer, kind string, conversationID, messageID int64, now time.Time) error {
	var msg any
	if messageID != 0 {
		msg = messageID
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO events (kind, conversation_id, message_id, created_at) VALUES (?, ?, ?, ?)`,
		kind, conversationID, msg, ms(now)); err != nil {
		return fmt.Errorf("append %s event: %w", kind, err)
	}
	return nil
}

// LastEventID returns the id of the newest event, 0 when there is none.
func (r *Reader) LastEventID(ctx context.Context) (int64, error) {
	var id int64
	if err := r.q.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM events`).Scan(&id); err != nil {
		return 0, fmt.Errorf("last event id: %w", err)
	}
	return id, nil
}

// EventsAfter returns up to limit events with an id above after, oldest first.
func (r *Reader) EventsAfter(ctx context.Context, after int64, limit int) ([]Event, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT id, kind, conversation_id, coalesce(message_id, 0), coalesce(note_id, 0), created_at
		FROM events WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("events after %d: %w", after, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at int64
		if err := rows.Scan(&e.ID, &e.Kind, &e.ConversationID, &e.MessageID, &e.NoteID, &at); err != nil {
			return nil, fmt.Errorf("events after %d: %w", after, err)
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

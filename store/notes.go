package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"sessiondesk/mention"
	"sessiondesk/session"
)

// Internal notes: what agents write to each other about a conversation.
//
// A note is kept in its own table, never in messages: the outbox sends only
// queued business messages, the session counters (migration 00010) are kept by
// triggers on messages, and the list's preview, order and unread count come
// from the conversation's messages. So a note is never sent to the provider,
// never counts for a session (S3, S4), and changes nothing the list shows; it
// only appends an event ("note") that the open threads show it by.

// MaxNoteLen is the longest note, in characters.
const MaxNoteLen = 5000

// Note is an internal note in a conversation's thread.
type Note struct {
	ID             int64
	ConversationID int64
	AgentID        int64
	AgentLogin     string
	AgentName      string
	Body           string
	CreatedAt      time.Time
	// Mentions are the agents it mentions (@login), in the order of their
	// logins.
	Mentions []NoteMention
}

// NoteMention is an agent a note mentions.
type NoteMention struct {
	AgentID int64
	Login   string
	Name    string
	// Seen: the agent has seen it (a mention of oneself is seen at once).
	Seen bool
}

// MentionLogins returns the logins the note mentions.
func (n Note) MentionLogins() []string {
	out := make([]string, 0, len(n.Mentions))
	for _, m := range n.Mentions {
		out = append(out, m.Login)
	}
	return out
}

// CheckNote refuses a note that is blank (only spaces, line breaks or
// invisible characters, like a blank reply) or longer than MaxNoteLen, with
// the refusal codes of a reply: invalid_type and text_too_long.
func CheckNote(body string) error {
	switch n := utf8.RuneCountInString(body); {
	case session.Blank(body):
		return session.Refuse(session.InvalidType, "The note is empty: write something first.")
	case n > MaxNoteLen:
		return session.Refuse(session.TextTooLong, fmt.Sprintf(
			"The note has %d characters; a note may have at most %d. Shorten it by %d.", n, MaxNoteLen, n-MaxNoteLen))
	}
	return nil
}

// AddNote keeps a note by agentID in a conversation, with the agents it
// mentions (the @logins of existing agents; any other @name stays text), and
// appends the event that shows it on the open pages. It returns ErrNotFound
// for an unknown conversation, and a *session.Refusal for a blank or too long
// note. Nothing about the conversation, its session or its messages changes.
func (s *Store) AddNote(ctx context.Context, conversationID, agentID int64, body string) (Note, error) {
	if err := CheckNote(body); err != nil {
		return Note{}, err
	}
	var out Note
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		now := s.opts.Now()
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM conversations WHERE id = ?`, conversationID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("conversation %d: %w", conversationID, ErrNotFound)
		}
		if err != nil {
			return false, fmt.Errorf("find conversation %d: %w", conversationID, err)
		}
		var id int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO notes (conversation_id, agent_id, body, created_at)
			VALUES (?, ?, ?, ?) RETURNING id`, conversationID, agentID, body, ms(now)).Scan(&id); err != nil {
			return false, fmt.Errorf("save note: %w", err)
		}
		mentioned, err := resolveMentions(ctx, tx, body)
		if err != nil {
			return false, err
		}
		for _, a := range mentioned {
			var seen int64
			if a == agentID {
				seen = ms(now) // one's own mention notifies no one
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO note_mentions (agent_id, note_id, seen_at) VALUES (?, ?, ?)`,
				a, id, seen); err != nil {
				return false, fmt.Errorf("save mention of agent %d in note %d: %w", a, id, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (kind, conversation_id, note_id, created_at) VALUES (?, ?, ?, ?)`,
			EventNote, conversationID, id, ms(now)); err != nil {
			return false, fmt.Errorf("append note event: %w", err)
		}
		notes, err := notesWhere(ctx, tx, noteSelect+` WHERE n.id = ?`, id)
		if err != nil {
			return false, err
		}
		if len(notes) != 1 {
			return false, fmt.Errorf("note %d: %w", id, ErrNotFound)
		}
		out = notes[0]
		return true, nil
	})
	if err != nil {
		return Note{}, fmt.Errorf("add note to conversation %d: %w", conversationID, err)
	}
	return out, nil
}

// resolveMentions returns the ids of the agents the @names of body designate,
// each once, in the order first mentioned. API tokens' agents (token:<id>)
// are no one to mention.
func resolveMentions(ctx context.Context, tx queryer, body string) ([]int64, error) {
	tokens := mention.Find(body)
	if len(tokens) == 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, login FROM agents WHERE login NOT LIKE 'token:%'`)
	if err != nil {
		return nil, fmt.Errorf("read logins for mentions: %w", err)
	}
	defer rows.Close()
	var logins []string
	ids := map[string]int64{}
	for rows.Next() {
		var id int64
		var login string
		if err := rows.Scan(&id, &login); err != nil {
			return nil, fmt.Errorf("read logins for mentions: %w", err)
		}
		logins = append(logins, login)
		ids[login] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read logins for mentions: %w", err)
	}
	var out []int64
	seen := map[int64]bool{}
	for _, t := range tokens {
		if l := mention.Match(t.Name, logins); l != "" && !seen[ids[l]] {
			seen[ids[l]] = true
			out = append(out, ids[l])
		}
	}
	return out, nil
}

const noteSelect = `
SELECT n.id, n.conversation_id, n.agent_id, coalesce(a.login, ''), coalesce(a.name, ''), n.body, n.created_at
FROM notes n
LEFT JOIN agents a ON a.id = n.agent_id`

// notesWhere runs a noteSelect query and loads the mentions of the notes found.
func notesWhere(ctx context.Context, q queryer, query string, args ...any) ([]Note, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read notes: %w", err)
	}
	var out []Note
	for rows.Next() {
		var n Note
		var at int64
		if err := rows.Scan(&n.ID, &n.ConversationID, &n.AgentID, &n.AgentLogin, &n.AgentName, &n.Body, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read notes: %w", err)
		}
		n.CreatedAt = fromMS(at)
		out = append(out, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read notes: %w", err)
	}
	if err := loadMentions(ctx, q, out); err != nil {
		return nil, err
	}
	return out, nil
}

// loadMentions fills in the mentions of notes, in one query.
func loadMentions(ctx context.Context, q queryer, notes []Note) error {
	if len(notes) == 0 {
		return nil
	}
	at := make(map[int64]int, len(notes))
	ids := make([]int64, 0, len(notes))
	for i, n := range notes {
		at[n.ID] = i
		ids = append(ids, n.ID)
	}
	arg, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("read mentions: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT nm.note_id, nm.agent_id, a.login, a.name, nm.seen_at <> 0
		FROM note_mentions nm JOIN agents a ON a.id = nm.agent_id
		WHERE nm.note_id IN (SELECT value FROM json_each(?)) ORDER BY nm.note_id, a.login`, string(arg))
	if err != nil {
		return fmt.Errorf("read mentions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var noteID int64
		var m NoteMention
		if err := rows.Scan(&noteID, &m.AgentID, &m.Login, &m.Name, &m.Seen); err != nil {
			return fmt.Errorf("read mentions: %w", err)
		}
		n := &notes[at[noteID]]
		n.Mentions = append(n.Mentions, m)
	}
	return rows.Err()
}

// Notes returns the last limit notes of a conversation, oldest first; with
// since set, only those written at or after it (the thread shows the notes
// of the time its messages cover).
func (r *Reader) Notes(ctx context.Context, conversationID int64, since time.Time, limit int) ([]Note, error) {
	const order = ` ORDER BY n.id DESC LIMIT ?) ORDER BY 1`
	var (
		notes []Note
		err   error
	)
	if since.IsZero() {
		notes, err = notesWhere(ctx, r.q, `SELECT * FROM (`+noteSelect+` WHERE n.conversation_id = ?`+order,
			conversationID, limit)
	} else {
		notes, err = notesWhere(ctx, r.q, `SELECT * FROM (`+noteSelect+` WHERE n.conversation_id = ? AND n.created_at >= ?`+order,
			conversationID, ms(since), limit)
	}
	if err != nil {
		return nil, fmt.Errorf("notes of conversation %d: %w", conversationID, err)
	}
	return notes, nil
}

// NotesByID returns these notes, oldest first; ids that do not exist are left out.
func (r *Reader) NotesByID(ctx context.Context, ids []int64) ([]Note, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	arg, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("notes by id: %w", err)
	}
	notes, err := notesWhere(ctx, r.q, noteSelect+` WHERE n.id IN (SELECT value FROM json_each(?)) ORDER BY n.id`, string(arg))
	if err != nil {
		return nil, fmt.Errorf("notes by id: %w", err)
	}
	return notes, nil
}

// UnseenMentions returns how many mentions each of these agents has not seen
// yet; agents with none are left out.
func (r *Reader) UnseenMentions(ctx context.Context, agentIDs []int64) (map[int64]int, error) {
	out := map[int64]int{}
	if len(agentIDs) == 0 {
		return out, nil
	}
	arg, err := json.Marshal(agentIDs)
	if err != nil {
		return nil, fmt.Errorf("unseen mentions: %w", err)
	}
	rows, err := r.q.QueryContext(ctx, `SELECT agent_id, count(*) FROM note_mentions
		WHERE agent_id IN (SELECT value FROM json_each(?)) AND seen_at = 0 GROUP BY agent_id`, string(arg))
	if err != nil {
		return nil, fmt.Errorf("unseen mentions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("unseen mentions: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}

// MentionItem is one mention of an agent, for their list of mentions.
type MentionItem struct {
	Note
	ContactName  string
	ContactPhone string
	Seen         bool
}

// MentionsOf returns the last limit mentions of an agent, the newest first.
func (r *Reader) MentionsOf(ctx context.Context, agentID int64, limit int) ([]MentionItem, error) {
	rows, err := r.q.QueryContext(ctx, `
		SELECT n.id, n.conversation_id, n.agent_id, coalesce(a.login, ''), coalesce(a.name, ''), n.body, n.created_at,
		       ct.name, ct.phone, nm.seen_at <> 0
		FROM note_mentions nm
		JOIN notes n ON n.id = nm.note_id
		LEFT JOIN agents a ON a.id = n.agent_id
		JOIN conversations c ON c.id = n.conversation_id
		JOIN contacts ct ON ct.id = c.contact_id
		WHERE nm.agent_id = ? ORDER BY nm.note_id DESC LIMIT ?`, agentID, limit)
	if err != nil {
		return nil, fmt.Errorf("mentions of agent %d: %w", agentID, err)
	}
	var out []MentionItem
	for rows.Next() {
		var m MentionItem
		var at int64
		if err := rows.Scan(&m.ID, &m.ConversationID, &m.AgentID, &m.AgentLogin, &m.AgentName, &m.Body, &at,
			&m.ContactName, &m.ContactPhone, &m.Seen); err != nil {
			rows.Close()
			return nil, fmt.Errorf("mentions of agent %d: %w", agentID, err)
		}
		m.CreatedAt = fromMS(at)
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mentions of agent %d: %w", agentID, err)
	}
	notes := make([]Note, len(out))
	for i := range out {
		notes[i] = out[i].Note
	}
	if err := loadMentions(ctx, r.q, notes); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Note = notes[i]
	}
	return out, nil
}

// MarkMentionsSeen marks the agent's mentions in notes up to note upTo (the
// newest the agent was shown) seen, and returns how many were not yet. A
// mention that arrived after the agent looked stays unseen.
func (s *Store) MarkMentionsSeen(ctx context.Context, agentID, upTo int64) (int64, error) {
	var n int64
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		res, err := tx.ExecContext(ctx, `UPDATE note_mentions SET seen_at = ?
			WHERE agent_id = ? AND seen_at = 0 AND note_id <= ?`, ms(s.opts.Now()), agentID, upTo)
		if err != nil {
			return false, err
		}
		n, err = res.RowsAffected()
		return false, err
	})
	if err != nil {
		return 0, fmt.Errorf("mark mentions of agent %d seen: %w", agentID, err)
	}
	return n, nil
}

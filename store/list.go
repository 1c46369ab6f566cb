package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The conversation list, read in pages and by the ids an event batch touched.
//
// The list is ordered by last activity, newest first, and by id among equals;
// conversations_by_activity covers that order, so a page is an index range
// (keyset pagination) whatever its depth, and a conversation beyond the first
// page is found again by its key.

// ListRow is one conversation of the list with its sort key.
type ListRow struct {
	Conversation
	// LastActivityAt is when the newest message was stored: the list's order
	// below the waiting clients.
	LastActivityAt time.Time
	// ReadMark is the reading agent's mark on the conversation (the client
	// messages up to it are read): set by ListView, for ListQuery.Agent, so
	// that a page learns which rows are unread with its rows, not by a
	// second query over them. Other readers leave it -1.
	ReadMark int64
}

// ListCursor names a place in a view's order (ListRow.KeyIn): the band
// (waiting clients by session end, the rest by activity, or Closed
// unanswered by session end), the key within it, and the id among equals.
type ListCursor struct {
	Band byte  // 'w', 'a' or 'e'
	Key  int64 // session_ends_at or last_activity_at, in stored milliseconds
	ID   int64
}

// maxCursorLen bounds what ParseListCursor reads: a band, two int64 and a colon.
const maxCursorLen = 42

// String is the cursor's opaque form for URLs and the API. The activity band
// has no letter, so cursors handed out before the views still read.
func (c ListCursor) String() string {
	prefix := ""
	if c.Band != bandActivity && c.Band != 0 {
		prefix = string(c.Band)
	}
	return prefix + strconv.FormatInt(c.Key, 10) + ":" + strconv.FormatInt(c.ID, 10)
}

// ErrBadCursor is returned for a list cursor this server did not hand out.
var ErrBadCursor = errors.New("not a list cursor from this server")

// ParseListCursor reads a cursor made by ListCursor.String.
func ParseListCursor(s string) (ListCursor, error) {
	if len(s) > maxCursorLen || s == "" {
		return ListCursor{}, ErrBadCursor
	}
	band := byte(bandActivity)
	if s[0] == bandWaiting || s[0] == bandLost {
		band, s = s[0], s[1:]
	}
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return ListCursor{}, ErrBadCursor
	}
	key, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || key < 0 || id <= 0 {
		return ListCursor{}, ErrBadCursor
	}
	return ListCursor{Band: band, Key: key, ID: id}, nil
}

// maxListPrealloc bounds what listRows reserves ahead of reading.
const maxListPrealloc = 200

// listSelect is conversationSelect with the sort key in front.
var listSelect = strings.Replace(conversationSelect, "SELECT c.id,", "SELECT c.last_activity_at, c.id,", 1)

// listMarkSelect is listSelect with an agent's read mark after the sort key,
// the agent bound as its first argument.
var listMarkSelect = strings.Replace(conversationSelect, "SELECT c.id,",
	"SELECT c.last_activity_at, "+readMarkExpr+", c.id,", 1) + `
	LEFT JOIN conversation_reads rd ON rd.agent_id = ? AND rd.conversation_id = c.id`

// ListRowsByID returns the rows of these conversations, in list order; ids
// that do not exist are left out.
func (r *Reader) ListRowsByID(ctx context.Context, ids []int64) ([]ListRow, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	arg, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("list rows by id: %w", err)
	}
	rows, err := r.listRows(ctx, len(ids), false, listSelect+` WHERE c.id IN (SELECT value FROM json_each(?))
		ORDER BY c.last_activity_at DESC, c.id DESC`, string(arg))
	if err != nil {
		return nil, fmt.Errorf("list rows by id: %w", err)
	}
	return rows, nil
}

// listRows reads the rows of a listSelect query, or of a listMarkSelect
// query when marked; want is how many it expects at most, so that a page's
// rows take one allocation, not a run of doublings of a large struct.
func (r *Reader) listRows(ctx context.Context, want int, marked bool, query string, args ...any) ([]ListRow, error) {
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var activity int64
	mark := int64(-1)
	var out []ListRow // made at the first row: a band often has none
	leading := []any{&activity}
	if marked {
		leading = append(leading, &mark)
	}
	sc := newConversationScan(leading...)
	for rows.Next() {
		c, err := sc.scan(rows)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make([]ListRow, 0, min(want, maxListPrealloc))
		}
		out = append(out, ListRow{Conversation: c, LastActivityAt: fromMS(activity), ReadMark: mark})
	}
	return out, rows.Err()
}

// MessagesByID returns these messages, oldest first; ids that do not exist
// are left out.
func (r *Reader) MessagesByID(ctx context.Context, ids []int64) ([]Message, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	arg, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("messages by id: %w", err)
	}
	rows, err := r.q.QueryContext(ctx, messageSelect+` WHERE m.id IN (SELECT value FROM json_each(?)) ORDER BY m.id`, string(arg))
	if err != nil {
		return nil, fmt.Errorf("messages by id: %w", err)
	}
	defer rows.Close()
	out := make([]Message, 0, len(ids))
	sc := newMessageScan()
	for rows.Next() {
		m, err := sc.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("messages by id: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

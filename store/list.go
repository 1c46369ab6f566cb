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
	// LastActivityAt is when the newest message was stored: the list's order.
	LastActivityAt time.Time
}

// Key is the row's place in the list.
func (r ListRow) Key() ListCursor {
	return ListCursor{ActivityMS: r.LastActivityAt.UnixMilli(), ID: r.ID}
}

// ListCursor names a place in the list: the rows after it are those with an
// older activity, or the same activity and a smaller id.
type ListCursor struct {
	ActivityMS int64 // last_activity_at, in stored milliseconds
	ID         int64
}

// maxCursorLen bounds what ParseListCursor reads: two int64 and a colon.
const maxCursorLen = 41

// String is the cursor's opaque form for URLs and the API.
func (c ListCursor) String() string {
	return strconv.FormatInt(c.ActivityMS, 10) + ":" + strconv.FormatInt(c.ID, 10)
}

// ErrBadCursor is returned for a list cursor this server did not hand out.
var ErrBadCursor = errors.New("not a list cursor from this server")

// ParseListCursor reads a cursor made by ListCursor.String.
func ParseListCursor(s string) (ListCursor, error) {
	if len(s) > maxCursorLen {
		return ListCursor{}, ErrBadCursor
	}
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return ListCursor{}, ErrBadCursor
	}
	act, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || act < 0 || id <= 0 {
		return ListCursor{}, ErrBadCursor
	}
	return ListCursor{ActivityMS: act, ID: id}, nil
}

// listSelect is conversationSelect with the sort key in front, scanned by
// scanListRow; the rest of the row is scanned by scanConversation as it is.
var listSelect = strings.Replace(conversationSelect, "SELECT c.id,", "SELECT c.last_activity_at, c.id,", 1)

// prefixScanner hands the leading columns to extra and the rest to the caller's Scan.
type prefixScanner struct {
	row   interface{ Scan(...any) error }
	extra []any
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.row.Scan(append(p.extra, dest...)...)
}

func scanListRow(row interface{ Scan(...any) error }) (ListRow, error) {
	var activity int64
	c, err := scanConversation(prefixScanner{row: row, extra: []any{&activity}})
	if err != nil {
		return ListRow{}, err
	}
	return ListRow{Conversation: c, LastActivityAt: fromMS(activity)}, nil
}

// ListPage returns up to limit rows of the list after the cursor (from the
// top when after is nil), and the cursor of the next page, nil when these are
// the last.
func (r *Reader) ListPage(ctx context.Context, after *ListCursor, limit int) ([]ListRow, *ListCursor, error) {
	if limit <= 0 {
		return nil, nil, fmt.Errorf("list page: limit %d", limit)
	}
	const order = ` ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?`
	var rows []ListRow
	var err error
	if after == nil {
		rows, err = r.listRows(ctx, listSelect+order, limit+1)
	} else {
		rows, err = r.listRows(ctx, listSelect+` WHERE (c.last_activity_at, c.id) < (?, ?)`+order,
			after.ActivityMS, after.ID, limit+1)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list page: %w", err)
	}
	if len(rows) <= limit {
		return rows, nil, nil
	}
	rows = rows[:limit]
	next := rows[limit-1].Key()
	return rows, &next, nil
}

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
	rows, err := r.listRows(ctx, listSelect+` WHERE c.id IN (SELECT value FROM json_each(?))
		ORDER BY c.last_activity_at DESC, c.id DESC`, string(arg))
	if err != nil {
		return nil, fmt.Errorf("list rows by id: %w", err)
	}
	return rows, nil
}

func (r *Reader) listRows(ctx context.Context, query string, args ...any) ([]ListRow, error) {
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ListRow
	for rows.Next() {
		lr, err := scanListRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, lr)
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
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("messages by id: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

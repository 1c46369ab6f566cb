package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"sessiondesk/session"
)

// Download states of a client's media.
const (
	DownloadPending = "pending"
	DownloadDone    = "done"
	DownloadFailed  = "failed"
)

// Attachment is a message's image or file. The bytes live in the media store
// under Hash; an empty Hash means a client's media not downloaded yet.
type Attachment struct {
	ID        int64
	MessageID int64
	NewAttachment
	Token          string // the public URL's token; "" when it has none
	TokenExpiresAt time.Time
	DownloadState  string // "" for what the inbox stored itself
	DownloadError  string
	Attempts       int
	NextAttemptAt  time.Time
}

// NewAttachment describes bytes already in the media store, checked by package media.
type NewAttachment struct {
	Hash          string
	Size          int64
	MIME          string
	Name          string
	Width, Height int
	ThumbHash     string
}

const attachmentColumns = `a.id, coalesce(a.message_id, 0), a.hash, a.size, a.mime, a.name, a.width, a.height, a.thumb_hash,
	coalesce(a.token, ''), a.token_expires_at, a.download_state, a.download_error, a.attempts, a.next_attempt_at`

// attachmentScan receives attachmentColumns, possibly from a LEFT JOIN.
type attachmentScan struct {
	id, messageID, size, width, height, expires, attempts, next sql.NullInt64
	hash, mime, name, thumb, token, state, dlErr                sql.NullString
}

func (v *attachmentScan) dest() []any {
	return []any{&v.id, &v.messageID, &v.hash, &v.size, &v.mime, &v.name, &v.width, &v.height, &v.thumb,
		&v.token, &v.expires, &v.state, &v.dlErr, &v.attempts, &v.next}
}

func (v *attachmentScan) attachment() *Attachment {
	if !v.id.Valid {
		return nil
	}
	return &Attachment{
		ID: v.id.Int64, MessageID: v.messageID.Int64,
		NewAttachment: NewAttachment{Hash: v.hash.String, Size: v.size.Int64, MIME: v.mime.String, Name: v.name.String,
			Width: int(v.width.Int64), Height: int(v.height.Int64), ThumbHash: v.thumb.String},
		Token: v.token.String, TokenExpiresAt: fromMS(v.expires.Int64), DownloadState: v.state.String,
		DownloadError: v.dlErr.String, Attempts: int(v.attempts.Int64), NextAttemptAt: fromMS(v.next.Int64),
	}
}

func newToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("media token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// insertAttachment stores a business message's attachment with a fresh public token.
func (s *Store) insertAttachment(ctx context.Context, tx queryer, messageID int64, a NewAttachment, now time.Time) error {
	token, err := newToken()
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO attachments (message_id, hash, size, mime, name, width, height, thumb_hash, token, token_expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		messageID, a.Hash, a.Size, a.MIME, a.Name, a.Width, a.Height, a.ThumbHash, token,
		ms(now.Add(s.opts.MediaTokenTTL)), ms(now))
	if err != nil {
		return fmt.Errorf("save attachment of message %d: %w", messageID, err)
	}
	return nil
}

// AddLooseAttachment stores bytes with a public token and no message: the
// sandbox phone serves a client's upload to the fake provider this way.
func (s *Store) AddLooseAttachment(ctx context.Context, a NewAttachment, valid time.Duration) (token string, err error) {
	err = s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		if token, err = newToken(); err != nil {
			return false, err
		}
		now := s.opts.Now()
		_, err := tx.ExecContext(ctx, `
			INSERT INTO attachments (hash, size, mime, name, width, height, thumb_hash, token, token_expires_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.Hash, a.Size, a.MIME, a.Name, a.Width, a.Height, a.ThumbHash, token, ms(now.Add(valid)), ms(now))
		return false, err
	})
	if err != nil {
		return "", fmt.Errorf("save loose attachment: %w", err)
	}
	return token, nil
}

// Attachment returns one attachment, or ErrNotFound.
func (r *Reader) Attachment(ctx context.Context, id int64) (Attachment, error) {
	return r.attachmentWhere(ctx, `a.id = ?`, id)
}

// AttachmentByToken returns the attachment of a public token, or ErrNotFound.
// The caller checks TokenExpiresAt.
func (r *Reader) AttachmentByToken(ctx context.Context, token string) (Attachment, error) {
	return r.attachmentWhere(ctx, `a.token = ?`, token)
}

func (r *Reader) attachmentWhere(ctx context.Context, where string, arg any) (Attachment, error) {
	var v attachmentScan
	err := r.q.QueryRowContext(ctx, `SELECT `+attachmentColumns+` FROM attachments a WHERE `+where, arg).Scan(v.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return Attachment{}, fmt.Errorf("attachment: %w", ErrNotFound)
	}
	if err != nil {
		return Attachment{}, fmt.Errorf("attachment: %w", err)
	}
	return *v.attachment(), nil
}

// HashInUse reports whether any attachment points at these bytes, as its
// content or its thumbnail: the media sweep removes only blobs that none does.
func (s *Store) HashInUse(ctx context.Context, hash string) (bool, error) {
	var used bool
	err := s.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM attachments WHERE hash = ?)
		OR EXISTS (SELECT 1 FROM attachments WHERE thumb_hash = ?)`, hash, hash).Scan(&used)
	if err != nil {
		return false, fmt.Errorf("is %s in use: %w", hash, err)
	}
	return used, nil
}

// CheckBusinessSend asks the rules whether they would accept send now,
// without storing anything: uploads use it to refuse before making
// thumbnails. It returns the *session.Refusal the rules give, or nil. The
// answer is advice: AcceptBusinessMessages decides again in its transaction.
func (s *Store) CheckBusinessSend(ctx context.Context, send BusinessSend) error {
	st, _, err := loadState(ctx, s.read, send.ConversationID)
	if err != nil {
		return fmt.Errorf("send to conversation %d: %w", send.ConversationID, err)
	}
	if d := session.Decide(st, s.Rules(), s.opts.Now(), send.Parts, send.ConfirmNewSession); !d.Allowed() {
		return d.Err
	}
	return nil
}

// PendingDownload is a client's media waiting to be fetched.
type PendingDownload struct {
	Attachment
	URL            string // the provider's media URL
	ConversationID int64
}

// PendingDownloads returns client media due for a download attempt at now.
func (s *Store) PendingDownloads(ctx context.Context, now time.Time, limit int) ([]PendingDownload, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+attachmentColumns+`, m.media_url, m.conversation_id
		FROM attachments a JOIN messages m ON m.id = a.message_id
		WHERE a.download_state = 'pending' AND a.next_attempt_at <= ? ORDER BY a.id LIMIT ?`, ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("pending downloads: %w", err)
	}
	defer rows.Close()
	var out []PendingDownload
	for rows.Next() {
		var v attachmentScan
		var p PendingDownload
		if err := rows.Scan(append(v.dest(), &p.URL, &p.ConversationID)...); err != nil {
			return nil, fmt.Errorf("pending downloads: %w", err)
		}
		p.Attachment = *v.attachment()
		out = append(out, p)
	}
	return out, rows.Err()
}

// NextDownloadAt returns when the next pending download falls due; zero when none is pending.
func (s *Store) NextDownloadAt(ctx context.Context) (time.Time, error) {
	var next sql.NullInt64
	err := s.read.QueryRowContext(ctx, `SELECT min(next_attempt_at) FROM attachments WHERE download_state = 'pending'`).Scan(&next)
	if err != nil {
		return time.Time{}, fmt.Errorf("next download: %w", err)
	}
	if !next.Valid {
		return time.Time{}, nil
	}
	return fromMS(next.Int64), nil
}

// DownloadDone records a client's media as stored.
func (s *Store) DownloadDone(ctx context.Context, id int64, a NewAttachment) error {
	return s.updateDownload(ctx, id, `UPDATE attachments SET hash = ?, size = ?, mime = ?, name = coalesce(nullif(?, ''), name),
		width = ?, height = ?, thumb_hash = ?, download_state = 'done', download_error = '' WHERE id = ?`,
		a.Hash, a.Size, a.MIME, a.Name, a.Width, a.Height, a.ThumbHash, id)
}

// DownloadFailed records a failed download: tried again at next, or failed for
// good when final.
func (s *Store) DownloadFailed(ctx context.Context, id int64, reason string, next time.Time, final bool) error {
	state := DownloadPending
	if final {
		state = DownloadFailed
	}
	return s.updateDownload(ctx, id, `UPDATE attachments SET download_state = ?, download_error = ?, attempts = attempts + 1,
		next_attempt_at = ? WHERE id = ?`, state, reason, ms(next), id)
}

// RetryDownload puts a failed download back in the queue (an agent asked).
func (s *Store) RetryDownload(ctx context.Context, id int64) error {
	return s.updateDownload(ctx, id, `UPDATE attachments SET download_state = 'pending', attempts = 0, next_attempt_at = 0
		WHERE id = ? AND download_state = 'failed'`, id)
}

// updateDownload runs one update of an attachment and appends a status event
// on its message, so the thread shows the new state.
func (s *Store) updateDownload(ctx context.Context, id int64, query string, args ...any) error {
	return s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return false, fmt.Errorf("update attachment %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return false, fmt.Errorf("attachment %d: %w", id, ErrNotFound)
		}
		var msgID, convID int64
		err = tx.QueryRowContext(ctx, `SELECT m.id, m.conversation_id FROM attachments a JOIN messages m ON m.id = a.message_id
			WHERE a.id = ?`, id).Scan(&msgID, &convID)
		if err != nil {
			return false, fmt.Errorf("message of attachment %d: %w", id, err)
		}
		return true, appendEvent(ctx, tx, EventStatus, convID, msgID, s.opts.Now())
	})
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// What delivery reports say about a client, kept as flags on the contact.
const (
	FlagNotViberUser     = "not_viber_user"
	FlagBlocked          = "blocked"
	FlagOptedOut         = "opted_out"
	FlagNoSuitableDevice = "no_suitable_device"
)

// MaxFlagNote bounds an admin's note when clearing a flag.
const MaxFlagNote = 500

// ContactFlag is one flag on a contact.
type ContactFlag struct {
	Flag      string    `json:"flag"`
	Text      string    `json:"text"`   // for people: "is not a Viber user"
	Reason    string    `json:"reason"` // the report's reason as Routee gave it
	MessageID int64     `json:"message_id,omitempty"`
	SetAt     time.Time `json:"set_at"`
}

// FlagText describes a flag for people, completing "The client ...".
func FlagText(flag string) string {
	switch flag {
	case FlagNotViberUser:
		return "is not a Viber user"
	case FlagBlocked:
		return "blocked the business"
	case FlagOptedOut:
		return "opted out"
	case FlagNoSuitableDevice:
		return "has no suitable device"
	}
	return flag
}

// ReasonFlags maps a delivery report's reason to the flags it sets: Routee's
// detailed statuses ("Not Viber User", "Opted Out", "Unsupported Equipment")
// and the Viber-level errors other providers surface (SRVC_USER_BLOCKED,
// SRVC_NOT_VIBER_USER, SRVC_NO_SUITABLE_DEVICE).
func ReasonFlags(reason string) []string {
	r := strings.ToLower(reason)
	var out []string
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(r, s) {
				return true
			}
		}
		return false
	}
	if has("not viber user", "not_viber_user", "not a viber user") {
		out = append(out, FlagNotViberUser)
	}
	if has("user_blocked", "user blocked", "blocked the", "blocked by user") {
		out = append(out, FlagBlocked)
	}
	if has("opted out", "opted_out", "opt-out", "optout") {
		out = append(out, FlagOptedOut)
	}
	if has("no_suitable_device", "no suitable device", "unsupported equipment") {
		out = append(out, FlagNoSuitableDevice)
	}
	return out
}

func contactFlags(ctx context.Context, q queryer, contactID int64) ([]ContactFlag, error) {
	rows, err := q.QueryContext(ctx, `SELECT flag, reason, coalesce(message_id, 0), set_at FROM contact_flags
		WHERE contact_id = ? ORDER BY flag`, contactID)
	if err != nil {
		return nil, fmt.Errorf("flags of contact %d: %w", contactID, err)
	}
	defer rows.Close()
	out := []ContactFlag{}
	for rows.Next() {
		var f ContactFlag
		var at int64
		if err := rows.Scan(&f.Flag, &f.Reason, &f.MessageID, &at); err != nil {
			return nil, fmt.Errorf("flags of contact %d: %w", contactID, err)
		}
		f.SetAt, f.Text = fromMS(at), FlagText(f.Flag)
		out = append(out, f)
	}
	return out, rows.Err()
}

// ContactFlags returns a contact's flags, by name.
func (r *Reader) ContactFlags(ctx context.Context, contactID int64) ([]ContactFlag, error) {
	return contactFlags(ctx, r.q, contactID)
}

// ConversationFlags returns the flags of a conversation's contact.
func (r *Reader) ConversationFlags(ctx context.Context, conversationID int64) ([]ContactFlag, error) {
	var contactID int64
	err := r.q.QueryRowContext(ctx, `SELECT contact_id FROM conversations WHERE id = ?`, conversationID).Scan(&contactID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("conversation %d: %w", conversationID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("contact of conversation %d: %w", conversationID, err)
	}
	return contactFlags(ctx, r.q, contactID)
}

// FlagFromReport sets the flags a delivery report's reasons imply on the
// contact of the business message it is about. It returns the flags set
// anew. An unknown message changes nothing.
func (s *Store) FlagFromReport(ctx context.Context, ref MessageRef, reasons ...string) ([]string, error) {
	var flags []string
	for _, r := range reasons {
		for _, f := range ReasonFlags(r) {
			flags = append(flags, f+"\x00"+r)
		}
	}
	if len(flags) == 0 {
		return nil, nil
	}
	var set []string
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		set = set[:0]
		id, convID, _, _, err := findOutbound(ctx, tx, ref)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		now := s.opts.Now()
		for _, fr := range flags {
			flag, reason, _ := strings.Cut(fr, "\x00")
			res, err := tx.ExecContext(ctx, `INSERT INTO contact_flags (contact_id, flag, reason, message_id, set_at)
				SELECT contact_id, ?, ?, ?, ? FROM conversations WHERE id = ?
				ON CONFLICT (contact_id, flag) DO NOTHING`, flag, reason, id, ms(now), convID)
			if err != nil {
				return false, fmt.Errorf("flag the contact of message %d: %w", id, err)
			}
			if n, _ := res.RowsAffected(); n > 0 {
				set = append(set, flag)
			}
		}
		if len(set) == 0 {
			return false, nil
		}
		return true, appendEvent(ctx, tx, EventContact, convID, 0, now)
	})
	return set, err
}

// consentFlags are the flags a client's own message disproves: writing is
// consent (blocked, opted out), and it shows they use Viber (not a Viber
// user). An SQL list, for IN.
const consentFlags = `('blocked', 'opted_out', 'not_viber_user')`

// clearConsentFlags drops the consentFlags of a contact whose message came.
func clearConsentFlags(ctx context.Context, tx queryer, contactID int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM contact_flags WHERE contact_id = ?
		AND flag IN `+consentFlags, contactID); err != nil {
		return fmt.Errorf("clear the consent flags of contact %d: %w", contactID, err)
	}
	return nil
}

type flagClearDetail struct {
	ContactID int64  `json:"contact_id"`
	Flag      string `json:"flag"`
	Reason    string `json:"reason"`
	SetAt     int64  `json:"set_at"`
	Note      string `json:"note"`
}

// ClearFlag removes a contact's flag on an admin's word; the note (why) is
// required and kept in the audit log with the flag's own record.
func (s *Store) ClearFlag(ctx context.Context, agentID, contactID int64, flag, note string) error {
	note = strings.TrimSpace(note)
	if note == "" {
		return &InvalidError{Field: "note", Message: "Say why the flag is cleared (the note is kept in the audit log)."}
	}
	if utf8.RuneCountInString(note) > MaxFlagNote {
		return &InvalidError{Field: "note", Message: fmt.Sprintf("The note has at most %d characters.", MaxFlagNote)}
	}
	return s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		var reason string
		var setAt int64
		err := tx.QueryRowContext(ctx, `DELETE FROM contact_flags WHERE contact_id = ? AND flag = ? RETURNING reason, set_at`,
			contactID, flag).Scan(&reason, &setAt)
		if errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("flag %q of contact %d: %w", flag, contactID, ErrNotFound)
		}
		if err != nil {
			return false, fmt.Errorf("clear flag %q of contact %d: %w", flag, contactID, err)
		}
		var convID int64
		_ = tx.QueryRowContext(ctx, `SELECT id FROM conversations WHERE contact_id = ?`, contactID).Scan(&convID)
		now := s.opts.Now()
		if err := appendAudit(ctx, tx, now, agentID, AuditFlagClear, convID, 0,
			flagClearDetail{ContactID: contactID, Flag: flag, Reason: reason, SetAt: setAt, Note: note}); err != nil {
			return false, err
		}
		if convID == 0 {
			return false, nil
		}
		return true, appendEvent(ctx, tx, EventContact, convID, 0, now)
	})
}

// Consent is a client's last message: when and how they last consented to
// hear from the business (writing is consent).
type Consent struct {
	MessageID int64     `json:"message_id"`
	At        time.Time `json:"at"`
	Channel   string    `json:"channel"` // "viber"
	Kind      string    `json:"kind"`
	Text      string    `json:"text"`
	// ReplyTo is the paid message it answered, when it named one.
	ReplyTo int64 `json:"reply_to,omitempty"`
}

// LastConsent returns the client's last message in a conversation, or
// ErrNotFound when they never wrote.
func (r *Reader) LastConsent(ctx context.Context, conversationID int64) (Consent, error) {
	var c Consent
	var at int64
	err := r.q.QueryRowContext(ctx, `SELECT m.id, m.created_at, m.kind, m.body, coalesce(m.reply_to, 0)
		FROM conversations cv JOIN messages m ON m.id = cv.last_in_id WHERE cv.id = ?`, conversationID).
		Scan(&c.MessageID, &at, &c.Kind, &c.Text, &c.ReplyTo)
	if errors.Is(err, sql.ErrNoRows) {
		return Consent{}, fmt.Errorf("last message of the client of conversation %d: %w", conversationID, ErrNotFound)
	}
	if err != nil {
		return Consent{}, fmt.Errorf("last message of the client of conversation %d: %w", conversationID, err)
	}
	c.At, c.Channel = fromMS(at), "viber"
	return c, nil
}

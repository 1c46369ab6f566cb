package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ContactDetails are what agents keep about a client beside what Viber tells.
type ContactDetails struct {
	Email      string
	ExternalID string   // the client's id elsewhere: an order, a CRM record
	Tags       []string // in the order the agent gave them
	Note       string
	// NameSetByAgent: an agent named the client, and the display name Viber
	// sends no longer replaces it.
	NameSetByAgent bool
	// ConversationID is the client's conversation, 0 when there is none.
	ConversationID int64
	UpdatedAt      time.Time // zero: never edited
}

// Limits of what EditContact accepts, in characters (code points).
const (
	MaxContactName   = 100
	MaxContactEmail  = 254 // RFC 5321's longest path
	MaxContactExtID  = 100
	MaxContactNote   = 2000
	MaxContactTags   = 20
	MaxContactTagLen = 32
)

// ContactChange is an agent's edit of a contact: nil fields stay as they are.
type ContactChange struct {
	Name       *string
	Email      *string
	ExternalID *string
	Tags       *[]string
	Note       *string
}

// contactDetail is the audit detail of a contact edit.
type contactDetail struct {
	ContactID int64           `json:"contact_id"`
	Changes   []settingChange `json:"changes"`
}

// AuditContactEdit records an agent's edit of a contact.
const AuditContactEdit = "contact_edit"

const contactSelect = `
SELECT ct.id, ct.phone, ct.phone_display, ct.name, ct.country, ct.email, ct.external_id, ct.tags, ct.note,
       ct.name_set_by_agent, ct.updated_at, coalesce(c.id, 0)
FROM contacts ct LEFT JOIN conversations c ON c.contact_id = ct.id
WHERE ct.id = ?`

func scanContact(row interface{ Scan(...any) error }) (Contact, error) {
	var (
		ct      Contact
		d       ContactDetails
		tags    string
		updated int64
	)
	if err := row.Scan(&ct.ID, &ct.Phone, &ct.PhoneDisplay, &ct.Name, &ct.Country, &d.Email, &d.ExternalID, &tags, &d.Note,
		&d.NameSetByAgent, &updated, &d.ConversationID); err != nil {
		return Contact{}, err
	}
	if err := json.Unmarshal([]byte(tags), &d.Tags); err != nil {
		return Contact{}, fmt.Errorf("tags of contact %d: %w", ct.ID, err)
	}
	if d.Tags == nil {
		d.Tags = []string{}
	}
	d.UpdatedAt = fromMS(updated)
	ct.Details = &d
	return ct, nil
}

// Contact returns a contact with its details, or ErrNotFound.
func (r *Reader) Contact(ctx context.Context, id int64) (Contact, error) {
	return readContact(ctx, r.q, id)
}

func readContact(ctx context.Context, q queryer, id int64) (Contact, error) {
	ct, err := scanContact(q.QueryRowContext(ctx, contactSelect, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Contact{}, fmt.Errorf("contact %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Contact{}, fmt.Errorf("contact %d: %w", id, err)
	}
	return ct, nil
}

// EditContact applies an agent's change to a contact, in one transaction with
// its audit row (each changed field, old → new) and a contact event on the
// client's conversation, so every page showing its row or panel redraws it.
// A change that changes nothing writes nothing. A name set here is kept
// against the names Viber sends later. A refusal is an *InvalidError naming
// the field; an unknown contact is ErrNotFound.
func (s *Store) EditContact(ctx context.Context, agentID, contactID int64, ch ContactChange) (Contact, error) {
	if err := normaliseContactChange(&ch); err != nil {
		return Contact{}, err
	}
	var out Contact
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		old, err := readContact(ctx, tx, contactID)
		if err != nil {
			return false, err
		}
		next := old
		d := *old.Details
		next.Details = &d
		var changes []settingChange
		set := func(field string, cur *string, v *string) {
			if v != nil && *v != *cur {
				changes = append(changes, settingChange{Field: field, Old: *cur, New: *v})
				*cur = *v
			}
		}
		set("name", &next.Name, ch.Name)
		set("email", &d.Email, ch.Email)
		set("external_id", &d.ExternalID, ch.ExternalID)
		set("note", &d.Note, ch.Note)
		if ch.Tags != nil && !slices.Equal(*ch.Tags, d.Tags) {
			changes = append(changes, settingChange{Field: "tags", Old: d.Tags, New: *ch.Tags})
			d.Tags = *ch.Tags
		}
		if len(changes) == 0 {
			out = old
			return false, nil
		}
		if ch.Name != nil && next.Name != old.Name {
			d.NameSetByAgent = true
		}
		now := s.opts.Now()
		tags, err := json.Marshal(d.Tags)
		if err != nil {
			return false, fmt.Errorf("edit contact %d: %w", contactID, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE contacts SET name = ?, email = ?, external_id = ?, tags = ?, note = ?,
			name_set_by_agent = ?, updated_at = ? WHERE id = ?`,
			next.Name, d.Email, d.ExternalID, string(tags), d.Note, d.NameSetByAgent, ms(now), contactID); err != nil {
			return false, fmt.Errorf("edit contact %d: %w", contactID, err)
		}
		d.UpdatedAt = fromMS(ms(now))
		if err := appendAudit(ctx, tx, now, agentID, AuditContactEdit, d.ConversationID, 0,
			contactDetail{ContactID: contactID, Changes: changes}); err != nil {
			return false, err
		}
		out = next
		if d.ConversationID == 0 {
			return false, nil // no page shows a contact without a conversation
		}
		return true, appendEvent(ctx, tx, EventContact, d.ConversationID, 0, now)
	})
	if err != nil {
		return Contact{}, fmt.Errorf("edit contact %d: %w", contactID, err)
	}
	return out, nil
}

// normaliseContactChange trims what an agent typed and refuses what the
// contact may not hold, naming the field.
func normaliseContactChange(ch *ContactChange) error {
	line := func(field, label string, v *string, max int, required bool) error {
		if v == nil {
			return nil
		}
		*v = strings.TrimSpace(*v)
		n := utf8.RuneCountInString(*v)
		switch {
		case !utf8.ValidString(*v):
			return &InvalidError{Field: field, Message: capitalise(label) + " is not valid UTF-8 text."}
		case required && n == 0:
			return &InvalidError{Field: field, Message: capitalise(label) + " cannot be blank."}
		case n > max:
			return &InvalidError{Field: field, Message: fmt.Sprintf("%s has %d characters; at most %d.", capitalise(label), n, max)}
		case strings.ContainsFunc(*v, unicode.IsControl):
			return &InvalidError{Field: field, Message: capitalise(label) + " must be one line, without control characters."}
		}
		return nil
	}
	if err := line("name", "the name", ch.Name, MaxContactName, true); err != nil {
		return err
	}
	if err := line("email", "the email", ch.Email, MaxContactEmail, false); err != nil {
		return err
	}
	if ch.Email != nil && *ch.Email != "" {
		a, err := mail.ParseAddress(*ch.Email)
		if err != nil || a.Address != *ch.Email || !strings.Contains(a.Address, "@") {
			return &InvalidError{Field: "email", Message: fmt.Sprintf("%q is not an email address such as name@example.com.", *ch.Email)}
		}
	}
	if err := line("external_id", "the external id", ch.ExternalID, MaxContactExtID, false); err != nil {
		return err
	}
	if ch.Note != nil {
		*ch.Note = strings.TrimSpace(strings.ReplaceAll(*ch.Note, "\r\n", "\n"))
		n := utf8.RuneCountInString(*ch.Note)
		if !utf8.ValidString(*ch.Note) {
			return &InvalidError{Field: "note", Message: "The note is not valid UTF-8 text."}
		}
		if n > MaxContactNote {
			return &InvalidError{Field: "note", Message: fmt.Sprintf("The note has %d characters; at most %d.", n, MaxContactNote)}
		}
	}
	if ch.Tags != nil {
		tags := make([]string, 0, len(*ch.Tags))
		for _, t := range *ch.Tags {
			t = strings.TrimSpace(t)
			n := utf8.RuneCountInString(t)
			switch {
			case n == 0:
				return &InvalidError{Field: "tags", Message: "A tag cannot be blank."}
			case !utf8.ValidString(t):
				return &InvalidError{Field: "tags", Message: "A tag is not valid UTF-8 text."}
			case n > MaxContactTagLen:
				return &InvalidError{Field: "tags", Message: fmt.Sprintf("The tag %q has %d characters; at most %d.", t, n, MaxContactTagLen)}
			case strings.Contains(t, ","):
				return &InvalidError{Field: "tags", Message: fmt.Sprintf("The tag %q has a comma; commas separate tags.", t)}
			case strings.ContainsFunc(t, unicode.IsControl):
				return &InvalidError{Field: "tags", Message: fmt.Sprintf("The tag %q has a control character.", t)}
			}
			if !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
		if len(tags) > MaxContactTags {
			return &InvalidError{Field: "tags", Message: fmt.Sprintf("%d tags; a contact has at most %d.", len(tags), MaxContactTags)}
		}
		*ch.Tags = tags
	}
	return nil
}

// contactSummary says what a contact edit changed; the note by its length.
func contactSummary(e AuditEntry) string {
	var d contactDetail
	if json.Unmarshal([]byte(e.Detail), &d) != nil {
		return e.Detail
	}
	parts := make([]string, 0, len(d.Changes))
	for _, c := range d.Changes {
		switch c.Field {
		case "note":
			parts = append(parts, "note changed")
		case "tags":
			parts = append(parts, "tags: "+tagList(c.Old)+" → "+tagList(c.New))
		default:
			parts = append(parts, strings.ReplaceAll(c.Field, "_", " ")+": "+changeValue(c.Field, c.Old)+" → "+changeValue(c.Field, c.New))
		}
	}
	return fmt.Sprintf("Edited contact %d: %s.", d.ContactID, strings.Join(parts, "; "))
}

func tagList(v any) string {
	l, _ := v.([]any)
	if len(l) == 0 {
		return "none"
	}
	s := make([]string, 0, len(l))
	for _, t := range l {
		s = append(s, fmt.Sprint(t))
	}
	return strings.Join(s, ", ")
}

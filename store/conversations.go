package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	phonefmt "sessiondesk/phone"
	"sessiondesk/session"
)

// Contact is a Viber user who wrote to the business.
type Contact struct {
	ID    int64
	Phone string // E.164
	// PhoneDisplay is Phone as people write it, formatted once when stored.
	PhoneDisplay string
	Name         string
	Country      string // ISO 3166 region, "" when unknown
	// Flags are what delivery reports said about the client (FlagNotViberUser,
	// ...), as the list shows them; nil for none.
	Flags []string
	// Details are what agents keep about the client; nil where they were not
	// read (the list's rows never need them).
	Details *ContactDetails
}

// Conversation is a contact's thread with its session state.
type Conversation struct {
	ID      int64
	Contact Contact
	// Last is the newest message, for the list's preview; nil when there is none.
	Last  *Message
	State session.State
	// Status is open, pending, snoozed or resolved (ConvOpen...); SnoozedUntil
	// is when a snoozed one reopens, zero otherwise.
	Status       string
	SnoozedUntil time.Time
	// Assignee is the agent the conversation is assigned to; nil when none.
	Assignee *AgentRef
	// LastInID is the client's newest message (0: the client never wrote); an
	// agent whose read mark is below it has something unread.
	LastInID int64
	// SessionEndsAt is when the latest session ends (zero: none yet): with
	// State.Unanswered it places the conversation in the views (views.go).
	SessionEndsAt time.Time
}

// sessionColumns reads one session.Session: the session row, with the counts
// that the triggers of migration 00010 keep beside it in the same transaction
// as every message change (so nothing is counted on read, and no code path can
// leave a stale counter behind). Whether the client wrote last is whether the
// session's newest client message is newer than its newest counted business
// message, both kept by the triggers of 00026: a comparison of two columns,
// where a probe of the session's messages cost every list row a walk of
// messages_by_session. It expects the session as s.
const sessionColumns = `
	s.id, s.number, s.started_at, s.ends_at, s.received_at, coalesce(s.used, 0), coalesce(s.media_used, 0),
	s.rate_text, s.rate_media, s.currency,
	s.rate_message, coalesce(s.country, ''), coalesce(s.billed_at, 0),
	coalesce(s.reported_cost, 0), coalesce(s.reported_count, 0), coalesce(s.reported_foreign, 0),
	coalesce(s.last_in_id > s.last_out_id, 0)`

// stateColumns reads a conversation's session.State: its latest session
// (sessionColumns) and the counted business messages since the client last
// wrote (kept as c.unanswered). It expects the conversation as c and its
// latest session as s.
const stateColumns = sessionColumns + `, c.unanswered`

const latestSessionJoin = `
	LEFT JOIN sessions s ON s.id = c.latest_session_id`

// sessionScan receives sessionColumns.
type sessionScan struct {
	sessionID                             sql.NullInt64
	number, startedAt, endsAt, receivedAt sql.NullInt64
	used, media                           int64
	rateText, rateMedia                   sql.NullFloat64
	currency                              sql.NullString
	rateMessage                           sql.NullFloat64
	country                               string
	billedAt                              int64
	reported                              session.Reported
	clientLast                            bool
}

func (v *sessionScan) dest() []any {
	return []any{&v.sessionID, &v.number, &v.startedAt, &v.endsAt, &v.receivedAt, &v.used, &v.media,
		&v.rateText, &v.rateMedia, &v.currency, &v.rateMessage, &v.country, &v.billedAt,
		&v.reported.Amount, &v.reported.Priced, &v.reported.Foreign, &v.clientLast}
}

// session returns the scanned session, nil when there was none.
func (v *sessionScan) session() *session.Session {
	if !v.sessionID.Valid {
		return nil
	}
	out := &session.Session{
		Number:     int(v.number.Int64),
		StartedAt:  fromMS(v.startedAt.Int64),
		EndsAt:     fromMS(v.endsAt.Int64),
		ReceivedAt: fromMS(v.receivedAt.Int64),
		Used:       int(v.used),
		Media:      v.media > 0,
		ClientLast: v.clientLast,
		Country:    v.country,
		Reported:   v.reported,
	}
	if v.billedAt != 0 {
		out.BilledAt = fromMS(v.billedAt)
	}
	if v.rateText.Valid {
		out.Rates = session.Rates{Text: v.rateText.Float64, Media: v.rateMedia.Float64, Currency: v.currency.String,
			PerMessage: v.rateMessage.Float64}
	}
	return out
}

// stateScan receives stateColumns.
type stateScan struct {
	sessionScan
	unanswered int64
}

func (v *stateScan) dest() []any { return append(v.sessionScan.dest(), &v.unanswered) }

func (v *stateScan) state() session.State {
	return session.State{Current: v.session(), Unanswered: int(v.unanswered)}
}

// Sessions returns up to limit sessions of a conversation, the latest first:
// its session history, with what each used and cost (S7) and whether it ended
// unanswered (case 9).
func (r *Reader) Sessions(ctx context.Context, conversationID int64, limit int) ([]session.Session, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions s
		WHERE s.conversation_id = ? ORDER BY s.number DESC LIMIT ?`, conversationID, limit)
	if err != nil {
		return nil, fmt.Errorf("sessions of conversation %d: %w", conversationID, err)
	}
	defer rows.Close()
	var out []session.Session
	for rows.Next() {
		var v sessionScan
		if err := rows.Scan(v.dest()...); err != nil {
			return nil, fmt.Errorf("sessions of conversation %d: %w", conversationID, err)
		}
		out = append(out, *v.session())
	}
	return out, rows.Err()
}

// conversationSelect reads a conversation with what its list row, its header
// and the API show. The newest message's session number comes from the
// latest session, which it almost always belongs to: SQLite evaluates a
// CASE's branches lazily, so only a message of an older session reads its
// own (a join read it for every row: a b-tree descent a row of every page).
const conversationSelect = `
SELECT c.id, ct.id, ct.phone, ct.phone_display, ct.name, ct.country,
       coalesce((SELECT group_concat(flag) FROM contact_flags WHERE contact_id = ct.id), ''),
       m.id, m.direction, m.kind, m.body, m.status, m.created_at, m.sent_at,
       CASE WHEN m.session_id = s.id THEN s.number
            ELSE coalesce((SELECT number FROM sessions WHERE id = m.session_id), 0) END,
       c.status, c.snoozed_until, coalesce(asg.id, 0), coalesce(asg.login, ''), coalesce(asg.name, ''),
       c.last_in_id, c.session_ends_at,
` + stateColumns + `
FROM conversations c
JOIN contacts ct ON ct.id = c.contact_id
LEFT JOIN messages m ON m.id = c.last_message_id
LEFT JOIN agents asg ON asg.id = c.assignee_id` + latestSessionJoin

// conversationScan receives conversationSelect's columns, after any leading
// columns of the query's own. One serves every row of a query: its
// destinations are bound once, so a row of a 50-row list costs no allocation
// for them (they were a third of an inbox page's garbage).
type conversationScan struct {
	c                       Conversation // the scanned columns; the rest is derived per row
	lastID                  sql.NullInt64
	dir, kind, body, status sql.NullString
	lastAt, lastSentAt      sql.NullInt64
	lastSession             int
	snoozedUntil            int64
	assignee                AgentRef
	sessionEndsAt           int64
	st                      stateScan
	flags                   string
	dest                    []any
}

// newConversationScan binds a scanner; leading receives the query's columns
// before conversationSelect's.
func newConversationScan(leading ...any) *conversationScan {
	v := &conversationScan{}
	v.dest = append(append(leading, &v.c.ID, &v.c.Contact.ID, &v.c.Contact.Phone, &v.c.Contact.PhoneDisplay,
		&v.c.Contact.Name, &v.c.Contact.Country, &v.flags, &v.lastID, &v.dir, &v.kind, &v.body, &v.status,
		&v.lastAt, &v.lastSentAt, &v.lastSession, &v.c.Status, &v.snoozedUntil, &v.assignee.ID,
		&v.assignee.Login, &v.assignee.Name, &v.c.LastInID, &v.sessionEndsAt), v.st.dest()...)
	return v
}

// scan reads one row. Every destination is written by every row, and the
// derived fields are set on the returned copy, so nothing leaks between rows.
func (v *conversationScan) scan(row interface{ Scan(...any) error }) (Conversation, error) {
	if err := row.Scan(v.dest...); err != nil {
		return Conversation{}, err
	}
	c := v.c
	if v.lastID.Valid {
		c.Last = &Message{ID: v.lastID.Int64, ConversationID: c.ID, Direction: v.dir.String,
			Kind: session.Kind(v.kind.String), Body: v.body.String, Status: v.status.String, CreatedAt: fromMS(v.lastAt.Int64),
			SentAt: fromMS(v.lastSentAt.Int64), SessionNumber: v.lastSession}
	}
	if v.flags != "" {
		c.Contact.Flags = strings.Split(v.flags, ",")
	}
	c.SnoozedUntil = fromMS(v.snoozedUntil)
	if v.sessionEndsAt > 0 {
		c.SessionEndsAt = fromMS(v.sessionEndsAt)
	}
	if v.assignee.ID != 0 {
		a := v.assignee
		c.Assignee = &a
	}
	c.State = v.st.state()
	return c, nil
}

// scanConversation reads one row of conversationSelect.
func scanConversation(row interface{ Scan(...any) error }) (Conversation, error) {
	return newConversationScan().scan(row)
}

// Conversations returns up to limit conversations, the latest activity first.
func (r *Reader) Conversations(ctx context.Context, limit int) ([]Conversation, error) {
	rows, err := r.q.QueryContext(ctx, conversationSelect+` ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	defer rows.Close()
	var out []Conversation
	sc := newConversationScan()
	for rows.Next() {
		c, err := sc.scan(rows)
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
		SELECT ct.id, ct.phone, ct.phone_display, ct.name, ct.country FROM contacts ct
		LEFT JOIN conversations c ON c.contact_id = ct.id
		ORDER BY coalesce(c.last_activity_at, 0) DESC, ct.id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	defer rows.Close()
	var out []Contact
	for rows.Next() {
		var ct Contact
		if err := rows.Scan(&ct.ID, &ct.Phone, &ct.PhoneDisplay, &ct.Name, &ct.Country); err != nil {
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

// phoneDisplayBatch is how many contacts fillPhoneDisplays formats in one
// transaction.
const phoneDisplayBatch = 1000

// fillPhoneDisplays completes migration 00016: contacts stored before it get
// their formatted number, a thousand to a transaction. Afterwards every
// contact has it (upsertContact sets it), so once a pass finds fewer than a
// thousand it is recorded as done (00048) and later starts skip the scan.
func (s *Store) fillPhoneDisplays(ctx context.Context) error {
	for {
		n := -1
		err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
			if done, err := upgradeDone(ctx, tx, "fill_phone_displays"); done || err != nil {
				return false, err
			}
			rows, err := tx.QueryContext(ctx, `SELECT id, phone FROM contacts WHERE phone_display = '' LIMIT ?`, phoneDisplayBatch)
			if err != nil {
				return false, err
			}
			type contact struct {
				id    int64
				phone string
			}
			var todo []contact
			for rows.Next() {
				var c contact
				if err := rows.Scan(&c.id, &c.phone); err != nil {
					rows.Close()
					return false, err
				}
				todo = append(todo, c)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return false, err
			}
			for _, c := range todo {
				// A number that cannot be formatted shows as stored.
				if _, err := tx.ExecContext(ctx, `UPDATE contacts SET phone_display = ? WHERE id = ?`,
					phonefmt.Display(c.phone), c.id); err != nil {
					return false, err
				}
			}
			n = len(todo)
			if n < phoneDisplayBatch {
				return false, markUpgradeDone(ctx, tx, "fill_phone_displays", s.opts.Now())
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("format the numbers of contacts stored before 00016: %w", err)
		}
		if n < phoneDisplayBatch {
			return nil
		}
	}
}

// upsertContact returns the contact with this phone, creating it; a non-empty
// name replaces the stored one (Viber users change their display names),
// unless an agent named the client (EditContact): theirs stays.
func upsertContact(ctx context.Context, tx queryer, phone, name, country string, now time.Time) (int64, error) {
	var known storedContact
	err := tx.QueryRowContext(ctx, `SELECT id, name, country, name_set_by_agent FROM contacts WHERE phone = ?`,
		phone).Scan(&known.id, &known.name, &known.country, &known.nameSetByAgent)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return saveContact(ctx, tx, nil, phone, name, country, now)
	case err != nil:
		return 0, fmt.Errorf("save contact %s: %w", phone, err)
	}
	return saveContact(ctx, tx, &known, phone, name, country, now)
}

// storedContact is what saveContact compares a client's message with.
type storedContact struct {
	id             int64
	name, country  string
	nameSetByAgent bool
}

// saveContact stores what a client's message says of its contact: known, as
// read in this transaction, or nil for a new contact. It returns the id.
func saveContact(ctx context.Context, tx queryer, known *storedContact, phone, name, country string, now time.Time) (int64, error) {
	if name == "" {
		name = phone
	}
	// A known client is nearly every message: the formatted number is worked
	// out only for a new one, since parsing the number again for each message
	// took a twentieth of a client message's CPU. Its row is written only when
	// the name or the country changes: rewriting it unchanged cost every
	// message one more page in the WAL.
	if known != nil {
		newName, newCountry := known.name, known.country
		if name != phone && !known.nameSetByAgent { // a bare number never replaces a name
			newName = name
		}
		if country != "" {
			newCountry = country
		}
		if newName == known.name && newCountry == known.country {
			return known.id, nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE contacts SET name = ?, country = ? WHERE id = ?`,
			newName, newCountry, known.id); err != nil {
			return 0, fmt.Errorf("save contact %s: %w", phone, err)
		}
		return known.id, nil
	}
	var id int64
	err := tx.QueryRowContext(ctx, `
		INSERT INTO contacts (phone, phone_display, name, country, created_at) VALUES (?, ?, ?, ?, ?)
		RETURNING id`, phone, phonefmt.Display(phone), name, country, ms(now)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("save contact %s: %w", phone, err)
	}
	return id, nil
}

// knownClient is what a client's message reads of its client before it is
// stored, in one query (clientByPhone): the contact, its conversation, the
// conversation's session state, and whether a consent flag is set that the
// message clears.
type knownClient struct {
	contact        *storedContact // nil for a new client
	conversationID int64          // 0 when the contact has no conversation yet
	state          session.State
	sessionID      int64 // the latest session, 0 when none
	consentFlagged bool
}

// clientByPhone reads the client with this phone; a new one has no contact.
// A known client with a conversation is nearly every message: one query
// instead of the four statements (contact, conversation, state, flags) each
// costing the writer a round trip through the driver.
func clientByPhone(ctx context.Context, tx queryer, phone string) (knownClient, error) {
	var (
		k       knownClient
		contact storedContact
		st      stateScan
		conv    sql.NullInt64
	)
	dest := append([]any{&contact.id, &contact.name, &contact.country, &contact.nameSetByAgent,
		&k.consentFlagged, &conv}, st.dest()...)
	err := tx.QueryRowContext(ctx, `SELECT ct.id, ct.name, ct.country, ct.name_set_by_agent,
		       EXISTS (SELECT 1 FROM contact_flags WHERE contact_id = ct.id AND flag IN `+consentFlags+`),
		       c.id, `+sessionColumns+`, coalesce(c.unanswered, 0)
		FROM contacts ct
		LEFT JOIN conversations c ON c.contact_id = ct.id`+latestSessionJoin+`
		WHERE ct.phone = ?`, phone).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return knownClient{}, nil
	}
	if err != nil {
		return knownClient{}, fmt.Errorf("client %s: %w", phone, err)
	}
	k.contact, k.conversationID = &contact, conv.Int64
	k.state, k.sessionID = st.state(), st.sessionID.Int64
	return k, nil
}

// insertConversation creates the conversation of a contact that has none
// (clientByPhone found none).
func insertConversation(ctx context.Context, tx queryer, contactID int64, now time.Time) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO conversations (contact_id, created_at) VALUES (?, ?) RETURNING id`,
		contactID, ms(now)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("save conversation of contact %d: %w", contactID, err)
	}
	return id, nil
}

package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"sessiondesk/session"
)

// Directions of a message.
const (
	Inbound  = "in"  // from the client
	Outbound = "out" // a business message from an agent
)

// Statuses of a message. Inbound messages are StatusReceived; business messages
// move forward through the others and never back (see statusRank).
const (
	StatusReceived    = "received"
	StatusQueued      = "queued"
	StatusSent        = "sent"
	StatusUnconfirmed = "unconfirmed" // the provider may or may not have it (unconfirmed.go); it counts
	StatusDelivered   = "delivered"
	StatusSeen        = "seen"
	StatusFailed      = "failed"
	StatusUndelivered = "undelivered"
	StatusExpired     = "expired"
)

// statusRank orders business message statuses. A status update with a lower rank
// than the stored one is stale (callbacks arrive out of order) and is ignored.
// A failure outranks sent but not delivered: a message the phone received was
// delivered whatever a late failure report says.
var statusRank = map[string]int{
	StatusQueued:      0,
	StatusUnconfirmed: 0,
	StatusSent:        1,
	StatusFailed:      2,
	StatusUndelivered: 2,
	StatusExpired:     2,
	StatusDelivered:   3,
	StatusSeen:        4,
}

// ValidStatus reports whether status is a business message status.
func ValidStatus(status string) bool { _, ok := statusRank[status]; return ok }

// Message is one message of a conversation.
type Message struct {
	ID             int64
	ConversationID int64
	SessionNumber  int
	Direction      string // Inbound or Outbound
	Kind           session.Kind
	Body           string
	Status         string
	StatusReason   string
	StatusAt       time.Time
	Counted        bool // counts for the session rules (S6)
	AgentID        int64
	AgentName      string
	SentAt         time.Time // the client's timestamp (inbound) or the acceptance time
	CreatedAt      time.Time
	ProviderID     string
	// FirstOfSession reports the first message of its session, where a thread
	// shows a divider.
	FirstOfSession bool
	// Attempts and LastError tell a queued message's failed tries to reach the provider.
	Attempts  int
	LastError string
	// NextAttemptAt is when the outbox may try a queued message again.
	NextAttemptAt time.Time
	// MediaURL and FileName locate an image's or file's bytes: for a client's,
	// the provider's URL as announced; for a business message, the public URL
	// the provider fetches it from (set by the outbox).
	MediaURL, FileName string
	// Attachment is the image or file of such a message; nil for text.
	Attachment *Attachment
	// RetriedBy is the message "Send again" sent for this failed one; 0 while
	// it was not sent again. A failed message is sent again at most once.
	RetriedBy int64
	// Paid is set for a paid message (outside a session, billed per message);
	// nil for a session message.
	Paid *Paid
	// ReplyTo is the business message a client's message answers (Routee's
	// referenceTrackingId); 0 when it names none.
	ReplyTo int64
}

const messageSelect = `
SELECT m.id, m.conversation_id, s.number, m.direction, m.kind, m.body, m.status, m.status_reason,
       m.status_at, m.counted, coalesce(m.agent_id, 0), coalesce(ag.name, ''), m.sent_at, m.created_at,
       coalesce(m.provider_id, ''),
       m.id = (SELECT min(id) FROM messages WHERE session_id = m.session_id),
       m.attempts, m.last_error, m.next_attempt_at, m.media_url, m.file_name,
       coalesce((SELECT id FROM messages r WHERE r.retry_of = m.id), 0),
       ` + attachmentColumns + `, ` + paidColumns + `
FROM messages m
JOIN sessions s ON s.id = m.session_id
LEFT JOIN agents ag ON ag.id = m.agent_id
LEFT JOIN attachments a ON a.message_id = m.id
LEFT JOIN paid_messages p ON p.message_id = m.id`

// messageScan receives messageSelect's columns, then any extra columns. One
// serves every row of a query, like conversationScan: its destinations are
// bound once, and the derived fields are set on each row's copy.
type messageScan struct {
	m                                      Message // the scanned columns
	kind                                   string
	statusAt, sentAt, created, nextAttempt int64
	att                                    attachmentScan
	paid                                   paidScan
	dest                                   []any
}

func newMessageScan(extra ...any) *messageScan {
	v := &messageScan{}
	m := &v.m
	v.dest = append([]any{&m.ID, &m.ConversationID, &m.SessionNumber, &m.Direction, &v.kind, &m.Body, &m.Status,
		&m.StatusReason, &v.statusAt, &m.Counted, &m.AgentID, &m.AgentName, &v.sentAt, &v.created, &m.ProviderID,
		&m.FirstOfSession, &m.Attempts, &m.LastError, &v.nextAttempt, &m.MediaURL, &m.FileName, &m.RetriedBy}, v.att.dest()...)
	v.dest = append(v.dest, v.paid.dest()...)
	v.dest = append(v.dest, extra...)
	return v
}

// scan reads one row.
func (v *messageScan) scan(row interface{ Scan(...any) error }) (Message, error) {
	err := row.Scan(v.dest...)
	m := v.m
	m.Kind = session.Kind(v.kind)
	m.StatusAt, m.SentAt, m.CreatedAt = fromMS(v.statusAt), fromMS(v.sentAt), fromMS(v.created)
	m.NextAttemptAt = fromMS(v.nextAttempt)
	m.Attachment = v.att.attachment()
	m.Paid, m.ReplyTo = v.paid.paid(), v.paid.replyTo
	return m, err
}

// scanMessage reads the columns of messageSelect, then any extra columns into extra.
func scanMessage(row interface{ Scan(...any) error }, extra ...any) (Message, error) {
	return newMessageScan(extra...).scan(row)
}

// Messages returns the last limit messages of a conversation, oldest first.
func (r *Reader) Messages(ctx context.Context, conversationID int64, limit int) ([]Message, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT * FROM (`+messageSelect+`
		WHERE m.conversation_id = ? ORDER BY m.id DESC LIMIT ?) ORDER BY 1`, conversationID, limit)
	if err != nil {
		return nil, fmt.Errorf("messages of conversation %d: %w", conversationID, err)
	}
	defer rows.Close()
	var out []Message
	sc := newMessageScan()
	for rows.Next() {
		m, err := sc.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("messages of conversation %d: %w", conversationID, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// findMessage reads the one message matching where (a condition on m, with
// one argument); ErrNotFound when none does. what names it in errors.
func findMessage(ctx context.Context, q queryer, what, where string, arg any) (Message, error) {
	m, err := scanMessage(q.QueryRowContext(ctx, messageSelect+` WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return Message{}, fmt.Errorf("%s: %w", what, err)
	}
	return m, nil
}

// messageByID reads one message by id.
func messageByID(ctx context.Context, q queryer, id int64) (Message, error) {
	return findMessage(ctx, q, fmt.Sprintf("message %d", id), `m.id = ?`, id)
}

// Message returns one message, or ErrNotFound.
func (r *Reader) Message(ctx context.Context, id int64) (Message, error) {
	return messageByID(ctx, r.q, id)
}

// MessageByDedupeKey returns the inbound message stored for a delivery key, or ErrNotFound.
func (r *Reader) MessageByDedupeKey(ctx context.Context, key string) (Message, error) {
	return messageByDedupeKey(ctx, r.q, key)
}

func messageByDedupeKey(ctx context.Context, q queryer, key string) (Message, error) {
	return findMessage(ctx, q, fmt.Sprintf("delivery %q", key), `m.dedupe_key = ?`, key)
}

// ClientMessage is a message a client sent, as a channel received it.
type ClientMessage struct {
	Phone   string // E.164, already normalised
	Name    string // the client's display name, "" when the provider gives none
	Country string
	Kind    session.Kind
	Text    string // the message, or an attachment's caption
	// MediaURL and FileName are an image's or file's, for those kinds.
	MediaURL, FileName string
	// SentAt is the provider's timestamp; zero when it was missing or unparsable.
	SentAt time.Time
	// DedupeKey identifies this delivery: the same key twice is stored once.
	// "" disables the check. DedupeAlso are more keys under which the same
	// delivery may have been stored before; it is stored under DedupeKey.
	DedupeKey  string
	DedupeAlso []string
	// ReplyToProviderID is the provider's id of the business message this
	// one answers (Routee's referenceTrackingId); "" when it names none.
	ReplyToProviderID string
}

// Received is the outcome of ReceiveClientMessage.
type Received struct {
	Message       Message
	Duplicate     bool // the delivery was stored before; nothing changed
	SessionOpened bool // the message opened a new session (S1)
}

// storedClientMessage is the client message ReceiveClientMessage just stored,
// as messageByID would read it back (a test holds the two equal): built from
// what the transaction wrote, since reading it back with its session, agent,
// attachment and retry took a sixth of the writer's time per message. It is
// the first of its session exactly when it opened the session: a session is
// only ever inserted with the message that opens it.
func storedClientMessage(in ClientMessage, id, conversationID int64, sessionNumber int, opened bool,
	attachmentID, replyTo int64, at, now time.Time) Message {
	stored := fromMS(ms(now)) // as the columns keep it: milliseconds, UTC
	m := Message{
		ID: id, ConversationID: conversationID, SessionNumber: sessionNumber, Direction: Inbound,
		Kind: in.Kind, Body: in.Text, Status: StatusReceived, StatusAt: stored,
		SentAt: fromMS(ms(at)), CreatedAt: stored, FirstOfSession: opened,
		MediaURL: in.MediaURL, FileName: in.FileName, ReplyTo: replyTo,
	}
	if attachmentID != 0 {
		m.Attachment = &Attachment{ID: attachmentID, MessageID: id, NewAttachment: NewAttachment{Name: in.FileName},
			DownloadState: "pending"}
	}
	return m
}

// ReceiveClientMessage stores a client's message in one transaction: the contact
// and conversation (created on first sight), the session it opens or falls in
// (S1, S2), the message itself, which resets the unanswered count (S4), and the
// event that shows it.
func (s *Store) ReceiveClientMessage(ctx context.Context, in ClientMessage) (Received, error) {
	if in.Phone == "" {
		return Received{}, &InvalidError{Field: "from", Message: "the client's phone number is missing"}
	}
	if !in.Kind.Valid() {
		return Received{}, &InvalidError{Field: "kind", Message: fmt.Sprintf("unknown message kind %q", in.Kind)}
	}
	if in.Kind == session.Text && strings.TrimSpace(in.Text) == "" {
		return Received{}, &InvalidError{Field: "text", Message: "the message is empty"}
	}
	if in.Kind != session.Text && in.MediaURL == "" {
		return Received{}, &InvalidError{Field: "media", Message: "an image or file message needs its media URL"}
	}
	var out Received
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		now := s.opts.Now()
		if m, found, err := findDelivery(ctx, tx, in); err != nil || found {
			out = Received{Message: m, Duplicate: found}
			return false, err
		}
		client, err := clientByPhone(ctx, tx, in.Phone)
		if err != nil {
			return false, err
		}
		contactID, err := saveContact(ctx, tx, client.contact, in.Phone, in.Name, in.Country, now)
		if err != nil {
			return false, err
		}
		convID, st, sessionID := client.conversationID, client.state, client.sessionID
		if convID == 0 { // a new client: a conversation without a session
			if convID, err = insertConversation(ctx, tx, contactID, now); err != nil {
				return false, err
			}
		}
		rules := s.Rules()
		at := session.ClientTime(rules, in.SentAt, now)
		next, opened := session.ClientWrote(st, rules, at, now)
		if opened {
			if sessionID, err = insertSession(ctx, tx, convID, *next.Current, "client"); err != nil {
				return false, err
			}
		}
		var dedupe any
		if in.DedupeKey != "" {
			dedupe = in.DedupeKey
		}
		// The message it answers, when it names one of this client's.
		var replyTo int64
		if in.ReplyToProviderID != "" {
			err := tx.QueryRowContext(ctx, `SELECT id FROM messages WHERE provider_id = ? AND direction = 'out'
				AND conversation_id = ?`, in.ReplyToProviderID, convID).Scan(&replyTo)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return false, fmt.Errorf("the message %q answers: %w", in.ReplyToProviderID, err)
			}
		}
		res, err := tx.ExecContext(ctx, `
			INSERT INTO messages (conversation_id, session_id, direction, kind, body, status, status_at,
			                      counted, sent_at, created_at, dedupe_key, media_url, file_name, reply_to)
			VALUES (?, ?, 'in', ?, ?, 'received', ?, 0, ?, ?, ?, ?, ?, ?)`,
			convID, sessionID, string(in.Kind), in.Text, ms(now), ms(at), ms(now), dedupe, in.MediaURL, in.FileName,
			sql.NullInt64{Int64: replyTo, Valid: replyTo != 0})
		if err != nil {
			return false, fmt.Errorf("save client message: %w", err)
		}
		msgID, _ := res.LastInsertId()
		var attachmentID int64
		if in.MediaURL != "" {
			// Fetched by the downloader right after the commit: the provider's URL does not live long.
			res, err := tx.ExecContext(ctx, `INSERT INTO attachments (message_id, name, download_state, created_at)
				VALUES (?, ?, 'pending', ?)`, msgID, in.FileName, ms(now))
			if err != nil {
				return false, fmt.Errorf("save pending media of message %d: %w", msgID, err)
			}
			attachmentID, _ = res.LastInsertId()
		}
		// The insert's trigger (messages_count_insert) recorded it as the
		// conversation's newest message and moved its activity.
		if client.consentFlagged {
			if err := clearConsentFlags(ctx, tx, contactID); err != nil {
				return false, err
			}
		}
		if err := appendEvent(ctx, tx, EventMessage, convID, msgID, now); err != nil {
			return false, err
		}
		// A new session (a new client, or a client back after the window) is
		// new work: the round robin, when on, gives it to an online agent.
		if opened {
			if err := s.autoAssign(ctx, tx, convID, now); err != nil {
				return false, err
			}
		}
		out = Received{SessionOpened: opened, Message: storedClientMessage(in, msgID, convID, next.Current.Number,
			opened, attachmentID, replyTo, at, now)}
		return true, nil
	})
	if err != nil {
		return Received{}, fmt.Errorf("receive message from %s: %w", in.Phone, err)
	}
	return out, nil
}

// BusinessSend is what an agent asks to send in one go.
type BusinessSend struct {
	ConversationID int64
	AgentID        int64
	// Parts go out as separate messages in this order (S5): callers put the text
	// first, then the attachments in the order they were attached.
	Parts []session.Part
	// Attachments holds, for each image or file part at the same index, its
	// checked bytes in the media store; nil entries (or none) for text.
	Attachments       []*NewAttachment
	ConfirmNewSession bool
	// retryOf is the failed message a "Send again" repeats; 0 for a new send.
	retryOf int64
}

// AcceptBusinessMessages checks a send against the rules and, when they allow it,
// stores every part as a queued message that counts at once (S6), opening a new
// session where a rollover begins one (S3). The check and the reservation are one
// BEGIN IMMEDIATE transaction (S9). A refusal is returned as a *session.Refusal
// and stores nothing.
func (s *Store) AcceptBusinessMessages(ctx context.Context, send BusinessSend) ([]Message, error) {
	var (
		out      []Message
		accepted Accepted
	)
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		var err error
		out, accepted, err = acceptedBy(ctx, tx, send.ConversationID, func() ([]Message, error) {
			return s.acceptTx(ctx, tx, send)
		})
		return err == nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("send to conversation %d: %w", send.ConversationID, err)
	}
	s.notifyAccepted(accepted)
	return out, nil
}

// acceptTx checks and stores a send inside the caller's write transaction.
func (s *Store) acceptTx(ctx context.Context, tx queryer, send BusinessSend) ([]Message, error) {
	now := s.opts.Now()
	st, sessionID, err := loadState(ctx, tx, send.ConversationID)
	if err != nil {
		return nil, err
	}
	rules := s.Rules()
	d := session.Decide(st, rules, now, send.Parts, send.ConfirmNewSession)
	if !d.Allowed() {
		return nil, d.Err
	}
	var agent any
	if send.AgentID != 0 {
		agent = send.AgentID
	}
	var retryOf any
	if send.retryOf != 0 {
		retryOf = send.retryOf
	}
	card := s.RateCard()
	var country string
	if err := tx.QueryRowContext(ctx, `SELECT ct.country FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
		WHERE c.id = ?`, send.ConversationID).Scan(&country); err != nil {
		return nil, fmt.Errorf("country of conversation %d: %w", send.ConversationID, err)
	}
	rates := card.For(country)
	var perMessage any
	if rates.PerMessage > 0 {
		perMessage = rates.PerMessage
	}
	ids := make([]int64, 0, len(send.Parts))
	for i, p := range send.Parts {
		pl := d.Placements[i]
		if pl.NewSession {
			started := session.Session{Number: pl.Session, StartedAt: now, EndsAt: now.Add(rules.Window)}
			if sessionID, err = insertSession(ctx, tx, send.ConversationID, started, "rollover"); err != nil {
				return nil, err
			}
		}
		res, err := tx.ExecContext(ctx, `
			INSERT INTO messages (conversation_id, session_id, direction, kind, body, status, status_at,
			                      counted, agent_id, sent_at, created_at, retry_of)
			VALUES (?, ?, 'out', ?, ?, 'queued', ?, 1, ?, ?, ?, ?)`,
			send.ConversationID, sessionID, string(p.Kind), p.Text, ms(now), agent, ms(now), ms(now), retryOf)
		if err != nil {
			return nil, fmt.Errorf("save business message: %w", err)
		}
		// The session is billed from its first business message on, at the
		// rates in force now for the client's country: later rate changes do
		// not reprice it (S7), nor does the contact's country changing.
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET rate_text = ?, rate_media = ?, currency = ?,
			rate_message = ?, country = ?, billed_at = ?
			WHERE id = ? AND rate_text IS NULL`, rates.Text, rates.Media, rates.Currency, perMessage, country, ms(now),
			sessionID); err != nil {
			return nil, fmt.Errorf("freeze the rates of session %d: %w", sessionID, err)
		}
		id, _ := res.LastInsertId()
		ids = append(ids, id)
		if i < len(send.Attachments) && send.Attachments[i] != nil {
			if err := s.insertAttachment(ctx, tx, id, *send.Attachments[i], now); err != nil {
				return nil, err
			}
		} else if p.Kind != session.Text {
			return nil, &InvalidError{Field: "attachment", Message: fmt.Sprintf("the %s has no stored bytes", p.Kind)}
		}
		if err := appendEvent(ctx, tx, EventMessage, send.ConversationID, id, now); err != nil {
			return nil, err
		}
		if err := appendAudit(ctx, tx, now, send.AgentID, AuditSend, send.ConversationID, id,
			sendDetail{Kind: string(p.Kind), Session: pl.Session, NewSession: pl.NewSession}); err != nil {
			return nil, err
		}
	}
	if err := touchConversation(ctx, tx, send.ConversationID, ids[len(ids)-1], send.AgentID, now); err != nil {
		return nil, err
	}
	// And, to an unassigned conversation, that the agent takes it.
	if err := assignOnReply(ctx, tx, now, send.ConversationID, send.AgentID); err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(ids))
	for _, id := range ids {
		m, err := messageByID(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func insertSession(ctx context.Context, tx queryer, conversationID int64, s session.Session, openedBy string) (int64, error) {
	res, err := tx.ExecContext(ctx, `
		INSERT INTO sessions (conversation_id, number, started_at, ends_at, opened_by, received_at) VALUES (?, ?, ?, ?, ?, ?)`,
		conversationID, s.Number, ms(s.StartedAt), ms(s.EndsAt), openedBy, ms(s.ReceivedAt))
	if err != nil {
		return 0, fmt.Errorf("open session %d of conversation %d: %w", s.Number, conversationID, err)
	}
	return res.LastInsertId()
}

// touchConversation records an agent's message as the conversation's newest,
// and marks the conversation read for that agent: replying means having read
// it. The mark is the agent's own (conversation_reads), never the shared
// last_read_message_id, which stopped moving when unread became per agent
// (00017): a reply reads the conversation for the one who wrote it, not for
// their colleagues. agent 0 (no agent) marks nothing. A client's message
// needs no call: the insert's trigger records it (messages_count_insert).
func touchConversation(ctx context.Context, tx queryer, conversationID, messageID, agent int64, at time.Time) error {
	var lastIn int64
	q := `UPDATE conversations SET last_message_id = ?, last_activity_at = ? WHERE id = ? RETURNING last_in_id`
	if err := tx.QueryRowContext(ctx, q, messageID, ms(at), conversationID).Scan(&lastIn); err != nil {
		return fmt.Errorf("update conversation %d: %w", conversationID, err)
	}
	if agent == 0 {
		return nil
	}
	return setReadMark(ctx, tx, agent, conversationID, lastIn)
}

// MessageRef names a business message by our id or by the provider's.
type MessageRef struct {
	ID         int64
	ProviderID string
}

// StatusUpdate is a delivery report about a business message.
type StatusUpdate struct {
	Ref    MessageRef
	Status string // one of the business statuses
	Reason string // why it failed, for the failure statuses
	At     time.Time
	// ProviderID, when set, records the provider's id for the message (on send).
	ProviderID string
	// Price, when the report carries one, is recorded whatever the status
	// does (see RecordPrice): a stale status may still bring the price.
	Price *ReportedPrice
}

// ApplyStatus moves a business message forward to a new status. A stale update
// (a lower rank than the stored status, or the same) changes nothing, so
// duplicated and out-of-order callbacks are harmless. It returns ErrNotFound
// for an unknown message, and whether anything changed.
func (s *Store) ApplyStatus(ctx context.Context, u StatusUpdate) (changed bool, err error) {
	if !ValidStatus(u.Status) {
		return false, &InvalidError{Field: "status", Message: fmt.Sprintf("unknown status %q", u.Status)}
	}
	var price ReportedPrice
	if u.Price != nil {
		price = *u.Price
		if err := checkPrice(&price); err != nil {
			return false, err
		}
	}
	err = s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		changed = false // the transaction may run again
		id, convID, current, known, err := findOutbound(ctx, tx, u.Ref)
		if err != nil {
			return false, err
		}
		if known != "" && u.ProviderID != "" && known != u.ProviderID {
			// A report about another hand-over of this message than the one recorded.
			return false, fmt.Errorf("message %d was sent as %q, not %q: %w", id, known, u.ProviderID, ErrNotFound)
		}
		if u.ProviderID != "" && known == "" {
			if _, err := tx.ExecContext(ctx, `UPDATE messages SET provider_id = ? WHERE id = ?`, u.ProviderID, id); err != nil {
				return false, fmt.Errorf("record provider id of message %d: %w", id, err)
			}
		}
		if u.Price != nil {
			if changed, err = s.recordPriceTx(ctx, tx, id, convID, price); err != nil {
				return false, err
			}
		}
		if statusRank[u.Status] <= statusRank[current] {
			return changed, nil
		}
		at := u.At
		if at.IsZero() {
			at = s.opts.Now()
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET status = ?, status_reason = ?, status_at = ? WHERE id = ?`,
			u.Status, u.Reason, ms(at), id); err != nil {
			return false, fmt.Errorf("update status of message %d: %w", id, err)
		}
		changed = true
		return true, appendEvent(ctx, tx, EventStatus, convID, id, s.opts.Now())
	})
	return changed, err
}

// RejectMessage records that the provider refused a business message outright (a
// synchronous rejection), or that the outbox gave up on it: it fails with the
// reason and stops counting, which releases its slot in the session and in the
// unanswered run (S6). A session left with no counted business message was
// never billed; when it was the rollover that message began, it never
// happened at all (case 18, see releaseSession).
func (s *Store) RejectMessage(ctx context.Context, ref MessageRef, reason string) error {
	return s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		id, convID, _, _, err := findOutbound(ctx, tx, ref)
		if err != nil {
			return false, err
		}
		now := s.opts.Now()
		var sessionID int64
		var paid bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM paid_messages WHERE message_id = ?)`, id).
			Scan(&paid); err != nil {
			return false, fmt.Errorf("reject message %d: %w", id, err)
		}
		if err := tx.QueryRowContext(ctx, `UPDATE messages SET status = 'failed', status_reason = ?, status_at = ?, counted = 0
			WHERE id = ? RETURNING session_id`, reason, ms(now), id).Scan(&sessionID); err != nil {
			return false, fmt.Errorf("reject message %d: %w", id, err)
		}
		if err := appendEvent(ctx, tx, EventStatus, convID, id, now); err != nil {
			return false, err
		}
		if paid {
			return true, nil // it never counted: no session to release
		}
		return true, s.releaseSession(ctx, tx, convID, sessionID, now)
	})
}

// releaseSession undoes what a session's business messages began once none of
// them counts any more. The session was never billed: its frozen rates are
// cleared, so that the next business message bills it at the rates then in
// force. And when a rollover opened it and it is still the conversation's
// latest, it never happened (case 18): it is removed and its messages go back
// to the session before it, so the next send asks for confirmation again and
// starts its own window. A client message that arrived in it meanwhile is
// placed as if the rollover had never been: in the session before when that
// was open at its time, otherwise in a new session it opens (S1). A session
// with any business message still counted stays as it is, window included:
// the provider has opened it, billed, with that message.
func (s *Store) releaseSession(ctx context.Context, tx queryer, convID, sessionID int64, now time.Time) error {
	var (
		number, used int
		openedBy     string
		latest       bool
	)
	err := tx.QueryRowContext(ctx, `
		SELECT s.number, s.opened_by, s.used,
		       s.number = (SELECT max(number) FROM sessions WHERE conversation_id = s.conversation_id)
		FROM sessions s WHERE s.id = ?`, sessionID).Scan(&number, &openedBy, &used, &latest)
	if err != nil {
		return fmt.Errorf("session %d of a released message: %w", sessionID, err)
	}
	if used > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sessions SET rate_text = NULL, rate_media = NULL, currency = NULL,
		rate_message = NULL, country = '', billed_at = NULL
		WHERE id = ?`, sessionID); err != nil {
		return fmt.Errorf("unbill session %d: %w", sessionID, err)
	}
	if openedBy != "rollover" || !latest {
		return nil
	}
	var prevID int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM sessions WHERE conversation_id = ? AND number = ?`,
		convID, number-1).Scan(&prevID); err != nil {
		return fmt.Errorf("the session before rollover %d: %w", number, err)
	}
	// Every message of the void session has a larger id than the session
	// before's (messages join the latest session), so "from this id on"
	// below never touches that session's own.
	rows, err := tx.QueryContext(ctx, `UPDATE messages SET session_id = ? WHERE session_id = ?
		RETURNING id, direction, sent_at, created_at`, prevID, sessionID)
	if err != nil {
		return fmt.Errorf("move the messages of void session %d: %w", number, err)
	}
	type moved struct {
		id                 int64
		inbound            bool
		sentAt, receivedAt int64
	}
	var msgs []moved
	for rows.Next() {
		var m moved
		var dir string
		if err := rows.Scan(&m.id, &dir, &m.sentAt, &m.receivedAt); err != nil {
			rows.Close()
			return fmt.Errorf("move the messages of void session %d: %w", number, err)
		}
		m.inbound = dir == Inbound
		msgs = append(msgs, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("move the messages of void session %d: %w", number, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, sessionID); err != nil {
		return fmt.Errorf("remove void session %d: %w", number, err)
	}
	slices.SortFunc(msgs, func(a, b moved) int { return cmp.Compare(a.id, b.id) })
	st, _, err := loadState(ctx, tx, convID)
	if err != nil {
		return err
	}
	rules := s.Rules()
	for _, m := range msgs {
		if m.inbound {
			next, opened := session.ClientWrote(st, rules, fromMS(m.sentAt), fromMS(m.receivedAt))
			st = next
			if opened {
				newID, err := insertSession(ctx, tx, convID, *next.Current, "client")
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `UPDATE messages SET session_id = ? WHERE session_id = ? AND id >= ?`,
					newID, prevID, m.id); err != nil {
					return fmt.Errorf("place message %d in session %d: %w", m.id, next.Current.Number, err)
				}
				prevID = newID
			}
		}
		// The thread redraws each moved message: its session and divider changed.
		if err := appendEvent(ctx, tx, EventStatus, convID, m.id, now); err != nil {
			return err
		}
	}
	return nil
}

// findOutbound finds a business message by our id or the provider's, and
// returns its conversation, status and recorded provider id.
func findOutbound(ctx context.Context, tx queryer, ref MessageRef) (id, conversationID int64, status, providerID string, err error) {
	const cols = `SELECT id, conversation_id, status, coalesce(provider_id, '') FROM messages WHERE direction = 'out'`
	q, arg := cols+` AND id = ?`, any(ref.ID)
	if ref.ID == 0 {
		q, arg = cols+` AND provider_id = ?`, ref.ProviderID
	}
	err = tx.QueryRowContext(ctx, q, arg).Scan(&id, &conversationID, &status, &providerID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, "", "", fmt.Errorf("business message %+v: %w", ref, ErrNotFound)
	}
	if err != nil {
		return 0, 0, "", "", fmt.Errorf("find business message %+v: %w", ref, err)
	}
	return id, conversationID, status, providerID, nil
}

// Outgoing is a queued business message with where it goes.
type Outgoing struct {
	Message
	Phone string // the client's E.164 number
	// TriedAt is when an earlier try to hand it over began whose outcome was
	// never recorded, or, for an unconfirmed message, the uncertain try; zero
	// when no try is open.
	TriedAt time.Time
	// Checks is how many lookups at the provider an unconfirmed message had.
	Checks int
}

// queuedSelect reads the outbox's work in acceptance order. Each status is
// found through its own partial index (an OR of the two would scan every
// message ever stored, on every wake of the outbox).
var queuedSelect = `SELECT q.*, ct.phone, mm.tried_at, mm.checks FROM (` + messageSelect + `
		WHERE m.id IN (SELECT id FROM messages WHERE status = 'queued' AND provider_id IS NULL
		               UNION ALL SELECT id FROM messages WHERE status = 'unconfirmed' AND checking = 1)
		ORDER BY m.id LIMIT ?) q
		JOIN messages mm ON mm.id = q.id
		JOIN conversations c ON c.id = q.conversation_id JOIN contacts ct ON ct.id = c.contact_id
		ORDER BY q.id`

// Queued returns up to limit business messages waiting to be sent, or, when
// unconfirmed, to be looked up at the provider, in the order they were
// accepted, which keeps each client's messages in order. It includes messages
// whose next attempt is not due yet: they hold back their client's later
// messages. An unconfirmed message that waits for an agent is not included.
func (s *Store) Queued(ctx context.Context, limit int) ([]Outgoing, error) {
	rows, err := s.read.QueryContext(ctx, queuedSelect, limit)
	if err != nil {
		return nil, fmt.Errorf("list queued messages: %w", err)
	}
	defer rows.Close()
	var out []Outgoing
	for rows.Next() {
		var o Outgoing
		var err error
		var triedAt int64
		if o.Message, err = scanMessage(rows, &o.Phone, &triedAt, &o.Checks); err != nil {
			return nil, fmt.Errorf("list queued messages: %w", err)
		}
		o.TriedAt = fromMS(triedAt)
		out = append(out, o)
	}
	return out, rows.Err()
}

// SaveContact stores a contact's name before it writes (the sandbox phone
// names its clients; Routee's inbound messages carry no name).
func (s *Store) SaveContact(ctx context.Context, phone, name, country string) error {
	return s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		_, err := upsertContact(ctx, tx, phone, name, country, s.opts.Now())
		return false, err
	})
}

// SendFailed records a try to hand a business message to the provider that is
// known to have failed (nothing reached the provider), which closes it: it
// stays queued, to be tried again at next. The event lets the agent see why.
func (s *Store) SendFailed(ctx context.Context, id int64, reason string, next time.Time) error {
	return s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		var convID int64
		err := tx.QueryRowContext(ctx, `UPDATE messages SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,
			tried_at = 0 WHERE id = ? AND direction = 'out' AND status = 'queued' RETURNING conversation_id`,
			ms(next), reason, id).Scan(&convID)
		if errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("queued message %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return false, fmt.Errorf("record failed send of message %d: %w", id, err)
		}
		return true, appendEvent(ctx, tx, EventStatus, convID, id, s.opts.Now())
	})
}

// retryable are the statuses from which an agent may send a message again.
var retryable = map[string]bool{StatusFailed: true, StatusUndelivered: true, StatusExpired: true}

// Retryable reports whether an agent may send m again: a business message
// that failed and was not sent again yet (it is sent again at most once).
func Retryable(m Message) bool {
	// A paid message is sent again as a new paid message, with its price
	// confirmed again: never through the session rules.
	return m.Direction == Outbound && retryable[m.Status] && m.RetriedBy == 0 && m.Paid == nil
}

// RetryMessage sends a failed business message again, as a new message with the
// same content: checked and counted like any send (S6, S9), so it may be refused
// or need confirmation. The failed one stays in the thread as it was; whether it
// still counts is its own story (S6).
func (s *Store) RetryMessage(ctx context.Context, id, agentID int64, confirmNewSession bool) (Message, error) {
	var (
		out      Message
		accepted Accepted
	)
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		m, err := messageByID(ctx, tx, id)
		if err == nil && m.Direction != Outbound {
			err = fmt.Errorf("business message %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return false, err
		}
		if m.RetriedBy != 0 {
			return false, session.Refuse(session.AlreadyRetried,
				"This message was already sent again; a failed message is sent again only once.")
		}
		if m.Paid != nil {
			return false, &InvalidError{Field: "paid",
				Message: "A paid message is not sent again through the session; send a new paid message (its price is confirmed again)."}
		}
		if !Retryable(m) {
			return false, &InvalidError{Field: "status",
				Message: fmt.Sprintf("Only a failed message can be sent again; this one is %s.", m.Status)}
		}
		send := BusinessSend{
			ConversationID: m.ConversationID, AgentID: agentID,
			Parts: []session.Part{{Kind: m.Kind, Text: m.Body}}, ConfirmNewSession: confirmNewSession,
			retryOf: m.ID,
		}
		if a := m.Attachment; a != nil {
			bytes := a.NewAttachment // the same stored bytes, under a new public token
			send.Attachments = []*NewAttachment{&bytes}
		}
		msgs, a, err := acceptedBy(ctx, tx, m.ConversationID, func() ([]Message, error) {
			return s.acceptTx(ctx, tx, send)
		})
		if err != nil {
			return false, err
		}
		out, accepted = msgs[0], a
		// Every open page redraws the failed message, without its button.
		if err := appendEvent(ctx, tx, EventStatus, m.ConversationID, m.ID, s.opts.Now()); err != nil {
			return false, err
		}
		return true, appendAudit(ctx, tx, s.opts.Now(), agentID, AuditRetry, m.ConversationID, m.ID, retryDetail{
			OriginalMessageID: m.ID, OriginalStatus: m.Status, NewMessageID: out.ID,
			Session: out.SessionNumber, NewSession: out.FirstOfSession})
	})
	if err != nil {
		return Message{}, fmt.Errorf("retry message %d: %w", id, err)
	}
	s.notifyAccepted(accepted)
	return out, nil
}

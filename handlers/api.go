package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"sessiondesk/session"
	"sessiondesk/store"
)

// The JSON API: the same rules and refusal codes as the composer.

type apiContact struct {
	Name    string `json:"name"`
	Phone   string `json:"phone"`
	Country string `json:"country,omitempty"`
	// Flags are what delivery reports said about the client; only on
	// GET /api/v1/conversations/{id}.
	Flags *[]store.ContactFlag `json:"flags,omitempty"`
}

type apiSession struct {
	Open           bool       `json:"open"`
	Number         int        `json:"number"`
	StartedAt      *time.Time `json:"started_at"`
	EndsAt         *time.Time `json:"ends_at"`
	Used           int        `json:"used"`
	Remaining      int        `json:"remaining"`
	Unanswered     int        `json:"unanswered"`
	UnansweredLeft int        `json:"unanswered_left"`
	Media          bool       `json:"media"`
	Cost           float64    `json:"cost"`
	Currency       string     `json:"currency"`
	CanSend        bool       `json:"can_send"`
	Code           string     `json:"code,omitempty"`
	Message        string     `json:"message,omitempty"`
	// UnansweredEnd: the session is over and the client's last message in it
	// went unanswered (case 9).
	UnansweredEnd bool `json:"unanswered_end"`
}

// apiSessionRecord is one session of a conversation's history.
type apiSessionRecord struct {
	Number    int       `json:"number"`
	StartedAt time.Time `json:"started_at"`
	EndsAt    time.Time `json:"ends_at"`
	Ended     bool      `json:"ended"`
	Used      int       `json:"used"`
	Media     bool      `json:"media"`
	// Cost is at the rates frozen when the session was first billed (S7).
	Cost          float64 `json:"cost"`
	Currency      string  `json:"currency"`
	UnansweredEnd bool    `json:"unanswered_end"`
	// ReportedCost is what the provider reported for its messages, in
	// Currency; null until it priced any (issue 12).
	ReportedCost *float64 `json:"reported_cost"`
}

type apiConversation struct {
	ID          int64       `json:"id"`
	Contact     apiContact  `json:"contact"`
	Unread      int         `json:"unread"`
	LastMessage *apiMessage `json:"last_message"`
	Session     apiSession  `json:"session"`
	// Status is open, pending, snoozed or resolved; SnoozedUntil is when a
	// snoozed one reopens (null otherwise); Assignee is null when unassigned.
	Status       string       `json:"status"`
	SnoozedUntil *time.Time   `json:"snoozed_until"`
	Assignee     *apiAssignee `json:"assignee"`
	// Sessions is the session history, the latest first; only on
	// GET /api/v1/conversations/{id}.
	Sessions []apiSessionRecord `json:"sessions,omitempty"`
}

type apiMessage struct {
	ID             int64     `json:"id"`
	ConversationID int64     `json:"conversation_id"`
	Direction      string    `json:"direction"`
	Type           string    `json:"type"`
	Text           string    `json:"text"`
	Status         string    `json:"status"`
	StatusReason   string    `json:"status_reason,omitempty"`
	Attempts       int       `json:"attempts,omitempty"`   // failed tries to reach the provider
	LastError      string    `json:"last_error,omitempty"` // why the last try failed
	Session        int       `json:"session"`
	Agent          string    `json:"agent,omitempty"`
	SentAt         time.Time `json:"sent_at"`
	CreatedAt      time.Time `json:"created_at"`
	// Paid is set for a paid message (outside a session); ReplyTo is the
	// business message a client's message answers.
	Paid    *apiPaid `json:"paid,omitempty"`
	ReplyTo int64    `json:"reply_to,omitempty"`
}

// apiPaid is what makes a message a paid one.
type apiPaid struct {
	Channel       string   `json:"channel"` // viber, failover or sms: how it was sent
	FinalChannel  string   `json:"final_channel,omitempty"`
	QuotedPrice   float64  `json:"quoted_price"`
	Price         *float64 `json:"price"` // as Routee billed it; null until reported
	Currency      string   `json:"currency"`
	ImageURL      string   `json:"image_url,omitempty"`
	ButtonCaption string   `json:"button_caption,omitempty"`
	ButtonURL     string   `json:"button_url,omitempty"`
	TemplateID    int64    `json:"template_id,omitempty"`
}

func toAPIMessage(m store.Message) apiMessage {
	out := toAPISessionMessage(m)
	out.ReplyTo = m.ReplyTo
	if p := m.Paid; p != nil {
		out.Paid = &apiPaid{Channel: p.Route, FinalChannel: p.FinalChannel, QuotedPrice: p.QuotedPrice, Price: p.Price,
			Currency: p.Currency, ImageURL: p.ImageURL, ButtonCaption: p.ButtonCaption, ButtonURL: p.ButtonURL,
			TemplateID: p.TemplateID}
	}
	return out
}

func toAPISessionMessage(m store.Message) apiMessage {
	return apiMessage{
		ID: m.ID, ConversationID: m.ConversationID, Direction: m.Direction, Type: string(m.Kind), Text: m.Body,
		Status: m.Status, StatusReason: m.StatusReason, Attempts: m.Attempts, LastError: m.LastError, Session: m.SessionNumber, Agent: m.AgentName,
		SentAt: m.SentAt, CreatedAt: m.CreatedAt,
	}
}

func (s *Server) toAPIConversation(cv store.Conversation, now time.Time) apiConversation {
	st, rates := session.StatusAt(cv.State, s.Store.Rules(), now), s.Store.Rates()
	out := apiConversation{
		ID:      cv.ID,
		Contact: apiContact{Name: cv.Contact.Name, Phone: cv.Contact.Phone, Country: cv.Contact.Country},
		Status:  cv.Status,
		Session: apiSession{
			Open: st.Open, Number: st.Number, Used: st.Used, Remaining: st.Remaining,
			Unanswered: st.Unanswered, UnansweredLeft: st.UnansweredLeft, Media: st.Media,
			Currency: rates.Currency, CanSend: st.CanSend,
		},
	}
	if cv.Last != nil {
		m := toAPIMessage(*cv.Last)
		out.LastMessage = &m
	}
	if cv.Status == store.ConvSnoozed {
		until := cv.SnoozedUntil
		out.SnoozedUntil = &until
	}
	if a := cv.Assignee; a != nil {
		out.Assignee = &apiAssignee{Login: a.Login, Name: a.Name}
	}
	if cur := cv.State.Current; cur != nil {
		start, end := st.StartedAt, st.EndsAt
		out.Session.StartedAt, out.Session.EndsAt = &start, &end
		out.Session.Cost, out.Session.Currency = cur.Cost(), sessionCurrency(*cur, rates)
		out.Session.UnansweredEnd = cur.Unanswered(now)
	}
	if st.Refusal != nil {
		out.Session.Code, out.Session.Message = string(st.Refusal.Code), st.Refusal.Message
	}
	return out
}

// API list page sizes.
const (
	apiListDefault = 50
	apiListMax     = 200
)

// apiConversations is GET /api/v1/conversations?view=&status=&q=&cursor=&limit=:
// a page of a view of the list in its order (waiting clients first, by the
// end of their session, then by activity), and next_cursor for the page after
// it (absent on the last page). unread is the caller's own.
func (s *Server) apiConversations(c echo.Context) error {
	ctx := c.Request().Context()
	limit := apiListDefault
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > apiListMax {
			return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("limit: want a number from 1 to %d", apiListMax))
		}
		limit = n
	}
	cursor, err := listCursorParam(c.QueryParam("cursor"), "cursor")
	if err != nil {
		return err
	}
	agent := currentAgent(c).ID
	q, err := s.listQuery(c, agent)
	if err != nil {
		return err
	}
	out := struct {
		Conversations []apiConversation `json:"conversations"`
		NextCursor    string            `json:"next_cursor,omitempty"`
	}{}
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		rows, next, err := r.ListView(ctx, q, cursor, limit)
		if err != nil {
			return err
		}
		// Only a row with a client message past the agent's mark has any.
		var ids []int64
		for _, lr := range rows {
			if lr.LastInID > lr.ReadMark {
				ids = append(ids, lr.ID)
			}
		}
		unread, err := r.UnreadCounts(ctx, agent, ids)
		if err != nil {
			return err
		}
		out.Conversations = make([]apiConversation, 0, len(rows))
		for _, lr := range rows {
			cv := s.toAPIConversation(lr.Conversation, r.Now())
			cv.Unread = unread[lr.ID]
			out.Conversations = append(out.Conversations, cv)
		}
		if next != nil {
			out.NextCursor = next.String()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiConversation(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var out apiConversation
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		cv, err := r.Conversation(ctx, id)
		if err != nil {
			return err
		}
		out = s.toAPIConversation(cv, r.Now())
		unread, err := r.UnreadCounts(ctx, currentAgent(c).ID, []int64{id})
		if err != nil {
			return err
		}
		out.Unread = unread[id]
		flags, err := r.ConversationFlags(ctx, id)
		if err != nil {
			return err
		}
		out.Contact.Flags = &flags
		sessions, err := r.Sessions(ctx, id, historyLimit)
		out.Sessions = make([]apiSessionRecord, 0, len(sessions))
		for _, ss := range sessions {
			out.Sessions = append(out.Sessions, apiSessionRecord{
				Number: ss.Number, StartedAt: ss.StartedAt, EndsAt: ss.EndsAt, Ended: !r.Now().Before(ss.EndsAt),
				Used: ss.Used, Media: ss.Media, Cost: ss.Cost(), Currency: sessionCurrency(ss, s.Store.Rates()),
				UnansweredEnd: ss.Unanswered(r.Now()), ReportedCost: reportedAmount(ss),
			})
		}
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiMessages(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var out []apiMessage
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		if _, err := r.Conversation(ctx, id); err != nil {
			return err
		}
		msgs, err := r.Messages(ctx, id, threadLimit)
		out = make([]apiMessage, 0, len(msgs))
		for _, m := range msgs {
			out = append(out, toAPIMessage(m))
		}
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"messages": out})
}

// sendRequest is the body of POST /api/v1/conversations/{id}/messages.
type sendRequest struct {
	Type              string `json:"type"`
	Text              string `json:"text"`
	ConfirmNewSession bool   `json:"confirm_new_session"`
	// The paid message fields (paid.go): only with "paid": true.
	paidRequest
}

// maxJSONBody bounds API request bodies; a text message is at most a few KB.
const maxJSONBody = 64 << 10

// decodeJSON reads one JSON object from the body into v, with a message a
// script author can act on when it is not one.
func decodeJSON(c echo.Context, v any) error {
	body := http.MaxBytesReader(c.Response(), c.Request().Body, maxJSONBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("The body is over %d bytes.", maxJSONBody))
		case errors.Is(err, io.EOF):
			return echo.NewHTTPError(http.StatusBadRequest, "The body is empty: send a JSON object.")
		default:
			return echo.NewHTTPError(http.StatusBadRequest, "The body is not valid JSON: "+err.Error())
		}
	}
	if dec.More() {
		return echo.NewHTTPError(http.StatusBadRequest, "The body holds more than one JSON value.")
	}
	return nil
}

func (s *Server) apiSend(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	if isMultipart(c) {
		msgs, warnings, _, err := s.sendUpload(c, id)
		if err != nil {
			return err
		}
		s.checkBudget(c.Request().Context()) // a send may bill a session
		out := make([]apiMessage, 0, len(msgs))
		for _, m := range msgs {
			out = append(out, toAPIMessage(m))
		}
		return c.JSON(http.StatusCreated, map[string]any{"message": out[len(out)-1], "messages": out, "warnings": warnings})
	}
	var req sendRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Paid {
		return s.apiPaidSend(c, id, req.Text, req.paidRequest)
	}
	kind := session.Kind(req.Type)
	if kind == session.Image || kind == session.File {
		return session.Refuse(session.InvalidType, "Images and files are sent as multipart/form-data (type, file, optional text); JSON carries text only.")
	}
	msgs, err := s.Store.AcceptBusinessMessages(c.Request().Context(), store.BusinessSend{
		ConversationID:    id,
		AgentID:           currentAgent(c).ID,
		Parts:             []session.Part{{Kind: kind, Text: req.Text}},
		ConfirmNewSession: req.ConfirmNewSession,
	})
	if err != nil {
		return err
	}
	s.checkBudget(c.Request().Context()) // a send may bill a session
	return c.JSON(http.StatusCreated, map[string]any{"message": toAPIMessage(msgs[0])})
}

// apiRetry is POST /api/v1/conversations/{id}/messages/{mid}/retry with an
// optional {"confirm_new_session": true}: the failed message is sent again as a
// new message, through the rules.
func (s *Server) apiRetry(c echo.Context) error {
	convID, id, err := messagePath(c)
	if err != nil {
		return err
	}
	var req struct {
		ConfirmNewSession bool `json:"confirm_new_session"`
	}
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	m, err := s.retry(c, convID, id, req.ConfirmNewSession)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"message": toAPIMessage(m)})
}

package handlers

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"sessiondesk/phone"
	"sessiondesk/store"
)

// The sandbox phone and paid messages: it can play a number without Viber,
// and a reply to a paid message names it, as Routee's referenceTrackingId.

// sandboxNoViber settles a business message to a number the phone plays
// without Viber (Routee reports "Not Viber User"; a failover goes on to SMS,
// an SMS is delivered) and reports whether it did. The error is logged: the
// phone page cannot act on it.
func (s *Server) sandboxNoViber(ctx context.Context, m store.Message) bool {
	if m.Direction != store.Outbound {
		return false
	}
	var num string
	err := s.Store.Read(ctx, func(r *store.Reader) error {
		cv, err := r.Conversation(ctx, m.ConversationID)
		num = cv.Contact.Phone
		return err
	})
	if err != nil || !s.Phone.IsNotViberUser(num) {
		return false
	}
	if m.Status != store.StatusSent && m.Status != store.StatusQueued {
		return true // already settled
	}
	if err := s.Phone.Settle(ctx, m); err != nil {
		s.Log.Warn("sandbox: settle a message to a number without Viber", "message", m.ID, "err", err)
	}
	return true
}

// sandboxReplyRef is the tracking id of the paid message a client's reply
// answers: the conversation's latest business message, when it is a paid one.
func (s *Server) sandboxReplyRef(ctx context.Context, e164 string) string {
	var ref string
	_ = s.Store.Read(ctx, func(r *store.Reader) error {
		cv, err := r.ConversationByPhone(ctx, e164)
		if err != nil {
			return err
		}
		msgs, err := r.Messages(ctx, cv.ID, threadLimit)
		for i := len(msgs) - 1; i >= 0; i-- {
			if msgs[i].Direction == store.Outbound {
				if msgs[i].Paid != nil {
					ref = msgs[i].ProviderID
				}
				break
			}
		}
		return err
	})
	return ref
}

// sandboxNotViber is the phone's "Not a Viber user" switch.
func (s *Server) sandboxNotViber(c echo.Context) error {
	num, err := phone.Parse(c.FormValue("phone"))
	if err != nil {
		return &store.InvalidError{Field: "phone", Message: err.Error()}
	}
	on := c.FormValue("on") == "1"
	s.Phone.NotViberUser(num.E164, on)
	if c.Request().Header.Get("HX-Request") == "true" {
		return c.NoContent(http.StatusNoContent)
	}
	return c.Redirect(http.StatusSeeOther, s.path(sandboxURL(num.E164, strings.TrimSpace(c.FormValue("name")))))
}

package handlers

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"sessiondesk/store"
)

// An unconfirmed business message (its hand-over to Routee may or may not
// have worked, and a lookup could not tell) is settled by an agent: "It
// arrived" marks it sent, "Send again" queues the same message again. Both
// answer 409 when the message is not unconfirmed (already settled, by another
// click or by a lookup).

// resolveUnconfirmed settles a message of the conversation in the path.
func (s *Server) resolveUnconfirmed(c echo.Context, resolution string) (store.Message, error) {
	convID, id, err := messagePath(c)
	if err != nil {
		return store.Message{}, err
	}
	m, err := s.Store.ResolveUnconfirmed(c.Request().Context(), convID, id, currentAgent(c).ID, resolution)
	if errors.Is(err, store.ErrNotUnconfirmed) {
		return store.Message{}, &notUnconfirmedError{err: err}
	}
	return m, err
}

// notUnconfirmedError is answered 409 not_unconfirmed.
type notUnconfirmedError struct{ err error }

func (e *notUnconfirmedError) Error() string { return e.err.Error() }

const notUnconfirmedText = "This message is no longer unconfirmed: someone settled it, or Routee's answer arrived."

// apiConfirmArrived is POST /api/v1/conversations/{id}/messages/{mid}/confirm-arrived.
func (s *Server) apiConfirmArrived(c echo.Context) error {
	return s.apiResolve(c, store.ResolveArrived)
}

// apiResend is POST /api/v1/conversations/{id}/messages/{mid}/resend.
func (s *Server) apiResend(c echo.Context) error {
	return s.apiResolve(c, store.ResolveResend)
}

func (s *Server) apiResolve(c echo.Context, resolution string) error {
	m, err := s.resolveUnconfirmed(c, resolution)
	var conflict *notUnconfirmedError
	if errors.As(err, &conflict) {
		return c.JSON(http.StatusConflict, apiError{Code: "not_unconfirmed", Message: notUnconfirmedText})
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"message": toAPIMessage(m)})
}

// confirmArrivedForm and resendForm are the two buttons under an unconfirmed
// message. The change arrives over the websocket like any status.
func (s *Server) confirmArrivedForm(c echo.Context) error {
	return s.resolveForm(c, store.ResolveArrived)
}

func (s *Server) resendForm(c echo.Context) error {
	return s.resolveForm(c, store.ResolveResend)
}

func (s *Server) resolveForm(c echo.Context, resolution string) error {
	m, err := s.resolveUnconfirmed(c, resolution)
	var conflict *notUnconfirmedError
	if errors.As(err, &conflict) {
		return echo.NewHTTPError(http.StatusConflict, notUnconfirmedText)
	}
	if err != nil {
		return err
	}
	if c.Request().Header.Get("HX-Request") == "true" {
		return c.NoContent(http.StatusNoContent)
	}
	return c.Redirect(http.StatusSeeOther, s.path(fmt.Sprintf("/c/%d", m.ConversationID)))
}

// unconfirmedURLs are where the two buttons of an unconfirmed message post.
func (s *Server) unconfirmedURLs(m store.Message) (arrived, resend string) {
	if m.Direction != store.Outbound || m.Status != store.StatusUnconfirmed {
		return "", ""
	}
	base := s.path(fmt.Sprintf("/c/%d/messages/%d", m.ConversationID, m.ID))
	return base + "/confirm-arrived", base + "/resend"
}

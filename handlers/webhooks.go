package handlers

import (
	"crypto/subtle"
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"sessiondesk/channel/routee"
)

// The provider's webhooks. They are outside the login (the SSO proxy must let
// /webhooks/ through) and protected by a secret path segment instead: Routee
// signs nothing. Both answer 200 only once what they carry is committed, so the
// provider retries anything we failed to keep.

// maxWebhookBody bounds a callback body; Routee's are well under 4 KB.
const maxWebhookBody = 256 << 10

// checkWebhookSecret answers 404, as for any unknown path, unless the secret
// segment matches. The comparison takes the same time wherever they differ.
func (s *Server) checkWebhookSecret(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.WebhookSecret == "" || subtle.ConstantTimeCompare([]byte(c.Param("secret")), []byte(s.WebhookSecret)) != 1 {
			return echo.NewHTTPError(http.StatusNotFound, "Not found.")
		}
		return next(c)
	}
}

func readWebhook(c echo.Context) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxWebhookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, echo.NewHTTPError(http.StatusRequestEntityTooLarge, "The callback body is too large.")
		}
		return nil, echo.NewHTTPError(http.StatusBadRequest, "Could not read the callback body.")
	}
	return body, nil
}

// routeeInbound stores a client's message. A delivery Routee retries is stored
// once (see routee.Inbound.DedupeKey).
func (s *Server) routeeInbound(c echo.Context) error {
	body, err := readWebhook(c)
	if err != nil {
		return err
	}
	rec, err := routee.Webhooks{Store: s.Store}.Inbound(c.Request().Context(), body)
	var bad *routee.PayloadError
	if errors.As(err, &bad) {
		s.Log.Warn("refused inbound webhook", "err", err)
		return echo.NewHTTPError(http.StatusBadRequest, bad.Message)
	}
	if err != nil {
		return err // 500: Routee tries again
	}
	s.Log.Info("client message received", "message", rec.Message.ID, "conversation", rec.Message.ConversationID,
		"duplicate", rec.Duplicate, "session_opened", rec.SessionOpened)
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "duplicate": rec.Duplicate})
}

// routeeStatus moves a business message forward (see routee.Webhooks.Status).
// A report for a message we do not know is answered 200 (retrying would not
// help) and logged.
func (s *Server) routeeStatus(c echo.Context) error {
	body, err := readWebhook(c)
	if err != nil {
		return err
	}
	res, err := routee.Webhooks{Store: s.Store}.Status(c.Request().Context(), body)
	var bad *routee.PayloadError
	if errors.As(err, &bad) {
		s.Log.Warn("refused status webhook", "err", err)
		return echo.NewHTTPError(http.StatusBadRequest, bad.Message)
	}
	if err != nil {
		return err
	}
	if res.Report.PriceProblem != "" {
		s.Log.Warn("status webhook price ignored", "tracking_id", res.Report.TrackingID, "problem", res.Report.PriceProblem)
	}
	if !res.Known {
		s.Log.Info("status for an unknown message ignored", "tracking_id", res.Report.TrackingID,
			"label", res.Report.Label, "status", res.Report.Status)
		return c.JSON(http.StatusOK, map[string]string{"status": "ignored"})
	}
	if res.Changed && res.Report.Price != nil {
		s.checkBudget(c.Request().Context())
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "changed": res.Changed})
}

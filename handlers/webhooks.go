package handlers

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"sessiondesk/channel/routee"
	"sessiondesk/phone"
	"sessiondesk/session"
	"sessiondesk/store"
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
	in, err := routee.ParseInbound(body)
	if err != nil {
		s.Log.Warn("refused inbound webhook", "err", err)
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	num, err := phone.Parse(in.From)
	if err != nil {
		s.Log.Warn("refused inbound webhook", "from", in.From, "err", err)
		return echo.NewHTTPError(http.StatusBadRequest, "from: "+err.Error())
	}
	kind := session.Text
	switch {
	case in.MediaURL != "" && in.FileName != "":
		kind = session.File
	case in.MediaURL != "":
		kind = session.Image
	}
	rec, err := s.Store.ReceiveClientMessage(c.Request().Context(), store.ClientMessage{
		Phone: num.E164, Country: num.Region, Kind: kind, Text: in.Text,
		MediaURL: in.MediaURL, FileName: in.FileName, SentAt: in.SentAt, DedupeKey: in.DedupeKey,
	})
	var invalid *store.InvalidError
	if errors.As(err, &invalid) {
		s.Log.Warn("refused inbound webhook", "from", num.E164, "err", err)
		return echo.NewHTTPError(http.StatusBadRequest, invalid.Message)
	}
	if err != nil {
		return err // 500: Routee tries again
	}
	s.Log.Info("client message received", "message", rec.Message.ID, "conversation", rec.Message.ConversationID,
		"duplicate", rec.Duplicate, "session_opened", rec.SessionOpened)
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "duplicate": rec.Duplicate})
}

// routeeStatus moves a business message forward. Reports arrive more than once
// and out of order; the store never moves a status backwards. A report for a
// message we do not know is answered 200 (retrying would not help) and logged.
func (s *Server) routeeStatus(c echo.Context) error {
	body, err := readWebhook(c)
	if err != nil {
		return err
	}
	rep, err := routee.ParseStatus(body)
	if err != nil {
		s.Log.Warn("refused status webhook", "err", err)
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	ctx := c.Request().Context()
	update := store.StatusUpdate{Status: rep.Status, Reason: rep.Reason, At: rep.At}
	var changed bool
	err = store.ErrNotFound
	if rep.TrackingID != "" {
		update.Ref = store.MessageRef{ProviderID: rep.TrackingID}
		changed, err = s.Store.ApplyStatus(ctx, update)
	}
	// The report can overtake our own record of the tracking id (Routee may
	// call back before the send's answer is stored): match it by the label,
	// which carries our message id, and record the tracking id with it.
	if id, perr := strconv.ParseInt(rep.Label, 10, 64); errors.Is(err, store.ErrNotFound) && perr == nil && id > 0 {
		update.Ref, update.ProviderID = store.MessageRef{ID: id}, rep.TrackingID
		changed, err = s.Store.ApplyStatus(ctx, update)
	}
	if errors.Is(err, store.ErrNotFound) {
		s.Log.Info("status for an unknown message ignored", "tracking_id", rep.TrackingID, "label", rep.Label, "status", rep.Status)
		return c.JSON(http.StatusOK, map[string]string{"status": "ignored"})
	}
	if err != nil {
		return fmt.Errorf("status %s for %s: %w", rep.Status, rep.TrackingID, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "changed": changed})
}

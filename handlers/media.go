package handlers

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"sessiondesk/media"
	"sessiondesk/media/upload"
	"sessiondesk/store"
)

// Attachments: package upload reads a multipart send with bounded memory,
// checks it and hands it to the store; these handlers only pass the request
// on and answer. A refused upload deletes nothing (identical bytes may be
// going into an accepted message at the same moment): the media store's sweep
// removes unused blobs later.

// uploads is the sender of multipart sends, over the handlers' stores.
func (s *Server) uploads() *upload.Sender {
	return &upload.Sender{Store: s.Store, Media: s.Media, Limits: s.Limits}
}

// sendUpload is a multipart send, from the composer or the API. It returns the
// accepted messages, any warnings, and the text sent (for the composer to keep
// on a refusal).
func (s *Server) sendUpload(c echo.Context, convID int64) ([]store.Message, []string, string, error) {
	snd := s.uploads()
	up, err := snd.Read(c.Request().Header.Get("Content-Type"), c.Request().Body)
	if err != nil {
		return nil, nil, up.Text, err
	}
	msgs, warnings, err := snd.Send(c.Request().Context(), up, convID, currentAgent(c).ID)
	return msgs, warnings, up.Text, err
}

func isMultipart(c echo.Context) bool {
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get("Content-Type"))
	return mt == "multipart/form-data"
}

// publicMedia serves an outbound attachment to the provider at its
// unguessable, expiring URL: outside the login, like the webhooks.
func (s *Server) publicMedia(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.Param("token")
	if len(token) < 32 || !utf8.ValidString(token) {
		return store.ErrNotFound
	}
	var a store.Attachment
	err := s.Store.Read(ctx, func(r *store.Reader) error {
		var err error
		a, err = r.AttachmentByToken(ctx, token)
		if err == nil && !r.Now().Before(a.TokenExpiresAt) {
			err = store.ErrNotFound // expired: as if it never existed
		}
		return err
	})
	if err != nil {
		return err
	}
	// Outbound attachments only, fetched by the provider within the ttl.
	return s.serveBlob(c, a.Hash, a.MIME, a.Name, "private, max-age=3600")
}

// attachment serves a message's image or file to agents (and the sandbox phone).
func (s *Server) attachment(c echo.Context) error {
	id, err := pathID(c, "aid")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var a store.Attachment
	if err := s.Store.Read(ctx, func(r *store.Reader) error {
		a, err = r.Attachment(ctx, id)
		return err
	}); err != nil {
		return err
	}
	if c.Param("thumb") == "thumb" {
		if a.ThumbHash == "" {
			return store.ErrNotFound
		}
		return s.serveBlob(c, a.ThumbHash, "image/jpeg", "thumb.jpg", "no-store")
	}
	if a.Hash == "" {
		return store.ErrNotFound // not downloaded yet
	}
	// A client's photo or document is personal data, like the page showing
	// it: no browser keeps it after the agent signs out.
	return s.serveBlob(c, a.Hash, a.MIME, a.Name, "no-store")
}

// serveBlob writes stored bytes safely: only JPEG and PNG inline, everything
// else as a download; never a type a browser would run (HTML, SVG, XML,
// scripts); no MIME guessing; and a policy that runs nothing even if it were.
// cacheControl is the answer's Cache-Control.
func (s *Server) serveBlob(c echo.Context, hash, mimeType, name, cacheControl string) error {
	f, err := s.Media.Open(hash)
	if err != nil {
		return store.ErrNotFound
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat blob %s: %w", hash, err)
	}
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", cacheControl)
	disposition := "attachment"
	switch mimeType {
	case "image/jpeg", "image/png":
		disposition = "inline"
	default:
		if !safeDownloadType(mimeType) {
			mimeType = "application/octet-stream"
		}
	}
	h.Set("Content-Type", mimeType)
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": media.SanitizeName(name)}))
	http.ServeContent(c.Response(), c.Request(), "", info.ModTime(), f)
	return nil
}

// safeDownloadType reports a type that no browser renders as an active page.
func safeDownloadType(t string) bool {
	t = strings.ToLower(t)
	for _, bad := range []string{"html", "svg", "xml", "javascript", "ecmascript", "x-sh", "multipart"} {
		if strings.Contains(t, bad) {
			return false
		}
	}
	return t != ""
}

// retryDownload asks for another try at a client's media that failed to download.
func (s *Server) retryDownload(c echo.Context) error {
	id, err := pathID(c, "aid")
	if err != nil {
		return err
	}
	if err := s.Store.RetryDownload(c.Request().Context(), id); err != nil {
		return err
	}
	if c.Request().Header.Get("HX-Request") == "true" {
		return c.NoContent(http.StatusNoContent) // the new state arrives over the websocket
	}
	return c.Redirect(http.StatusSeeOther, s.path("/"))
}

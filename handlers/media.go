package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"sessiondesk/media"
	"sessiondesk/session"
	"sessiondesk/store"
)

// Attachments: uploads are streamed into the content-addressed media store
// with a size cap, checked by their bytes (package media), and only then
// offered to the rules with the text. A refused send removes the bytes it
// stored (unless another message uses the same bytes): nothing is half-stored.

const (
	maxFilesPerSend = 10       // more parts than the unanswered limit could ever take
	maxFormField    = 64 << 10 // a text field; a reply is at most a few KB
	thumbSize       = 320      // the thread's image previews fit this square
)

// upload is a parsed multipart send.
type upload struct {
	text    string
	kind    string // the API's "type"; "" from the composer, which decides by the bytes
	confirm bool
	files   []uploadedFile
	fields  map[string]string // every other small field
}

type uploadedFile struct {
	name string
	blob media.Blob
}

// readUpload streams a multipart body: fields into memory (small), files into
// the media store, each capped at the largest attachment allowed. On error it
// removes what it stored.
func (s *Server) readUpload(c echo.Context) (up upload, err error) {
	lim := s.Limits
	maxFile := max(lim.ImageMax, lim.FileMax)
	req := c.Request()
	req.Body = http.MaxBytesReader(c.Response(), req.Body, int64(maxFilesPerSend)*maxFile+1<<20)
	defer func() {
		if err != nil {
			s.discard(context.WithoutCancel(req.Context()), up.files)
			up.files = nil
		}
	}()
	mr, err := req.MultipartReader()
	if err != nil {
		return up, echo.NewHTTPError(http.StatusBadRequest, "Send the message as multipart/form-data: "+err.Error())
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return up, nil
		}
		if err != nil {
			return up, uploadError(err, maxFile)
		}
		switch name := part.FormName(); name {
		case "file", "files":
			if part.FileName() == "" {
				continue // an empty file input
			}
			if len(up.files) == maxFilesPerSend {
				return up, session.Refuse(session.FileRejected, fmt.Sprintf("At most %d attachments go in one send.", maxFilesPerSend))
			}
			blob, err := s.Media.Put(part, maxFile)
			if err != nil {
				return up, uploadError(err, maxFile)
			}
			up.files = append(up.files, uploadedFile{name: part.FileName(), blob: blob})
		default:
			b, err := io.ReadAll(io.LimitReader(part, maxFormField+1))
			if err != nil {
				return up, uploadError(err, maxFile)
			}
			if len(b) > maxFormField {
				return up, echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("The %s field is over %d bytes.", name, maxFormField))
			}
			switch name {
			case "text":
				up.text = strings.ReplaceAll(string(b), "\r\n", "\n")
			case "type":
				up.kind = string(b)
			case "confirm_new_session":
				up.confirm = string(b) == "1" || string(b) == "true"
			default:
				if up.fields == nil {
					up.fields = make(map[string]string)
				}
				up.fields[name] = string(b)
			}
		}
	}
}

// tooLargeError is an upload over the cap: a 413 with the code file_rejected.
type tooLargeError struct{ message string }

func (e *tooLargeError) Error() string { return e.message }

// uploadError turns a failed read into a clear 413 or 400.
func uploadError(err error, maxFile int64) error {
	var tooBig *http.MaxBytesError
	if errors.Is(err, media.ErrTooLarge) || errors.As(err, &tooBig) {
		return &tooLargeError{fmt.Sprintf("The file is too large: an attachment may be at most %s.", humanSize(maxFile))}
	}
	return echo.NewHTTPError(http.StatusBadRequest, "Could not read the upload: "+err.Error())
}

// discard removes uploaded bytes that no attachment refers to.
func (s *Server) discard(ctx context.Context, files []uploadedFile) {
	for _, f := range files {
		if used, err := s.Store.HashInUse(ctx, f.blob.Hash); err == nil && !used {
			if err := s.Media.Delete(f.blob.Hash); err != nil {
				s.Log.Warn("remove refused upload", "hash", f.blob.Hash, "err", err)
			}
		}
	}
}

// isImageName reports a name the composer sends as an image.
func isImageName(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// checkedSend turns an upload into the parts of one send (S5: the text first,
// then the attachments in the order attached), checking every file by its
// bytes and making thumbnails of images.
func (s *Server) checkedSend(up upload, convID, agentID int64) (store.BusinessSend, []string, error) {
	send := store.BusinessSend{ConversationID: convID, AgentID: agentID, ConfirmNewSession: up.confirm}
	var warnings []string
	if strings.TrimSpace(up.text) != "" || len(up.files) == 0 {
		send.Parts = append(send.Parts, session.Part{Kind: session.Text, Text: up.text})
		send.Attachments = append(send.Attachments, nil)
	}
	for _, f := range up.files {
		kind := session.File
		if up.kind == string(session.Image) || (up.kind == "" && isImageName(f.name)) {
			kind = session.Image
		}
		var (
			checked media.Checked
			refusal *session.Refusal
		)
		if kind == session.Image {
			checked, refusal = media.CheckImage(f.blob.Head, f.blob.Size, s.Limits)
		} else {
			checked, refusal = media.CheckFile(f.name, f.blob.Head, f.blob.Size, s.Limits)
		}
		if refusal != nil {
			return send, nil, session.Refuse(refusal.Code, fmt.Sprintf("%q: %s", f.name, refusal.Message))
		}
		a := &store.NewAttachment{Hash: f.blob.Hash, Size: f.blob.Size, MIME: checked.MIME, Name: media.SanitizeName(f.name),
			Width: checked.Width, Height: checked.Height}
		if checked.Name != "" {
			a.Name = checked.Name
		}
		if kind == session.Image {
			thumb, tw, th, err := s.Media.Thumbnail(f.blob.Hash, thumbSize)
			if err != nil {
				return send, nil, session.Refuse(session.FileRejected, fmt.Sprintf("%q: the image could not be read (%v).", f.name, err))
			}
			a.ThumbHash = thumb.Hash
			a.Width, a.Height = media.Displayed(checked.Width, checked.Height, tw, th)
		}
		if checked.Warning != "" {
			warnings = append(warnings, checked.Warning)
		}
		send.Parts = append(send.Parts, session.Part{Kind: kind})
		send.Attachments = append(send.Attachments, a)
	}
	return send, warnings, nil
}

// sendUpload is a multipart send, from the composer or the API. It returns the
// accepted messages; on a refusal, the uploaded bytes are gone again.
func (s *Server) sendUpload(c echo.Context, convID int64) ([]store.Message, []string, upload, error) {
	up, err := s.readUpload(c)
	if err != nil {
		return nil, nil, up, err
	}
	if up.kind != "" && up.kind != string(session.Image) && up.kind != string(session.File) && up.kind != string(session.Text) {
		s.discard(c.Request().Context(), up.files)
		return nil, nil, up, session.Refuse(session.InvalidType,
			fmt.Sprintf("Viber session messages are text, image or file; %q is not supported.", up.kind))
	}
	send, warnings, err := s.checkedSend(up, convID, currentAgent(c).ID)
	if err == nil {
		var msgs []store.Message
		if msgs, err = s.Store.AcceptBusinessMessages(c.Request().Context(), send); err == nil {
			return msgs, warnings, up, nil
		}
	}
	s.discard(context.WithoutCancel(c.Request().Context()), up.files)
	// Thumbnails of refused images go too.
	for _, a := range send.Attachments {
		if a != nil && a.ThumbHash != "" {
			s.discard(context.WithoutCancel(c.Request().Context()), []uploadedFile{{blob: media.Blob{Hash: a.ThumbHash}}})
		}
	}
	return nil, nil, up, err
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
	return s.serveBlob(c, a.Hash, a.MIME, a.Name)
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
		return s.serveBlob(c, a.ThumbHash, "image/jpeg", "thumb.jpg")
	}
	if a.Hash == "" {
		return store.ErrNotFound // not downloaded yet
	}
	return s.serveBlob(c, a.Hash, a.MIME, a.Name)
}

// serveBlob writes stored bytes safely: only JPEG and PNG inline, everything
// else as a download; never a type a browser would run (HTML, SVG, XML,
// scripts); no MIME guessing; and a policy that runs nothing even if it were.
func (s *Server) serveBlob(c echo.Context, hash, mimeType, name string) error {
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
	h.Set("Cache-Control", "private, max-age=3600")
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

// humanSize writes a byte count the way the limits are set: decimal units.
func humanSize(n int64) string {
	switch {
	case n >= media.MB:
		return strconv.FormatFloat(float64(n)/float64(media.MB), 'f', -1, 64) + " MB"
	case n >= media.KB:
		return strconv.FormatInt(n/media.KB, 10) + " KB"
	default:
		return strconv.FormatInt(n, 10) + " bytes"
	}
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

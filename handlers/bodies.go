package handlers

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"

	"sessiondesk/media"
	"sessiondesk/media/upload"
)

// BodyLimits bound every request body in size and in time, so that no request
// can hold much memory or a connection for long by sending slowly.
type BodyLimits struct {
	// MaxBody is the most bytes of any body but an upload: JSON, forms.
	MaxBody int64
	// MaxUpload is the most bytes of a multipart body on the upload routes (the
	// composer, the API's send, the sandbox phone).
	MaxUpload int64
	// Grace is how long any body may take before MinRate applies.
	Grace time.Duration
	// MinRate is the average pace, in bytes a second, a body must keep up after
	// Grace: a body of n bytes may take Grace + n/MinRate in all.
	MinRate int64
	// Idle is the longest wait for the next bytes of a body.
	Idle time.Duration
}

// DefaultBodyLimits are 2 MB for a JSON or form body (the admin settings with
// a hundred canned replies fit) and upload.MaxRequest for an upload; every body
// gets 30 s, then must average 16 KB/s (a 50 MB file may take 52 minutes), and
// never pause for more than 30 s.
func DefaultBodyLimits(lim media.Limits) BodyLimits {
	return BodyLimits{
		MaxBody:   2 * media.MB,
		MaxUpload: upload.MaxRequest(lim),
		Grace:     30 * time.Second,
		MinRate:   16 * media.KB,
		Idle:      30 * time.Second,
	}
}

// uploadRoutes are the routes that take multipart sends with files.
var uploadRoutes = map[string]bool{
	"/c/:id/messages":                    true,
	"/api/v1/conversations/:id/messages": true,
	"/sandbox/send":                      true,
}

// LimitBodies is a middleware that caps every request body at lim.MaxBody
// (lim.MaxUpload for a multipart body on an upload route) and sets the
// connection's read deadline as the body arrives (see BodyLimits). A handler
// reading past either gets an error: an *http.MaxBytesError, or one wrapping
// os.ErrDeadlineExceeded; the connection is closed after the answer.
//
// The first deadline is set before the handler runs, not at its first read:
// a handler that answers without reading the body (a wrong webhook secret, a
// 401, a path with no route, /healthz) leaves net/http to read up to 256 KB of
// it, before the answer and again when the request ends, and the server has no
// ReadTimeout; without a deadline, a client announcing a body it never sends
// would hold the connection, its goroutine and its file descriptor for ever.
// An answer to a body not read to its end also closes the connection, so the
// answer goes out at once instead of after that read (which the deadline still
// bounds). A websocket upgrade hijacks the connection, and the upgrader clears
// its deadlines: an upgraded socket keeps its own.
func LimitBodies(lim BodyLimits) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.Body == nil || req.Body == http.NoBody {
				return next(c)
			}
			limit := lim.MaxBody
			mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
			if mt == "multipart/form-data" && uploadRoutes[c.Path()] {
				limit = lim.MaxUpload
			}
			paced := &pacedBody{r: req.Body, rc: http.NewResponseController(c.Response()), lim: lim, start: time.Now()}
			if err := paced.pace(); err != nil {
				return fmt.Errorf("set the first read deadline of a request body: %w", err)
			}
			if req.ProtoMajor == 1 { // HTTP/2 would take it for the whole connection's end
				res := c.Response()
				res.Before(func() {
					if !paced.done {
						res.Header().Set(echo.HeaderConnection, "close")
					}
				})
			}
			orig := req.Body
			req.Body = http.MaxBytesReader(c.Response(), paced, limit)
			// After the handler, net/http looks at the request's Body to tell a
			// body left unread and closed early, and then closes the connection
			// gracefully, letting the client read the answer before a reset
			// (a 413 over the limit): it must find its own body there.
			defer func() { req.Body = orig }()
			if mt == "application/x-www-form-urlencoded" {
				// Read the form now: echo's FormValue drops a reading error, so a
				// form over the limit would look like an empty one.
				if err := req.ParseForm(); err != nil {
					return bodyError(err, limit)
				}
			}
			return next(c)
		}
	}
}

// bodyError answers a body that could not be read: 413 over the limit, 408
// too slow, 400 otherwise.
func bodyError(err error, limit int64) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &upload.Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
			Message: fmt.Sprintf("The request body is over %d bytes.", limit)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &upload.Error{Status: http.StatusRequestTimeout, Code: "timeout",
			Message: "The request arrived too slowly and was stopped; try again."}
	}
	return &upload.Error{Status: http.StatusBadRequest, Code: "bad_request", Message: "The form could not be read: " + err.Error()}
}

// pacedBody moves the connection's read deadline along as a body arrives: to
// the earlier of start + Grace + read/MinRate and now + Idle.
type pacedBody struct {
	r     io.ReadCloser
	rc    *http.ResponseController
	lim   BodyLimits
	start time.Time
	read  int64
	set   time.Time // the deadline in force
	done  bool
}

func (b *pacedBody) Read(p []byte) (int, error) {
	if !b.done {
		if err := b.pace(); err != nil {
			return 0, err
		}
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	if errors.Is(err, io.EOF) && !b.done {
		// The whole body is in. The server now watches the connection for the
		// client going away, and a deadline passing there would cancel the
		// request while it is still being handled: no deadline from here on.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// pace moves the read deadline to where the bytes read so far allow.
func (b *pacedBody) pace() error {
	due := b.start.Add(b.lim.Grace)
	if b.lim.MinRate > 0 {
		due = due.Add(time.Duration(float64(b.read) / float64(b.lim.MinRate) * float64(time.Second)))
	}
	if idle := time.Now().Add(b.lim.Idle); idle.Before(due) {
		due = idle
	}
	// Setting a deadline costs little, but not on every small read.
	if d := due.Sub(b.set); d > 100*time.Millisecond || d < -100*time.Millisecond {
		if err := b.rc.SetReadDeadline(due); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return fmt.Errorf("set the read deadline: %w", err)
		}
		b.set = due
	}
	return nil
}

func (b *pacedBody) Close() error { return b.r.Close() }

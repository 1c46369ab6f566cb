// Package browser plays an agent's browser against the inbox: it signs in the
// way the SSO proxy would (oauth2-proxy's X-Forwarded-* headers, from
// 127.0.0.1, which the product trusts), loads the inbox page for its event
// cursor, and opens the live websocket with the page's Origin, reading every
// frame like htmx's ws extension does.
package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Headers are what oauth2-proxy would add for the agent login in group.
func Headers(login, group string) http.Header {
	h := http.Header{}
	h.Set("X-Forwarded-User", login)
	h.Set("X-Forwarded-Email", login+"@load.example")
	h.Set("X-Forwarded-Preferred-Username", login)
	h.Set("X-Forwarded-Groups", group)
	return h
}

// Get fetches path as login would in a browser, reading the whole body.
func Get(ctx context.Context, client *http.Client, base, path, login, group string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header = Headers(login, group)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return body, resp.StatusCode, err
}

var cursorAttr = regexp.MustCompile(`data-last-event-id="(\d+)"`)

// Cursor loads the inbox page and returns the event id its websocket resumes
// after, as the page's script would.
func Cursor(ctx context.Context, client *http.Client, base, login, group string) (int64, error) {
	body, status, err := Get(ctx, client, base, "/", login, group)
	if err != nil {
		return 0, fmt.Errorf("inbox page: %w", err)
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("inbox page: HTTP %d", status)
	}
	m := cursorAttr.FindSubmatch(body)
	if m == nil {
		return 0, errors.New("inbox page: no data-last-event-id")
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

// Socket is one open inbox websocket.
type Socket struct {
	conn   *websocket.Conn
	done   chan struct{}
	Frames atomic.Int64
	Bytes  atomic.Int64
	// Err is why reading stopped, once Done is closed (nil after Close).
	Err    error
	closed atomic.Bool
}

// Dial opens the inbox page's websocket (no conversation open) after the event
// cursor, with the page's Origin and the proxy's headers, and reads frames
// until Close; onFrame (may be nil) gets each frame and when it arrived, on
// the socket's own goroutine. The frame's bytes are valid only during the
// call: the next frame is read into them.
func Dial(ctx context.Context, base, login, group string, after int64, onFrame func(frame []byte, at time.Time)) (*Socket, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	origin := u.Scheme + "://" + u.Host
	u.Scheme = "ws"
	u.Path += "/ws"
	u.RawQuery = "conversation=0&after=" + strconv.FormatInt(after, 10)
	h := Headers(login, group)
	h.Set("Origin", origin)
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 1024}
	conn, resp, err := d.DialContext(ctx, u.String(), h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("websocket as %s: %w (HTTP %d)", login, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("websocket as %s: %w", login, err)
	}
	conn.SetReadLimit(64 << 20)
	s := &Socket{conn: conn, done: make(chan struct{})}
	go s.read(onFrame)
	return s, nil
}

// read reads every frame into one buffer it reuses: the tool shares the
// product's machine, and a new buffer per frame (ReadMessage) made the
// collector the largest cost of a hundred agents' reading (a profile of the
// tool under ingest: 40% of its CPU in allocation and GC).
func (s *Socket) read(onFrame func([]byte, time.Time)) {
	defer close(s.done)
	var buf bytes.Buffer
	for {
		_, r, err := s.conn.NextReader() // answers the server's pings meanwhile
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			if !s.closed.Load() {
				s.Err = err
			}
			return
		}
		at := time.Now()
		s.Frames.Add(1)
		s.Bytes.Add(int64(buf.Len()))
		if onFrame != nil {
			onFrame(buf.Bytes(), at)
		}
	}
}

// Done is closed when the socket stopped reading.
func (s *Socket) Done() <-chan struct{} { return s.done }

// Close leaves like a browser tab that closes: a close frame, then the
// connection; it waits for the reader to finish.
func (s *Socket) Close() {
	s.closed.Store(true)
	_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
	_ = s.conn.Close()
	<-s.done
}

package handlers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"sessiondesk/media"
)

// shortBodyLimits make the tests' deadlines come within a second: 300 ms for
// any body, then 1 KB/s, and no pause over 300 ms.
var shortBodyLimits = BodyLimits{MaxBody: 1 << 20, MaxUpload: 1 << 20, Grace: 300 * time.Millisecond, MinRate: 1000,
	Idle: 300 * time.Millisecond}

// serveBodies serves routes behind LimitBodies(lim) on a loopback port, with
// the server's own timeouts as the app sets them (no ReadTimeout), until the
// test ends; it returns the address.
func serveBodies(t *testing.T, lim BodyLimits, routes func(e *echo.Echo)) string {
	t.Helper()
	e := echo.New()
	e.Use(LimitBodies(lim))
	routes(e)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// rawPost opens a connection and sends a POST announcing length bytes of body
// and carrying only the first part of them.
func rawPost(t *testing.T, addr, path string, length int, part string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		path, addr, length, part)
	return conn, bufio.NewReader(conn)
}

// readAnswer reads one response within 5 s and returns it with its body.
func readAnswer(t *testing.T, conn net.Conn, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer within 5 s: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("answer's body: %v", err)
	}
	return res, string(b)
}

// A handler that answers without reading the body leaves net/http to read
// what is left of it, and the server has no ReadTimeout: without a deadline set
// before the handler, a client announcing a body it never sends (or sends part
// of) holds the connection for ever. The answer comes at once, not after the
// body's deadline (here 1.5 s), says the connection closes, and the server
// closes it within that deadline.
func TestUnreadBodyAnsweredAndConnectionClosed(t *testing.T) {
	lim := shortBodyLimits
	lim.Grace, lim.Idle = 1500*time.Millisecond, 1500*time.Millisecond
	addr := serveBodies(t, lim, func(e *echo.Echo) {
		e.POST("/ignore", func(c echo.Context) error { return c.String(http.StatusNotFound, "not here") })
	})
	for _, sent := range []string{"", `{"partial":`} {
		t.Run(strconv.Itoa(len(sent))+" of 100 bytes", func(t *testing.T) {
			start := time.Now()
			conn, br := rawPost(t, addr, "/ignore", 100, sent)
			res, body := readAnswer(t, conn, br)
			if took := time.Since(start); took > time.Second {
				t.Errorf("answered after %v: the server read the unread body to its deadline first", took)
			}
			if res.StatusCode != http.StatusNotFound || body != "not here" {
				t.Fatalf("%d %q, want the handler's 404", res.StatusCode, body)
			}
			if !res.Close {
				t.Errorf("the answer to an unread body keeps the connection (Connection: %q)", res.Header.Get("Connection"))
			}
			// The server ends the connection: EOF, not our own 5 s deadline.
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := io.Copy(io.Discard, br); err != nil {
				t.Errorf("the connection is still open 5 s after the answer (Grace and Idle 1.5 s): %v", err)
			} else if n != 0 {
				t.Errorf("%d bytes after the answer", n)
			}
		})
	}
}

// A handler that reads the whole body and then works past the body's
// deadline is not cancelled (once the body is in, the server watches the
// connection for the client going away, and a deadline passing there would
// cancel the request), and the connection is kept for the next request.
func TestReadBodyOutlivesItsDeadline(t *testing.T) {
	addr := serveBodies(t, shortBodyLimits, func(e *echo.Echo) {
		e.POST("/slow", func(c echo.Context) error {
			b, err := io.ReadAll(c.Request().Body)
			if err != nil {
				return c.String(http.StatusBadRequest, err.Error())
			}
			select {
			case <-c.Request().Context().Done():
				return c.String(http.StatusServiceUnavailable, "cancelled")
			case <-time.After(1 * time.Second): // over three times the body's deadline
			}
			return c.String(http.StatusOK, strconv.Itoa(len(b)))
		})
	})
	body := strings.Repeat("x", 100)
	conn, br := rawPost(t, addr, "/slow", len(body), body)
	for i := range 2 {
		if i > 0 { // the same again on the same connection
			fmt.Fprintf(conn, "POST /slow HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body)
		}
		res, got := readAnswer(t, conn, br)
		if res.StatusCode != http.StatusOK || got != "100" {
			t.Fatalf("request %d: %d %q, want 200 100", i+1, res.StatusCode, got)
		}
		if res.Close {
			t.Fatalf("request %d: the answer to a body read whole closes the connection", i+1)
		}
	}
}

// A body sent slowly but keeping the pace (2 KB/s where 1 KB/s is asked) is
// read whole, long after the first deadline (300 ms after the request) has
// passed: the deadline set before the handler moves with the body.
func TestSteadyBodyReadPastFirstDeadline(t *testing.T) {
	addr := serveBodies(t, shortBodyLimits, func(e *echo.Echo) {
		e.POST("/read", func(c echo.Context) error {
			b, err := io.ReadAll(c.Request().Body)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					return c.String(http.StatusRequestTimeout, err.Error())
				}
				return c.String(http.StatusBadRequest, err.Error())
			}
			return c.String(http.StatusOK, strconv.Itoa(len(b)))
		})
	})
	const chunks, size = 12, 200 // 2,400 bytes over 1.2 s
	chunk := strings.Repeat("y", size)
	conn, br := rawPost(t, addr, "/read", chunks*size, chunk)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for range chunks - 1 {
		<-tick.C
		if _, err := io.WriteString(conn, chunk); err != nil {
			t.Fatalf("the server stopped the steady body: %v", err)
		}
	}
	res, got := readAnswer(t, conn, br)
	if res.StatusCode != http.StatusOK || got != strconv.Itoa(chunks*size) {
		t.Fatalf("%d %q, want 200 %d", res.StatusCode, got, chunks*size)
	}
}

// announceBody is a connection that adds a Content-Length to the request it
// writes first, the websocket handshake, and never sends that body: a request
// that LimitBodies puts a deadline on before the upgrade.
type announceBody struct{ net.Conn }

func (c *announceBody) Write(p []byte) (int, error) {
	if i := bytes.Index(p, []byte("\r\n\r\n")); i >= 0 && bytes.HasPrefix(p, []byte("GET ")) {
		q := append(append(append([]byte{}, p[:i]...), "\r\nContent-Length: 5"...), p[i:]...)
		if _, err := c.Conn.Write(q); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// A websocket hijacks its connection; a read deadline set on the request
// (here an upgrade announcing a body) must not end the socket, which lives
// far past it. The upgrader clears the connection's deadlines.
func TestWebsocketOutlivesBodyDeadline(t *testing.T) {
	addr := serveBodies(t, shortBodyLimits, func(e *echo.Echo) {
		up := websocket.Upgrader{}
		e.GET("/ws", func(c echo.Context) error {
			conn, err := up.Upgrade(c.Response(), c.Request(), nil)
			if err != nil {
				return nil // the upgrader answered
			}
			defer conn.Close()
			for {
				mt, msg, err := conn.ReadMessage()
				if err != nil {
					return nil
				}
				if err := conn.WriteMessage(mt, msg); err != nil {
					return nil
				}
			}
		})
	})
	for _, announce := range []bool{false, true} {
		t.Run(fmt.Sprintf("body announced %v", announce), func(t *testing.T) {
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second,
				NetDialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
					conn, err := (&net.Dialer{}).DialContext(ctx, network, a)
					if err != nil || !announce {
						return conn, err
					}
					return &announceBody{conn}, nil
				}}
			conn, _, err := d.Dial("ws://"+addr+"/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			past := time.After(3 * shortBodyLimits.Grace)
			for i := 0; ; i++ {
				msg := fmt.Sprintf("ping %d", i)
				if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, got, err := conn.ReadMessage(); err != nil || string(got) != msg {
					t.Fatalf("echo %d: %q %v", i, got, err)
				}
				if i > 0 {
					return // the second one, past the deadline
				}
				<-past
			}
		})
	}
}

// A body over the limit is answered 413 while the client is still sending the
// rest, and the client reads that answer: the connection is closed gracefully
// (net/http must find the request's own body after the handler to do so),
// not reset under the client's feet.
func TestOverLimitAnswerReachesClientStillSending(t *testing.T) {
	addr := serveBodies(t, DefaultBodyLimits(media.DefaultLimits()), func(e *echo.Echo) {
		e.POST("/read", func(c echo.Context) error {
			if _, err := io.Copy(io.Discard, c.Request().Body); err != nil {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					return c.String(http.StatusRequestEntityTooLarge, "too large")
				}
				return c.String(http.StatusBadRequest, err.Error())
			}
			return c.NoContent(http.StatusNoContent)
		})
	})
	for i := range 3 {
		res, err := http.Post("http://"+addr+"/read", "application/json", strings.NewReader(strings.Repeat("z", 10<<20)))
		if err != nil {
			t.Fatalf("post %d: %v, want the 413", i+1, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("post %d: %d, want 413", i+1, res.StatusCode)
		}
	}
}

package handlers

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"sessiondesk/auth"
	"sessiondesk/live"
	"sessiondesk/store"
	"sessiondesk/views"
)

const (
	wsWriteWait  = 10 * time.Second    // a browser that takes longer to accept a frame is dropped
	wsPongWait   = 60 * time.Second    // a browser silent for longer is gone
	wsPingPeriod = wsPongWait * 9 / 10 // ping before the pong deadline passes
	wsBatch      = 200                 // events rendered into one frame at most
	wsReadLimit  = 4 << 10             // browsers send nothing but control frames
)

// Close codes after which the htmx ws extension reconnects (it does so after
// 1006, 1011, 1012 and 1013 only).
const (
	closeRestart  = 1012 // the server is shutting down
	closeTryAgain = 1013 // the sign-in expired: come back through the proxy
)

// frameFunc renders the events (already after the cursor) into one frame of
// out-of-band fragments; after is called once the frame was written.
type frameFunc func(ctx context.Context, r *store.Reader, events []store.Event) (frame []templ.Component, after func(), err error)

// checkOrigin accepts a websocket only from pages of this inbox: the Origin
// must be the public URL's, or, while the public URL is on loopback, any
// loopback origin on the same port (localhost and 127.0.0.1 are the same laptop).
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	pub := s.PublicURL
	if u.Scheme == pub.Scheme && u.Host == pub.Host {
		return true
	}
	return s.LocalMode && u.Scheme == pub.Scheme && isLoopbackName(u.Hostname()) &&
		isLoopbackName(pub.Hostname()) && u.Port() == pub.Port()
}

func isLoopbackName(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// newUpgrader is the websocket upgrader of every socket. Idle sockets are most
// of them: they keep a small read buffer (browsers send only control frames)
// and no write buffer, which comes from the shared pool for each write.
func (s *Server) newUpgrader() websocket.Upgrader {
	return websocket.Upgrader{
		CheckOrigin:     s.checkOrigin,
		ReadBufferSize:  512,
		WriteBufferSize: 4 << 10,
		WriteBufferPool: &sync.Pool{},
	}
}

// stream upgrades the request and sends frames from the event after `after`
// on, replaying first and then following the broker, until the browser goes
// away or the server shuts down. The sandbox phone uses it (one goroutine and
// one read per socket per commit is fine for a developer's phone); the inbox
// pages go through the live hub.
func (s *Server) stream(c echo.Context, after int64, frame frameFunc) error {
	if !s.checkOrigin(c.Request()) {
		return echo.NewHTTPError(http.StatusForbidden, "This websocket only accepts pages of this inbox (Origin mismatch).")
	}
	// Count the stream before upgrading, so Close waits for it.
	s.streams.Add(1)
	defer s.streams.Done()
	conn, err := s.upgrader.Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		return nil // the upgrader has answered already
	}
	defer conn.Close()

	// Subscribe before the first read of the events table, so that nothing
	// committed in between can be missed.
	sub := s.Broker.Subscribe()
	defer sub.Close()

	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	go readPump(conn, cancel)

	ping := time.NewTicker(wsPingPeriod)
	defer ping.Stop()
	// When the proxy's signed assertion expires, the page must come back through
	// the proxy to be identified again: close with 1013 (try again later), which
	// the htmx ws extension answers by reconnecting.
	var expired <-chan time.Time
	if id, ok := c.Get("identity").(auth.Identity); ok && !id.ExpiresAt.IsZero() {
		t := time.NewTimer(time.Until(id.ExpiresAt))
		defer t.Stop()
		expired = t.C
	}
	cursor := after
	for {
		if cursor, err = s.catchUp(ctx, conn, cursor, frame); err != nil {
			if ctx.Err() == nil {
				s.Log.Info("websocket closed", "err", err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.stopping:
			// Hijacked connections outlive http.Server.Shutdown: close them here and
			// ask the page to come back once the server is up again.
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(closeRestart, "server restarting"), time.Now().Add(time.Second))
			return nil
		case <-expired:
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(closeTryAgain, "sign-in expired"), time.Now().Add(time.Second))
			return nil
		case <-sub.C:
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteWait)); err != nil {
				return nil
			}
		}
	}
}

// catchUp sends every event after cursor, a batch per frame, and returns the new cursor.
func (s *Server) catchUp(ctx context.Context, conn *websocket.Conn, cursor int64, frame frameFunc) (int64, error) {
	for {
		var (
			buf   bytes.Buffer
			last  int64
			after func()
		)
		err := s.Store.Read(ctx, func(r *store.Reader) error {
			events, err := r.EventsAfter(ctx, cursor, wsBatch)
			if err != nil || len(events) == 0 {
				return err
			}
			last = events[len(events)-1].ID
			comps, a, err := frame(ctx, r, events)
			if err != nil {
				return err
			}
			after = a
			for _, comp := range append(comps, views.LiveCursor(last)) {
				if err := comp.Render(ctx, &buf); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return cursor, err
		}
		if last == 0 {
			return cursor, nil
		}
		_ = conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
		if err := conn.WriteMessage(websocket.TextMessage, buf.Bytes()); err != nil {
			return cursor, err
		}
		cursor = last
		if after != nil {
			after()
		}
	}
}

// readPump reads (and drops) what the browser sends, which keeps the pong
// handler running, and cancels the stream when the connection ends.
func readPump(conn *websocket.Conn, cancel context.CancelFunc) {
	defer cancel()
	conn.SetReadLimit(wsReadLimit)
	_ = conn.SetReadDeadline(time.Now().Add(wsPongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(wsPongWait)) })
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
	}
}

// afterParam reads the event id a page resumes after.
func afterParam(c echo.Context) (int64, error) {
	v := c.QueryParam("after")
	if v == "" {
		return 0, echo.NewHTTPError(http.StatusBadRequest, "after: the last event id the page saw is required")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, echo.NewHTTPError(http.StatusBadRequest, "after: want a non-negative event id")
	}
	return n, nil
}

// inboxSocket hands an inbox page's websocket to the live hub: it replays
// what the page missed after `after` (one read) and then gets only the deltas
// of its view: changed list rows, and the open conversation's new messages,
// status changes, panel and composer state.
func (s *Server) inboxSocket(c echo.Context) error {
	after, err := afterParam(c)
	if err != nil {
		return err
	}
	viewing, _ := strconv.ParseInt(c.QueryParam("conversation"), 10, 64)
	if !s.checkOrigin(c.Request()) {
		return echo.NewHTTPError(http.StatusForbidden, "This websocket only accepts pages of this inbox (Origin mismatch).")
	}
	opts := live.PageOptions{Viewing: max(viewing, 0), After: after}
	if id, ok := c.Get("identity").(auth.Identity); ok {
		opts.ExpiresAt = id.ExpiresAt
	}
	// Count the page before upgrading, so Close waits for it.
	s.streams.Add(1)
	opts.Done = s.streams.Done
	conn, err := s.upgrader.Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		s.streams.Done()
		return nil // the upgrader has answered already
	}
	if err := s.hub.Serve(c.Request().Context(), conn, opts); err != nil {
		s.Log.Info("websocket not served", "err", err)
	}
	return nil
}

// liveViews draws the hub's shared fragments with the views. Nothing in them
// depends on who looks: the chrome carries only the base path.
type liveViews struct{ s *Server }

func (v liveViews) chrome() views.Chrome { return views.Chrome{BasePath: v.s.BasePath} }

func (v liveViews) Row(ctx context.Context, w io.Writer, row store.ListRow, now time.Time) error {
	return views.ConversationRowItem(v.chrome(), v.s.rowView(row, now)).Render(ctx, w)
}

func (v liveViews) ListDelta(ctx context.Context, w io.Writer, rows []byte) error {
	return views.ListDelta(rows).Render(ctx, w)
}

func (v liveViews) Message(ctx context.Context, w io.Writer, m store.Message, appended bool) error {
	if appended {
		return views.ThreadAppend(v.s.messageView(m)).Render(ctx, w)
	}
	return views.MessageBubble(v.s.messageView(m), true).Render(ctx, w)
}

func (v liveViews) State(ctx context.Context, w io.Writer, cv store.Conversation, now time.Time) error {
	if err := views.SessionPanel(v.chrome(), v.s.panel(cv, now), true).Render(ctx, w); err != nil {
		return err
	}
	return views.ComposerActions(v.chrome(), v.s.composer(cv, now), true).Render(ctx, w)
}

func (v liveViews) Cursor(ctx context.Context, w io.Writer, eventID int64) error {
	return views.LiveCursor(eventID).Render(ctx, w)
}

func (v liveViews) Reload(ctx context.Context, w io.Writer) error {
	return views.LiveReload().Render(ctx, w)
}

package handlers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"sessiondesk/auth"
	"sessiondesk/config"
	"sessiondesk/live"
	"sessiondesk/session"
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
	closeTryAgain = 1013 // the sign-in expired or must be checked again: come back through the proxy
)

// ReloadFrame is the whole frame sent to a page too far behind to catch up
// event by event; the page's script reloads on it. It is a fixed string that
// no rendered frame can equal (those always end with the live cursor).
const ReloadFrame = `<div id="live-reload" data-live-reload="reload"></div>`

// LiveOptions tune the websockets; a zero value means the default.
type LiveOptions struct {
	// MaxPerAgent caps the open websockets of one agent (default 20); one
	// more is answered 429 before the upgrade.
	MaxPerAgent int
	// ReplayCap is how many events a page may be behind and still be
	// brought up to date frame by frame (default 1,000); further behind, it
	// gets ReloadFrame and reloads.
	ReplayCap int64
	// Recheck is how often an open websocket checks that its agent may still
	// use the inbox (default a minute).
	Recheck time.Duration
	// Reauth closes every websocket at each Recheck with 1013, so that the
	// page comes back through the proxy and is signed in afresh: header mode,
	// where the proxy is the only one who knows a user was revoked.
	Reauth bool
}

func (o LiveOptions) withDefaults() LiveOptions {
	if o.MaxPerAgent <= 0 {
		o.MaxPerAgent = 20
	}
	if o.ReplayCap <= 0 {
		o.ReplayCap = 1000
	}
	if o.Recheck <= 0 {
		o.Recheck = time.Minute
	}
	return o
}

// frameFunc renders the events (already after the cursor) into one frame of
// out-of-band fragments; after is called once the frame was written.
type frameFunc func(ctx context.Context, r *store.Reader, events []store.Event) (frame []templ.Component, after func(), err error)

// checkOrigin accepts a websocket only from pages of this inbox: the Origin
// must be the public URL's, or, while the public URL is on loopback, any
// loopback origin on the same port (localhost and 127.0.0.1 are the same laptop).
// Origins are compared as browsers mean them, by scheme, host name in any case
// and effective port: a public URL configured as https://Inbox.Example.com:443
// is the origin https://inbox.example.com, and refusing it would refuse every
// live page of the inbox. Anything else, an empty Origin or "null" included, is
// refused.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return false // an origin is scheme://host[:port] and nothing more
	}
	pub := s.PublicURL
	if !strings.EqualFold(u.Scheme, pub.Scheme) ||
		config.EffectivePort(u.Scheme, u.Port()) != config.EffectivePort(pub.Scheme, pub.Port()) {
		return false
	}
	if strings.EqualFold(u.Hostname(), pub.Hostname()) {
		return true
	}
	return s.LocalMode && isLoopbackName(strings.ToLower(u.Hostname())) && isLoopbackName(strings.ToLower(pub.Hostname()))
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
// on (or from now on when after is negative), replaying first and then
// following the broker, until the browser goes away, the server shuts down or
// the agent may no longer use the inbox. The sandbox phone uses it (one
// goroutine and one read per socket per commit is fine for a developer's
// phone); the inbox pages go through the live hub.
func (s *Server) stream(c echo.Context, after int64, frame frameFunc) error {
	if !s.checkOrigin(c.Request()) {
		return echo.NewHTTPError(http.StatusForbidden, "This websocket only accepts pages of this inbox (Origin mismatch).")
	}
	opts := s.Live.withDefaults()
	agent := currentAgent(c)
	release, err := s.takeSocket(agent.ID, opts.MaxPerAgent)
	if err != nil {
		return err
	}
	defer release()
	// Count the stream before upgrading, so Close waits for it.
	s.streams.Add(1)
	defer s.streams.Done()
	conn, err := s.upgrader.Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		return nil // the upgrader has answered already
	}
	defer conn.Close()
	closeWith := func(code int, reason string) {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	}

	// Subscribe before the first read of the events table, so that nothing
	// committed in between can be missed.
	sub := s.Broker.Subscribe()
	defer sub.Close()

	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	go readPump(conn, cancel)

	cursor, reload, err := s.startCursor(ctx, after, opts.ReplayCap)
	if err != nil {
		s.Log.Error("websocket start", "err", err)
		closeWith(websocket.CloseInternalServerErr, "try again")
		return nil
	}
	if reload {
		// Re-rendering thousands of events would cost more than the page
		// itself: it reloads, and follows from now on.
		_ = conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
		if err := conn.WriteMessage(websocket.TextMessage, []byte(ReloadFrame)); err != nil {
			return nil
		}
	}

	ping := time.NewTicker(wsPingPeriod)
	defer ping.Stop()
	recheck := time.NewTicker(opts.Recheck)
	defer recheck.Stop()
	// When the proxy's signed assertion expires, the page must come back through
	// the proxy to be identified again: close with 1013 (try again later), which
	// the htmx ws extension answers by reconnecting.
	var expired <-chan time.Time
	if id, ok := c.Get("identity").(auth.Identity); ok && !id.ExpiresAt.IsZero() {
		t := time.NewTimer(time.Until(id.ExpiresAt))
		defer t.Stop()
		expired = t.C
	}
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
			closeWith(closeRestart, "server restarting")
			return nil
		case <-expired:
			closeWith(closeTryAgain, "sign-in expired")
			return nil
		case <-recheck.C:
			if opts.Reauth {
				closeWith(closeTryAgain, "sign-in check")
				return nil
			}
			if ok, err := s.stillAllowed(ctx, agent); err != nil || !ok {
				if err != nil && ctx.Err() == nil {
					s.Log.Warn("websocket: agent re-check", "agent", agent.ID, "err", err)
				}
				closeWith(closeTryAgain, "access changed")
				return nil
			}
		case <-sub.C:
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteWait)); err != nil {
				return nil
			}
		}
	}
}

// writeReloadFrame tells a page to reload, then closes its socket with 1013:
// the reloaded page connects afresh.
func writeReloadFrame(conn *websocket.Conn) {
	defer conn.Close()
	deadline := time.Now().Add(wsWriteWait)
	_ = conn.SetWriteDeadline(deadline)
	if conn.WriteMessage(websocket.TextMessage, []byte(ReloadFrame)) == nil {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeTryAgain, "reload"), deadline)
	}
}

// startCursor is the event a socket starts after: the page's, or the last one
// when the page names none (integrations follow from now on). reload says the
// page is further behind than replayCap events: it should reload instead.
func (s *Server) startCursor(ctx context.Context, after, replayCap int64) (cursor int64, reload bool, err error) {
	var last int64
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		last, err = r.LastEventID(ctx)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("last event: %w", err)
	}
	switch {
	case after < 0:
		return last, false, nil
	case last-after > replayCap:
		return last, true, nil
	default:
		return after, false, nil
	}
}

// takeSocket counts one more open socket of the agent, unless it has max
// already (a 429); release uncounts it.
func (s *Server) takeSocket(agentID int64, max int) (release func(), err error) {
	s.socketsMu.Lock()
	defer s.socketsMu.Unlock()
	if s.sockets == nil {
		s.sockets = map[int64]int{}
	}
	if s.sockets[agentID] >= max {
		return nil, echo.NewHTTPError(http.StatusTooManyRequests,
			fmt.Sprintf("You have %d live pages open already, the most one agent may have: close some tabs.", max))
	}
	s.sockets[agentID]++
	return func() {
		s.socketsMu.Lock()
		defer s.socketsMu.Unlock()
		if s.sockets[agentID]--; s.sockets[agentID] <= 0 {
			delete(s.sockets, agentID)
		}
	}, nil
}

// stillAllowed says whether the agent a socket was opened for is still in the
// store with the same role. The role follows the login source on every
// request (authenticate), so a user whose groups changed since is shown the
// door here, and the page's reconnect is signed in afresh.
func (s *Server) stillAllowed(ctx context.Context, a store.Agent) (bool, error) {
	var ok bool
	err := s.Store.Read(ctx, func(r *store.Reader) error {
		role, found, err := r.AgentRole(ctx, a.ID)
		ok = found && role == a.Role
		return err
	})
	return ok, err
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

// afterParam reads the event id a page resumes after; -1 when it names none,
// which means "from now on".
func afterParam(c echo.Context) (int64, error) {
	v := c.QueryParam("after")
	if v == "" {
		return -1, nil
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
	lo := s.Live.withDefaults()
	agent := currentAgent(c)
	release, err := s.takeSocket(agent.ID, lo.MaxPerAgent)
	if err != nil {
		return err
	}
	// "From now" is the store's newest event, which the hub may not have sent
	// yet: the page joins once it has, and misses nothing after. A page
	// further behind the newest event than the cap reloads instead.
	after, reload, err := s.startCursor(c.Request().Context(), after, lo.ReplayCap)
	if err != nil {
		release()
		return err
	}
	if reload {
		defer release()
		if conn, err := s.upgrader.Upgrade(c.Response(), c.Request(), nil); err == nil {
			writeReloadFrame(conn)
		}
		return nil
	}
	opts := live.PageOptions{Viewing: max(viewing, 0), After: after, Recheck: lo.Recheck,
		Agent: agent.ID, AgentName: agent.Name}
	if !lo.Reauth {
		// Header mode leaves Allowed nil: the page is sent back through the
		// proxy at every re-check, the only one who knows a user was revoked.
		opts.Allowed = func(ctx context.Context) bool {
			ok, err := s.stillAllowed(ctx, agent)
			if err != nil && ctx.Err() == nil {
				s.Log.Warn("websocket: agent re-check", "agent", agent.ID, "err", err)
			}
			return ok && err == nil
		}
	}
	if id, ok := c.Get("identity").(auth.Identity); ok {
		opts.ExpiresAt = id.ExpiresAt
	}
	// Count the page before upgrading, so Close waits for it.
	s.streams.Add(1)
	opts.Done = func() { release(); s.streams.Done() }
	conn, err := s.upgrader.Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		opts.Done()
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

func (v liveViews) State(ctx context.Context, w io.Writer, cv store.Conversation, history []session.Session, now time.Time) error {
	p := v.s.panelView(cv, history, now)
	// The contact's flags and last consent (paid messages) are read apart:
	// the hub's batch does not carry them.
	if err := v.s.Store.Read(ctx, func(r *store.Reader) error {
		var err error
		p.Paid, err = v.s.paidPanel(ctx, r, cv.ID)
		return err
	}); err != nil {
		return err
	}
	if err := views.SessionPanel(v.chrome(), p, true).Render(ctx, w); err != nil {
		return err
	}
	if err := views.SessionStrip(v.chrome(), p, true).Render(ctx, w); err != nil {
		return err
	}
	if err := views.ThreadStatusBar(threadStatus(cv), true).Render(ctx, w); err != nil {
		return err
	}
	return views.ComposerActions(v.chrome(), v.s.composer(cv, now), true).Render(ctx, w)
}

func (v liveViews) Cursor(ctx context.Context, w io.Writer, eventID int64) error {
	return views.LiveCursor(eventID).Render(ctx, w)
}

func (v liveViews) Reload(_ context.Context, w io.Writer) error {
	_, err := io.WriteString(w, ReloadFrame)
	return err
}

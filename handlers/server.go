// Package handlers is the HTTP face of Sessiondesk: pages, htmx fragments, the
// JSON API, the sandbox phone and the websocket. Handlers stay thin: they parse
// the request, call the store, and render a view or JSON. Errors are mapped to
// HTTP in one place (errorHandler).
package handlers

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
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
	"sessiondesk/channel/routee"
	"sessiondesk/channel/sandbox"
	"sessiondesk/live"
	"sessiondesk/media"
	"sessiondesk/media/upload"
	"sessiondesk/metrics"
	"sessiondesk/session"
	"sessiondesk/store"
	"sessiondesk/views"
)

// Deps is what the handlers need; main builds it.
type Deps struct {
	Store  *store.Store
	Broker *live.Broker
	Auth   auth.Authenticator
	// Roles maps the login source's groups to roles (agent, admin).
	Roles     map[string]string
	Log       *slog.Logger
	PublicURL *url.URL
	// Phone is the sandbox provider; nil when a real provider is configured.
	Phone     *sandbox.Provider
	LocalMode bool // the local dev login is in use: show the banner
	// WebhookSecret is the secret path segment of the provider's webhooks.
	WebhookSecret string
	// BasePath prefixes every link and redirect when the proxy serves the inbox
	// under a sub-path; LogoutURL is the proxy's sign-out.
	BasePath, LogoutURL string
	// Static serves /static/.
	Static http.Handler
	// Media keeps attachment bytes; Limits are what an attachment may be.
	Media  *media.Store
	Limits media.Limits
	// LocalHosts are the only Host headers the local dev login answers
	// ("127.0.0.1:8080", "localhost:8080", "[::1]:8080"), so that a page of
	// another site that rebinds its name to 127.0.0.1 gets nothing. Unused
	// outside LocalMode.
	LocalHosts []string
	// Live tunes the websockets; zero values are the defaults.
	Live LiveOptions
	// ExpiringWithin is how close to its end a session shows in the Expiring
	// view (0: store.DefaultExpiringWithin).
	ExpiringWithin time.Duration
	// Metrics counts the webhooks' messages, statuses, prices and errors;
	// nil counts nothing.
	Metrics *metrics.Metrics
	// Reconciler runs "Check with Routee"; nil when unavailable.
	Reconciler *routee.Reconciler
}

// Server holds the handlers' dependencies.
type Server struct {
	Deps
	agents sync.Map // login -> store.Agent, so a known agent costs no write per request

	stopping chan struct{} // closed by Close: websockets end
	stopOnce sync.Once
	streams  sync.WaitGroup // open websockets

	socketsMu sync.Mutex
	sockets   map[int64]int // agent id -> open websockets

	upgrader websocket.Upgrader
	hub      *live.Hub // the inbox pages' fan-out
	stopHub  context.CancelFunc
	hubDone  chan struct{}

	// pageBuffers holds the buffers pages are rendered into (*bytes.Buffer):
	// a page is rendered whole before anything is sent, and growing a fresh
	// buffer to an inbox page's 55-75 KB made twice that in garbage per request.
	pageBuffers sync.Pool
}

// New returns the handlers for d and starts the live hub of the inbox pages;
// Close stops it.
func New(d Deps) *Server {
	s := &Server{Deps: d, stopping: make(chan struct{}), hubDone: make(chan struct{})}
	s.upgrader = s.newUpgrader()
	s.hub = live.NewHub(live.HubOptions{Store: d.Store, Broker: d.Broker, Renderer: liveViews{s}, Log: d.Log,
		ReplayCap: d.Live.withDefaults().ReplayCap, History: historyLimit + 1, Notes: liveViews{s},
		ExpiringWithin: d.ExpiringWithin})
	ctx, cancel := context.WithCancel(context.Background())
	s.stopHub = cancel
	go func() {
		defer close(s.hubDone)
		if err := s.hub.Run(ctx); err != nil {
			s.Log.Error("live hub stopped", "err", err)
		}
	}()
	return s
}

// Hub is the inbox pages' fan-out (for its counters).
func (s *Server) Hub() *live.Hub { return s.hub }

// Close ends every open websocket (with a close code that makes the page
// reconnect) and waits for them to finish. http.Server.Shutdown does not wait
// for hijacked connections, so call this before closing the store.
func (s *Server) Close() {
	s.stopOnce.Do(func() { close(s.stopping) })
	s.stopHub()
	<-s.hubDone
	s.streams.Wait()
}

// Register adds every route to e.
func (s *Server) Register(e *echo.Echo) {
	e.HTTPErrorHandler = s.errorHandler
	if s.LocalMode {
		e.Pre(s.checkLocalHost)
	}
	e.GET("/healthz", s.health)
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", s.Static)))
	e.GET("/favicon.ico", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })

	// The provider's callbacks: outside the login, guarded by the secret path.
	hooks := e.Group("/webhooks/routee/:secret", s.checkWebhookSecret)
	hooks.POST("/inbound", s.routeeInbound)
	hooks.POST("/status", s.routeeStatus)
	// Outbound attachments, fetched by the provider: unguessable, expiring URLs.
	e.GET("/media/:token", s.publicMedia)

	app := e.Group("", s.authenticate)
	app.GET("/", s.inbox)
	app.GET("/c/:id", s.inbox)
	app.GET("/list", s.listFragment)
	app.POST("/c/:id/messages", s.sendForm)
	app.POST("/c/:id/read", s.markRead)
	app.POST("/c/:id/unread", s.markUnread)
	app.POST("/c/:id/status", s.statusForm)
	app.POST("/c/:id/assignee", s.assigneeForm)
	app.GET("/c/:id/state", s.conversationState)
	app.POST("/c/:id/contact", s.contactForm)
	app.POST("/c/:id/messages/:mid/retry", s.retryForm)
	app.POST("/c/:id/messages/:mid/confirm-arrived", s.confirmArrivedForm)
	app.POST("/c/:id/messages/:mid/resend", s.resendForm)
	app.GET("/attachments/:aid", s.attachment)
	app.GET("/attachments/:aid/:thumb", s.attachment)
	app.POST("/attachments/:aid/retry", s.retryDownload)
	app.GET("/ws", s.inboxSocket)
	app.POST("/me/preferences", s.savePrefsForm)

	api := app.Group("/api/v1")
	api.GET("/conversations", s.apiConversations)
	api.GET("/conversations/:id", s.apiConversation)
	api.PATCH("/conversations/:id", s.apiPatchConversation)
	api.GET("/conversations/:id/messages", s.apiMessages)
	api.POST("/conversations/:id/messages", s.apiSend)
	api.POST("/conversations/:id/messages/:mid/retry", s.apiRetry)
	api.POST("/conversations/:id/messages/:mid/confirm-arrived", s.apiConfirmArrived)
	api.POST("/conversations/:id/messages/:mid/resend", s.apiResend)
	api.POST("/conversations/:id/read", s.apiMarkRead)
	api.POST("/conversations/:id/unread", s.apiMarkUnread)
	api.GET("/me/preferences", s.apiGetPrefs)
	api.PATCH("/me/preferences", s.apiPatchPrefs)
	s.registerNotes(app, api)
	api.GET("/contacts/:id", s.apiContact)
	api.PATCH("/contacts/:id", s.apiEditContact)
	s.registerAdmin(app)
	s.registerCosts(app, api)
	s.registerSearch(app, api)
	s.registerReports(app)
	s.registerPaid(app, api)

	if s.Phone != nil {
		// The fake Routee answers the Routee client like the real one would:
		// with its own OAuth, not the agents' login.
		e.Any(sandbox.MountPath+"/*", echo.WrapHandler(s.Phone.Handler()))
		sb := app.Group("/sandbox")
		sb.GET("", s.sandboxPage)
		sb.POST("/clients", s.sandboxClient)
		sb.POST("/send", s.sandboxSendForm)
		sb.POST("/messages", s.sandboxAPIMessage)
		sb.POST("/messages/:id/seen", s.sandboxSeen)
		sb.POST("/not-viber", s.sandboxNotViber)
		sb.GET("/ws", s.sandboxSocket)
	}
}

// checkLocalHost answers 421 to a request for another host name than this
// machine's while the local dev login is in use. The dev login trusts every
// loopback connection, and a browser also connects over loopback to a site
// whose DNS name was rebound to 127.0.0.1, with that site's pages being
// same-origin to it: only the Host header tells them apart. The provider's
// paths are exempt: they carry their own credential (the webhook secret, an
// unguessable media token), never use the dev login, and Routee reaches them
// through a tunnel's host name when a developer points it at a laptop.
func (s *Server) checkLocalHost(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if strings.HasPrefix(r.URL.Path, "/webhooks/") || strings.HasPrefix(r.URL.Path, "/media/") {
			return next(c)
		}
		for _, h := range s.LocalHosts {
			if strings.EqualFold(r.Host, h) {
				return next(c)
			}
		}
		return echo.NewHTTPError(http.StatusMisdirectedRequest,
			"This local inbox only answers to its own address (such as "+s.PublicURL.Host+"), not to "+
				strconv.Quote(r.Host)+": open it at that address.")
	}
}

// authenticate resolves the agent on every request, so that revoking access at
// the login source takes effect at once.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		// Pages and answers hold clients' personal data: no cache keeps them.
		c.Response().Header().Set("Cache-Control", "no-store")
		// Integrations present an API token instead of going through the proxy,
		// on the JSON API only.
		if strings.HasPrefix(c.Request().URL.Path, "/api/") {
			if a, ok, err := s.tokenAgent(c.Request()); ok {
				if err != nil {
					return err
				}
				c.Set("agent", a)
				return next(c)
			}
		}
		id, err := s.Auth.Authenticate(c.Request())
		if err != nil {
			return echo.NewHTTPError(http.StatusUnauthorized, "Sign in first: "+err.Error())
		}
		// Agents exist only when a group maps to a role: an unmapped user gets no
		// default role (sso.md).
		role, ok := auth.RoleFor(id.Groups, s.Roles)
		if !ok || strings.HasPrefix(id.Login, "token:") { // token: logins are the API tokens' own
			return echo.NewHTTPError(http.StatusForbidden,
				"Your account is signed in but is in no group that has a role in Sessiondesk; ask an admin.")
		}
		a, err := s.agent(c.Request().Context(), id, role)
		if err != nil {
			return err
		}
		c.Set("agent", a)
		c.Set("identity", id)
		return next(c)
	}
}

// agent returns the stored agent for an identity, creating it on first sight
// and following name, role and login changes at the login source. A login
// bound to another person (store.SignIn) is refused.
func (s *Server) agent(ctx context.Context, id auth.Identity, role string) (store.Agent, error) {
	// Keyed by subject and login: a cached agent must never answer for
	// another person presenting the same login.
	key := id.Subject + "\x00" + id.Login
	if v, ok := s.agents.Load(key); ok {
		if a := v.(store.Agent); a.Name == id.Name && a.Role == role {
			return a, nil
		}
	}
	a, err := s.Store.SignIn(ctx, store.SignIn{Login: id.Login, Subject: id.Subject, Name: id.Name, Role: role})
	if errors.Is(err, store.ErrLoginTaken) {
		return store.Agent{}, echo.NewHTTPError(http.StatusForbidden, "Your sign-in service gives you the login "+id.Login+
			", which Sessiondesk already knows as another person's. Ask an admin: if it is yours, they can release it with `sessiondesk unbind-login`.")
	}
	if err != nil {
		return store.Agent{}, err
	}
	s.agents.Store(key, a)
	return a, nil
}

// path prefixes an absolute path of the inbox with the base path.
func (s *Server) path(p string) string { return s.BasePath + p }

func currentAgent(c echo.Context) store.Agent {
	a, _ := c.Get("agent").(store.Agent)
	return a
}

func (s *Server) chrome(c echo.Context, title string) views.Chrome {
	return views.Chrome{
		Title:     title,
		AgentName: currentAgent(c).Name,
		LocalMode: s.LocalMode,
		Sandbox:   s.Phone != nil,
		IsAdmin:   currentAgent(c).Role == auth.RoleAdmin,
		CanReport: auth.ReadsReports(currentAgent(c).Role),
		BasePath:  s.BasePath,
		LogoutURL: s.LogoutURL,
		Budget:    s.budgetLine(c),
	}
}

func (s *Server) health(c echo.Context) error {
	err := s.Store.Read(c.Request().Context(), func(r *store.Reader) error {
		_, err := r.LastEventID(c.Request().Context())
		return err
	})
	if err != nil {
		s.Log.Error("health check failed", "err", err)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "live_pages": s.hub.Pages()})
}

// render writes a component into a buffer first, so that a failed render still
// becomes a clean error page rather than half a page.
func (s *Server) render(c echo.Context, status int, comps ...templ.Component) error {
	buf, _ := s.pageBuffers.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledPage { // a rare huge page is not kept for every later one
			s.pageBuffers.Put(buf)
		}
	}()
	for _, comp := range comps {
		if err := comp.Render(c.Request().Context(), buf); err != nil {
			return err
		}
	}
	// HTMLBlob has written every byte when it returns: the buffer may go back.
	return c.HTMLBlob(status, buf.Bytes())
}

// maxPooledPage is the largest render buffer kept for reuse.
const maxPooledPage = 1 << 20

// apiError is the JSON body of every API error.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the refused field of a request, when one is to blame.
	Field string `json:"field,omitempty"`
}

// errorHandler maps errors to HTTP in one place: a refusal by the rules to 409 or
// 422 with its code, a missing row to 404, bad input to 400/422, anything else
// to a 500 that shows nothing internal.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body := http.StatusInternalServerError, apiError{Code: "internal", Message: "Something went wrong on our side; it has been logged."}
	var (
		refusal *session.Refusal
		invalid *store.InvalidError
		he      *echo.HTTPError
		upErr   *upload.Error
	)
	switch {
	case errors.As(err, &upErr):
		status, body = upErr.Status, apiError{Code: upErr.Code, Message: upErr.Message}
	case errors.As(err, &refusal):
		status, body = refusalStatus(refusal.Code), apiError{Code: string(refusal.Code), Message: refusal.Message}
	case errors.Is(err, store.ErrNotFound):
		status, body = http.StatusNotFound, apiError{Code: "not_found", Message: "No such conversation or message."}
	case errors.As(err, &invalid):
		status, body = http.StatusUnprocessableEntity, apiError{Code: "invalid", Message: invalid.Message, Field: invalid.Field}
	case errors.As(err, &he):
		status = he.Code
		body = apiError{Code: codeForStatus(he.Code), Message: http.StatusText(he.Code)}
		if m, ok := he.Message.(string); ok {
			body.Message = m
		}
	}
	if status >= 500 {
		s.Log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if wantsJSON(c) {
		_ = c.JSON(status, body)
		return
	}
	if err := s.render(c, status, views.ErrorPage(s.chrome(c, http.StatusText(status)), status, body.Message)); err != nil {
		s.Log.Error("render error page", "err", err)
		_ = c.String(status, body.Message)
	}
}

// refusalStatus: a send the rules refuse because of the conversation's state is
// a conflict (409); one refused for what was composed is unprocessable (422).
func refusalStatus(code session.Code) int {
	switch code {
	case session.TextTooLong, session.InvalidType, session.FileRejected:
		return http.StatusUnprocessableEntity
	default:
		return http.StatusConflict
	}
}

func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	default:
		return "error"
	}
}

func wantsJSON(c echo.Context) bool {
	p := c.Request().URL.Path
	return strings.HasPrefix(p, "/api/") || p == "/sandbox/messages" || p == "/healthz"
}

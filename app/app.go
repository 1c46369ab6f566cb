// Package app assembles Sessiondesk: the store, the live broker, the channel
// with its outbox, and the HTTP server. main runs it; tests start it whole on
// port 0 with a temporary data folder and their own clock.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"sessiondesk/auth"
	"sessiondesk/channel"
	"sessiondesk/channel/routee"
	"sessiondesk/channel/sandbox"
	"sessiondesk/config"
	"sessiondesk/handlers"
	"sessiondesk/live"
	"sessiondesk/media"
	"sessiondesk/metrics"
	"sessiondesk/static"
	"sessiondesk/store"
)

// Options are what a caller injects besides the configuration.
type Options struct {
	// Now is the clock of every decision (S10); nil means time.Now.
	Now func() time.Time
	// Log receives the structured logs; nil discards them.
	Log *slog.Logger
	// Outbox tunes retries; zero values are the production defaults.
	Outbox channel.OutboxOptions
	// Listener, when set, is served instead of listening on the configured
	// address (tests that must know the public URL before starting).
	Listener net.Listener
	// MediaAllow are URL prefixes the client media downloader may fetch from
	// although they are plain http or on a private address (a test's fake
	// provider). The sandbox's own media path is always allowed.
	MediaAllow []string
	// Live tunes the websockets (replay cap, re-check interval); the socket
	// cap per agent comes from the configuration.
	Live handlers.LiveOptions
	// Bodies bound request bodies in size and time; zero fields take
	// handlers.DefaultBodyLimits.
	Bodies handlers.BodyLimits
	// SnoozeEvery is the longest the snooze waker sleeps (default 30 s);
	// tests with a manual clock make it short.
	SnoozeEvery time.Duration
	// RemindEvery is how often sessions about to close unanswered are looked
	// for (default 30 s).
	RemindEvery time.Duration
}

// Unused attachment bytes (an upload refused, a download abandoned) are swept
// this often, once they are older than mediaGrace: far longer than any upload
// takes from its last byte to its acceptance.
const (
	sweepEvery = time.Hour
	mediaGrace = time.Hour
)

// App is one running Sessiondesk.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	Store    *store.Store
	Broker   *live.Broker
	handlers *handlers.Server
	outbox   *channel.Outbox
	// reconciler runs "Check with Routee" and the stuck-message job.
	reconciler *routee.Reconciler
	server     *http.Server
	ln         net.Listener
	publicURL  *url.URL
	// phone is the sandbox provider; nil with a real provider.
	phone         *sandbox.Provider
	webhookSecret string
	auth          auth.Authenticator
	// outbound carries every request the inbox makes (to the provider, the
	// fake's callbacks, media downloads), so that shutdown can close its idle
	// connections: one left unused would hold http.Server.Shutdown for 5 s when
	// the inbox talks to itself (the sandbox).
	outbound    *http.Transport
	media       *media.Store
	limits      media.Limits
	bodies      handlers.BodyLimits
	downloader  *channel.Downloader
	fetcher     *media.Fetcher
	live        handlers.LiveOptions
	remindEvery time.Duration
	snooze      time.Duration
	// lock keeps a second inbox, or a restore, off the data folder until Run ends.
	lock *store.FolderLock
	// metrics is the inbox's Prometheus registry, served at /metrics.
	metrics *metrics.Metrics
}

// New opens the store, adds the demo clients to a new sandbox database, and
// binds the listen address (so Addr is known before Run, even with port 0).
func New(ctx context.Context, cfg config.Config, opts Options) (*App, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lock, err := store.LockDataFolder(cfg.DataDir)
	if errors.Is(err, store.ErrInUse) {
		return nil, fmt.Errorf("%w: stop it first, or give another --data", err)
	}
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			lock.Unlock()
		}
	}()
	a := &App{cfg: cfg, Broker: live.NewBroker(), live: opts.Live, lock: lock, snooze: opts.SnoozeEvery,
		remindEvery: opts.RemindEvery}
	if a.snooze <= 0 {
		a.snooze = snoozeEvery
	}
	if a.remindEvery <= 0 {
		a.remindEvery = defaultRemindEvery
	}
	a.webhookSecret = cfg.WebhookSecret
	if a.webhookSecret == "" {
		secret, err := sandbox.RandomSecret(16)
		if err != nil {
			return nil, err
		}
		a.webhookSecret = secret
	}
	// The secret is a path segment: no log line may carry it.
	a.log = redactLogs(opts.Log, a.webhookSecret)
	st, err := store.Open(ctx, cfg.DBPath(), store.Options{Rules: cfg.Rules, Rates: cfg.Rates, Now: opts.Now, Committed: a.Broker.Publish,
		CountryRates: cfg.Costs.CountryRates, SenderCountry: cfg.Costs.SenderCountry,
		InternationalRate: cfg.Costs.InternationalRate, MonthlyBudget: cfg.Costs.MonthlyBudget,
		// The provider fetches an attachment within the message's ttl; an hour's margin.
		MediaTokenTTL: cfg.TTL + time.Hour, Synchronous: cfg.Synchronous})
	if err != nil {
		return nil, err
	}
	a.Store = st
	a.metrics = metrics.New(metrics.Sources{Store: st, Now: opts.Now, Log: a.log.With("component", "metrics")})
	if _, stored, err := st.LoadSettings(ctx); err == nil && stored {
		a.log.Info("settings saved by an admin override the flags' session rules, rates and canned replies")
	}
	if a.media, err = media.NewStore(filepath.Join(cfg.DataDir, "media")); err != nil {
		st.Close()
		return nil, err
	}
	a.limits = media.DefaultLimits()
	a.bodies = withDefaults(opts.Bodies, handlers.DefaultBodyLimits(a.limits))
	a.addDemo(ctx, cfg)
	st.OnAccept(a.metrics.Accepted) // after the demo: the metrics count this run's traffic
	a.ln = opts.Listener
	if a.ln == nil {
		if a.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			st.Close()
			return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
		}
	}
	a.publicURL = cfg.PublicURL
	if a.publicURL == nil {
		a.publicURL = &url.URL{Scheme: "http", Host: a.ln.Addr().String(), Path: cfg.BasePath}
	}
	if a.auth, err = auth.New(cfg.Auth); err != nil {
		a.ln.Close()
		st.Close()
		return nil, err
	}
	if err := a.setUpChannel(opts); err != nil {
		a.ln.Close()
		st.Close()
		return nil, err
	}
	a.server = &http.Server{
		Handler:           a.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	started = true
	return a, nil
}

// addDemo adds the demo clients to a new sandbox database. They never go to a
// real provider, and a failure to add them never stops the inbox: the demo is
// all or nothing, so the database is left as it was.
func (a *App) addDemo(ctx context.Context, cfg config.Config) {
	switch {
	case cfg.NoDemo:
		return
	case cfg.Routee != nil:
		a.log.Debug("no demo clients: they exist only in the sandbox")
		return
	}
	added, err := seedDemo(ctx, a.Store)
	if err != nil {
		a.log.Warn("demo clients not added; the inbox starts without them", "err", err)
		return
	}
	if added {
		a.log.Info("added demo clients to the new database (--no-demo skips them)")
	}
}

// setUpChannel builds the Routee client and the outbox. Without a Routee
// configuration the provider is the in-process sandbox, which the same client
// reaches over HTTP at the public URL.
func (a *App) setUpChannel(opts Options) error {
	now := opts.Now
	a.outbound = http.DefaultTransport.(*http.Transport).Clone()
	hooks := a.publicURL.String() + "/webhooks/routee/" + a.webhookSecret
	var rc routee.Config
	if r := a.cfg.Routee; r != nil {
		rc = routee.Config{AppID: r.AppID, AppSecret: r.AppSecret, SenderID: r.SenderID, APIURL: r.APIURL, AuthURL: r.AuthURL}
		a.log.Info("channel: Routee", "api", r.APIURL, "webhooks", a.publicURL.String()+"/webhooks/routee/…")
	} else {
		phone, err := sandbox.New(sandbox.Config{InboundURL: hooks + "/inbound", Now: now, Prices: a.cfg.Costs.SandboxPrices,
			HTTPClient: &http.Client{Transport: a.outbound, Timeout: 10 * time.Second}}, a.Store, a.log.With("component", "sandbox"))
		if err != nil {
			return err
		}
		a.phone = phone
		rc = phone.ClientConfig(a.publicURL.String())
		a.log.Info("channel: sandbox (set ROUTEE_APP_ID to use Routee)", "phone", a.publicURL.String()+"/sandbox")
	}
	rc.CallbackURL, rc.InboundURL, rc.TTL, rc.Now = hooks+"/status", hooks+"/inbound", a.cfg.TTL, now
	rc.HTTPClient = &http.Client{Transport: a.outbound, Timeout: routee.DefaultTimeout}
	client, err := routee.New(rc)
	if err != nil {
		return fmt.Errorf("routee channel: %w", err)
	}
	ob := opts.Outbox
	ob.Now, ob.GiveUpAfter = now, a.cfg.SendGiveUp
	ob.Metrics = a.metrics
	ob.MediaURL = func(token string) string { return a.publicURL.String() + "/media/" + token }
	a.outbox = channel.NewOutbox(a.Store, client, a.log.With("component", "outbox"), ob)
	a.reconciler = &routee.Reconciler{Client: client, Store: a.Store, Log: a.log.With("component", "reconcile"),
		Limiter: rate.NewLimiter(rate.Limit(max(a.cfg.ReconcileRate, 0.1)), 1)}
	// Client media URLs come from the webhook: the fetcher refuses private
	// addresses and plain http, except under the sandbox's own media path
	// (the fake serves the phone's files there) and what the caller allows.
	allow := slices.Clip(opts.MediaAllow)
	if a.phone != nil {
		allow = append(allow, a.publicURL.String()+"/media/")
	}
	a.fetcher = &media.Fetcher{MaxBytes: max(a.limits.ImageMax, a.limits.FileMax), Allow: allow}
	a.downloader = channel.NewDownloader(a.Store, a.media, a.fetcher, a.limits, a.log.With("component", "downloader"), now)
	return nil
}

// Addr is the address the server listens on.
func (a *App) Addr() net.Addr { return a.ln.Addr() }

// URL is the base URL of the inbox.
func (a *App) URL() string { return a.publicURL.String() }

func (a *App) routes() http.Handler {
	staticFS, err := fs.Sub(static.Files, ".")
	if err != nil {
		panic(err) // embedded at build time
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// Trust decisions never come from X-Forwarded-For: the peer address only.
	e.IPExtractor = echo.ExtractIPDirect()
	e.Use(middleware.Recover())
	e.Use(a.metrics.Middleware) // outside requestLog, which answers errors: it sees the status sent
	e.Use(a.requestLog)
	e.Use(securityHeaders)
	e.Use(handlers.LimitBodies(a.bodies))
	a.handlers = handlers.New(handlers.Deps{
		Store:          a.Store,
		Broker:         a.Broker,
		Auth:           a.auth,
		Roles:          a.cfg.Roles,
		Log:            a.log,
		PublicURL:      a.publicURL,
		Phone:          a.phone,
		LocalMode:      a.cfg.Auth.EffectiveMode() == auth.ModeDev,
		BasePath:       a.cfg.BasePath,
		LogoutURL:      a.cfg.LogoutURL,
		WebhookSecret:  a.webhookSecret,
		Static:         handlers.StaticFiles(staticFS),
		Media:          a.media,
		Limits:         a.limits,
		LocalHosts:     a.localHosts(),
		Live:           a.liveOptions(),
		ExpiringWithin: a.cfg.ExpiringWithin,
		Metrics:        a.metrics,
		Reconciler:     a.reconciler,
	})
	a.handlers.Register(e)
	a.registerMetrics(e)
	// Online is having a live page open: the round robin asks the hub.
	a.Store.SetOnlineAgents(a.handlers.Hub().OnlineAgents)
	// Every state-changing request from another site is refused (the browser
	// says so in Sec-Fetch-Site or Origin); scripts without those headers pass.
	var h http.Handler = http.NewCrossOriginProtection().Handler(e)
	if a.cfg.BasePath != "" {
		// Served under a sub-path of the proxy: routes stay rooted at "/", links
		// and redirects carry the prefix.
		h = http.StripPrefix(a.cfg.BasePath, h)
	}
	return h
}

// localHosts are the Host headers the local dev login answers: this
// machine's names on the port listened on, and the public URL's host when it
// is on loopback too.
func (a *App) localHosts() []string {
	_, port, err := net.SplitHostPort(a.ln.Addr().String())
	if err != nil {
		return nil
	}
	hosts := []string{net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("localhost", port), net.JoinHostPort("::1", port)}
	if port == "80" { // browsers leave the default port out
		hosts = append(hosts, "127.0.0.1", "localhost", "[::1]")
	}
	if config.IsLoopbackHost(a.publicURL.Hostname()) {
		hosts = append(hosts, a.publicURL.Host)
	}
	return hosts
}

// liveOptions are the websockets' settings: the cap from the configuration,
// and in header mode a re-check through the proxy every interval, since an
// open socket never passes the proxy again.
func (a *App) liveOptions() handlers.LiveOptions {
	o := a.live
	o.MaxPerAgent = a.cfg.WSMaxPerAgent
	o.Reauth = a.cfg.Auth.EffectiveMode() == auth.ModeHeader
	return o
}

// Run serves and sends until ctx ends, then stops gracefully: no new
// connections, requests in flight finish, websockets are told to reconnect,
// the outbox stops between messages, and the database closes.
func (a *App) Run(ctx context.Context) error {
	a.log.Info("sessiondesk listening", "url", a.URL(), "data", a.cfg.DataDir)
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()

	var wg sync.WaitGroup
	sub := a.Broker.Subscribe()
	wg.Go(func() {
		defer sub.Close()
		if err := a.outbox.Run(runCtx, sub.C); err != nil {
			a.log.Error("outbox stopped", "err", err)
		}
	})
	downloads := a.Broker.Subscribe()
	wg.Go(func() {
		defer downloads.Close()
		if err := a.downloader.Run(runCtx, downloads.C); err != nil {
			a.log.Error("downloader stopped", "err", err)
		}
	})
	wg.Go(func() {
		a.media.SweepEvery(runCtx, sweepEvery, mediaGrace, a.Store.HashInUse, a.log.With("component", "media"))
	})
	wg.Go(func() { a.pruneEvents(runCtx) })
	wg.Go(func() { a.keepReportDays(runCtx) })
	wg.Go(func() { a.wakeSnoozed(runCtx, a.snooze) })
	wg.Go(func() { a.remindSessions(runCtx, a.remindEvery) })
	if a.cfg.ReconcileEvery > 0 {
		wg.Go(func() { a.reconciler.Run(runCtx, a.cfg.ReconcileEvery, a.cfg.TTL) })
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- a.server.Serve(a.ln) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("serve: %w", err)
	}
	a.log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	a.outbound.CloseIdleConnections()
	a.fetcher.CloseIdleConnections()
	if serr := a.server.Shutdown(shutCtx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("shutdown: %w", serr))
	}
	a.handlers.Close()
	stop()
	wg.Wait()
	if c, ok := a.auth.(io.Closer); ok {
		c.Close() // the JWKS cache's background refresh
	}
	if cerr := a.Store.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if lerr := a.lock.Unlock(); lerr != nil {
		err = errors.Join(err, lerr)
	}
	a.log.Info("stopped")
	return err
}

// withDefaults fills the zero fields of b from def.
func withDefaults(b, def handlers.BodyLimits) handlers.BodyLimits {
	if b.MaxBody <= 0 {
		b.MaxBody = def.MaxBody
	}
	if b.MaxUpload <= 0 {
		b.MaxUpload = def.MaxUpload
	}
	if b.Grace <= 0 {
		b.Grace = def.Grace
	}
	if b.MinRate <= 0 {
		b.MinRate = def.MinRate
	}
	if b.Idle <= 0 {
		b.Idle = def.Idle
	}
	return b
}

func (a *App) requestLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		req := c.Request()
		a.log.LogAttrs(req.Context(), slog.LevelDebug, "request",
			slog.String("method", req.Method), slog.String("path", logPath(req.URL.Path)),
			slog.Int("status", c.Response().Status), slog.Duration("took", time.Since(start)))
		return nil
	}
}

// logPath is a request's path as the request log shows it: a webhook's
// third segment is its secret (right or wrong, it is someone's guess at it).
func logPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "/webhooks/"); ok {
		parts := strings.SplitN(rest, "/", 3)
		if len(parts) >= 2 {
			parts[1] = redacted
		}
		return "/webhooks/" + strings.Join(parts, "/")
	}
	return p
}

// securityHeaders: no inline script or style anywhere (the pages need none), no
// framing, no MIME guessing, and no full URLs leaked to other sites.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "+
			"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		return next(c)
	}
}

// registerMetrics serves /metrics outside the login: to the configured
// addresses, or to a scraper with the bearer token (metrics.Access).
func (a *App) registerMetrics(e *echo.Echo) {
	a.metrics.SetPages(a.handlers.Hub().Pages)
	access := metrics.Access{Allow: a.cfg.MetricsAllow, Token: a.cfg.MetricsToken}
	e.GET("/metrics", echo.WrapHandler(a.metrics.Handler(access)))
}

// Package config reads Sessiondesk's settings from flags, with environment
// variables as fallbacks, and checks them before anything starts.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"sessiondesk/auth"
	"sessiondesk/session"
)

// Config is every setting of the binary.
type Config struct {
	Addr    string // where the HTTP server listens
	DataDir string // the SQLite file and, later, attachments live here
	// PublicURL is where browsers and the provider reach the inbox; nil means
	// "http:// plus the address actually listened on".
	PublicURL *url.URL
	NoDemo    bool // skip the demo clients on a fresh sandbox database

	Rules session.Settings
	Rates session.Rates

	// Auth says how agents are recognised; Roles maps groups to roles.
	Auth  auth.Config
	Roles map[string]string
	// LogoutURL is where "Sign out" goes (the proxy's sign-out); "" hides it.
	LogoutURL string
	// BasePath is the sub-path the proxy serves the inbox under, "" at the root.
	BasePath string

	// Routee is the provider's configuration; nil runs the sandbox.
	Routee *Routee
	// WebhookSecret is the path segment that authenticates the provider's
	// callbacks; "" in the sandbox means "make one up at start".
	WebhookSecret string
	// TTL is how long the provider tries to deliver a business message (S8).
	TTL time.Duration
	// SendGiveUp is how long the outbox retries a message the provider cannot
	// be reached for before it fails visibly.
	SendGiveUp time.Duration

	// WSMaxPerAgent caps the open websockets (live pages) of one agent.
	WSMaxPerAgent int

	LogLevel  string
	LogFormat string // text or json

	// EventRetention is how long the live events that let pages catch up are
	// kept; messages are kept for ever.
	EventRetention time.Duration
	// Synchronous is SQLite's synchronous setting: NORMAL, or FULL to survive a
	// power cut with the last transactions too.
	Synchronous string

	// NotifyBefore is how long before a session ends, with the client's last
	// message unanswered, the conversation's agent is reminded; 0 never.
	NotifyBefore time.Duration
	// ExpiringWithin is how close to its end a session shows in the
	// Expiring view.
	ExpiringWithin time.Duration

	// Costs: the defaults of the rates per country, the sender's country, the
	// international per-message rate and the monthly budget (admins may
	// override them), and the prices the sandbox's fake Routee reports.
	Costs Costs
	// MetricsAllow are the peer addresses that may read /metrics without a
	// token (default loopback); MetricsToken, when set, is a bearer token
	// that lets any address read it.
	MetricsAllow []netip.Prefix
	MetricsToken string

	// ReconcileEvery is how often business messages stuck in sent for longer
	// than the TTL are checked with Routee; ReconcileRate bounds those
	// lookups (and "Check with Routee") per second.
	ReconcileEvery time.Duration
	ReconcileRate  float64
}

// DefaultEventRetention is how long live events are kept unless configured.
const DefaultEventRetention = 30 * 24 * time.Hour

// MinEventRetention is the shortest event retention accepted: shorter, a page
// left in a background tab for a lunch break would have to reload.
const MinEventRetention = time.Hour

// Routee holds the Routee channel's settings.
type Routee struct {
	AppID, AppSecret string
	SenderID         string // senderInfoTrackingId
	APIURL, AuthURL  string
}

// minWebhookSecret is the shortest webhook secret accepted: it is the only
// thing between the internet and the webhooks.
const minWebhookSecret = 16

// DBPath is the SQLite file inside the data folder.
func (c Config) DBPath() string { return strings.TrimRight(c.DataDir, "/") + "/sessiondesk.db" }

// Parse reads the settings from args (without the program name) and getenv. An
// explicit flag beats its environment variable, which beats the default. Usage
// text and errors go to out.
func Parse(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	fs := flag.NewFlagSet("sessiondesk", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		c         Config
		publicURL string
		afterCap  string
		def       = session.Defaults()
		envErrs   []error
	)
	// Each helper declares a flag whose default is its environment variable's value, if set.
	str := func(p *string, name, env, def, usage string) {
		if v := getenv(env); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, usage+" ("+env+")")
	}
	num := func(p *int, name, env string, def int, usage string) {
		if v := getenv(env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q: not a whole number", env, v))
			}
			def = n
		}
		fs.IntVar(p, name, def, usage+" ("+env+")")
	}
	dur := func(p *time.Duration, name, env string, def time.Duration, usage string) {
		if v := getenv(env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q: not a duration like 24h", env, v))
			}
			def = d
		}
		fs.DurationVar(p, name, def, usage+" ("+env+")")
	}
	float := func(p *float64, name, env string, def float64, usage string) {
		if v := getenv(env); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q: not a number", env, v))
			}
			def = f
		}
		fs.Float64Var(p, name, def, usage+" ("+env+")")
	}
	boolean := func(p *bool, name, env, usage string) {
		def := false
		if v := getenv(env); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q: not true or false", env, v))
			}
			def = b
		}
		fs.BoolVar(p, name, def, usage+" ("+env+")")
	}

	str(&c.Addr, "addr", "SESSIONDESK_ADDR", "127.0.0.1:8080", "listen address")
	str(&c.DataDir, "data", "SESSIONDESK_DATA", "./data", "data folder: the SQLite database lives here")
	str(&publicURL, "public-url", "SESSIONDESK_PUBLIC_URL", "", "where browsers and the provider reach the inbox (default http://ADDR)")
	boolean(&c.NoDemo, "no-demo", "SESSIONDESK_NO_DEMO", "do not add demo clients to a new sandbox database")
	dur(&c.Rules.Window, "session-window", "SESSIONDESK_SESSION_WINDOW", def.Window, "how long a session lasts")
	num(&c.Rules.MaxPerSession, "session-max", "SESSIONDESK_SESSION_MAX", def.MaxPerSession, "business messages per session")
	num(&c.Rules.MaxUnanswered, "session-max-unanswered", "SESSIONDESK_SESSION_MAX_UNANSWERED", def.MaxUnanswered,
		"business messages in a row before the client must reply")
	str(&afterCap, "session-after-cap", "SESSIONDESK_SESSION_AFTER_CAP", string(def.AfterCap),
		"after the cap: rollover (a new billed session) or close")
	num(&c.Rules.MaxTextLen, "text-max", "SESSIONDESK_TEXT_MAX", def.MaxTextLen, "characters in a text message")
	float(&c.Rates.Text, "rate-text", "SESSIONDESK_RATE_TEXT", 0, "price of a text-only session")
	float(&c.Rates.Media, "rate-media", "SESSIONDESK_RATE_MEDIA", 0, "price of a session with an image or file")
	str(&c.Rates.Currency, "currency", "SESSIONDESK_CURRENCY", "EUR", "currency of the rates")
	var (
		mode, proxies, roles string
	)
	str(&mode, "auth", "SESSIONDESK_AUTH", "", "how agents sign in: dev (local only), header or jwt (behind an SSO proxy)")
	str(&c.Auth.Preset, "auth-preset", "SESSIONDESK_AUTH_PRESET", "", "oauth2-proxy, authelia, authentik, pomerium, cloudflare or oidc")
	str(&c.Auth.Header, "auth-header", "SESSIONDESK_AUTH_HEADER", "", "identity header (header mode) or assertion header (jwt mode), overriding the preset")
	str(&c.Auth.SecretHeader, "auth-secret-header", "SESSIONDESK_AUTH_SECRET_HEADER", "", "header carrying a secret shared with the proxy (header mode)")
	str(&c.Auth.Secret, "auth-secret", "SESSIONDESK_AUTH_SECRET", "", "the shared secret's value")
	str(&proxies, "trusted-proxies", "SESSIONDESK_TRUSTED_PROXIES", "", "CIDRs of the proxies whose identity headers are believed")
	str(&c.Auth.JWKSURL, "jwks-url", "SESSIONDESK_JWKS_URL", "", "where the proxy's signing keys are (jwt mode)")
	str(&c.Auth.Issuer, "jwt-issuer", "SESSIONDESK_JWT_ISSUER", "", "expected iss of the assertion (jwt mode)")
	str(&c.Auth.Audience, "jwt-audience", "SESSIONDESK_JWT_AUDIENCE", "", "expected aud of the assertion (jwt mode)")
	str(&roles, "roles", "SESSIONDESK_ROLES", "", "group=role pairs, e.g. support-admins=admin,support=agent")
	str(&c.LogoutURL, "logout-url", "SESSIONDESK_LOGOUT_URL", "", "the proxy's sign-out address, e.g. /oauth2/sign_out")
	str(&c.BasePath, "base-path", "SESSIONDESK_BASE_PATH", "", "sub-path the proxy serves the inbox under (default: the public URL's path)")
	var r Routee
	str(&r.AppID, "routee-app-id", "ROUTEE_APP_ID", "", "Routee application id; set it to use Routee instead of the sandbox")
	str(&r.AppSecret, "routee-app-secret", "ROUTEE_APP_SECRET", "", "Routee application secret")
	str(&r.SenderID, "routee-sender-id", "ROUTEE_SENDER_ID", "", "Routee senderInfoTrackingId of the business's Viber sender")
	str(&r.APIURL, "routee-api-url", "ROUTEE_API_URL", "https://connect.routee.net", "Routee API base URL")
	str(&r.AuthURL, "routee-auth-url", "ROUTEE_AUTH_URL", "https://auth.routee.net", "Routee OAuth base URL")
	str(&c.WebhookSecret, "webhook-secret", "SESSIONDESK_WEBHOOK_SECRET", "",
		"secret path segment of the provider's webhooks (at least 16 characters)")
	dur(&c.TTL, "ttl", "SESSIONDESK_TTL", 24*time.Hour, "how long the provider tries to deliver a message (30s to 24h)")
	dur(&c.SendGiveUp, "send-give-up", "SESSIONDESK_SEND_GIVE_UP", time.Hour,
		"how long to retry a message the provider cannot be reached for")
	num(&c.WSMaxPerAgent, "ws-max-per-agent", "SESSIONDESK_WS_MAX_PER_AGENT", 20,
		"open live pages (websockets) one agent may have at once")
	str(&c.LogLevel, "log-level", "SESSIONDESK_LOG_LEVEL", "info", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "SESSIONDESK_LOG_FORMAT", "text", "text or json")

	// Storage: event retention and durability.
	dur(&c.EventRetention, "event-retention", "SESSIONDESK_EVENT_RETENTION", DefaultEventRetention,
		"how long live events (not messages) are kept, at least 1h")
	str(&c.Synchronous, "sqlite-synchronous", "SESSIONDESK_SQLITE_SYNCHRONOUS", "NORMAL",
		"NORMAL, or FULL to also keep the last transactions through a power cut (slower writes)")
	dur(&c.NotifyBefore, "notify-before", "SESSIONDESK_NOTIFY_BEFORE", 15*time.Minute,
		"remind the agent this long before a session ends with the client unanswered; 0 never")
	dur(&c.ExpiringWithin, "expiring-within", "SESSIONDESK_EXPIRING_WITHIN", time.Hour,
		"how close to its end a session shows in the Expiring view (1m to 24h)")

	var countryRates, sandboxPrices string
	str(&countryRates, "rate-countries", "SESSIONDESK_RATE_COUNTRIES", "",
		"session rates per client country, text/media, e.g. DE=0.02/0.04,FR=0.03/0.05")
	str(&c.Costs.SenderCountry, "sender-country", "SESSIONDESK_SENDER_COUNTRY", "",
		"ISO country of the business sender; clients elsewhere are international")
	float(&c.Costs.InternationalRate, "rate-international", "SESSIONDESK_RATE_INTERNATIONAL", 0,
		"per-message rate of international clients; 0 bills them per session")
	float(&c.Costs.MonthlyBudget, "budget-monthly", "SESSIONDESK_BUDGET_MONTHLY", 0,
		"monthly budget for sessions, in the rates' currency; 0 for none")
	str(&sandboxPrices, "sandbox-prices", "SESSIONDESK_SANDBOX_PRICES", "",
		"price per message the sandbox reports, by country, * for the rest, e.g. DE=0.02,*=0.03")
	// Metrics: who may scrape /metrics.
	var metricsAllow string
	str(&metricsAllow, "metrics-allow", "SESSIONDESK_METRICS_ALLOW", DefaultMetricsAllow,
		"CIDRs whose connections may read /metrics without a token; none for the token only")
	str(&c.MetricsToken, "metrics-token", "SESSIONDESK_METRICS_TOKEN", "",
		"bearer token that lets any address read /metrics (at least 16 characters)")
	// Paid messages: checking stuck messages with Routee.
	dur(&c.ReconcileEvery, "reconcile-every", "SESSIONDESK_RECONCILE_EVERY", 10*time.Minute,
		"how often messages stuck in sent longer than the ttl are checked with Routee")
	float(&c.ReconcileRate, "reconcile-rate", "SESSIONDESK_RECONCILE_RATE", 2,
		"Routee lookups per second for Check with Routee and the stuck-message job")

	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if len(envErrs) > 0 {
		return Config{}, errors.Join(envErrs...)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q: settings are flags, see -h", fs.Arg(0))
	}
	c.Rules.AfterCap = session.AfterCap(afterCap)
	c.Rules.FutureSkew = def.FutureSkew
	if err := c.Rules.Validate(); err != nil {
		return Config{}, err
	}
	if c.Rates.Text < 0 || c.Rates.Media < 0 {
		return Config{}, fmt.Errorf("rates must not be negative")
	}
	if publicURL != "" {
		u, err := ParsePublicURL(publicURL)
		if err != nil {
			return Config{}, fmt.Errorf("--public-url: %w", err)
		}
		c.PublicURL = u
	}
	if err := c.checkAuth(mode, proxies, roles); err != nil {
		return Config{}, err
	}
	if c.TTL < 30*time.Second || c.TTL > 24*time.Hour {
		return Config{}, fmt.Errorf("--ttl %s: the provider accepts 30s to 24h", c.TTL)
	}
	if c.SendGiveUp <= 0 {
		return Config{}, fmt.Errorf("--send-give-up must be positive, got %s", c.SendGiveUp)
	}
	if c.WSMaxPerAgent < 1 {
		return Config{}, fmt.Errorf("--ws-max-per-agent must be at least 1, got %d", c.WSMaxPerAgent)
	}
	if err := c.checkRoutee(r); err != nil {
		return Config{}, err
	}
	if err := c.checkStorage(); err != nil {
		return Config{}, err
	}
	if err := c.Costs.parse(countryRates, sandboxPrices); err != nil {
		return Config{}, err
	}
	if err := c.checkMetrics(metricsAllow); err != nil {
		return Config{}, err
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return Config{}, fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat)
	}
	return c, nil
}

// checkAuth reads the sign-in settings. The local dev login listens on
// loopback only; behind a proxy the inbox may listen anywhere, but needs the
// public URL (websocket Origin checks) and at least one group mapped to a role.
func (c *Config) checkAuth(mode, proxies, roles string) error {
	c.Auth.Mode = auth.Mode(mode)
	var err error
	if proxies != "" {
		if c.Auth.TrustedProxies, err = auth.ParseTrustedProxies(proxies); err != nil {
			return err
		}
	}
	if err := auth.Check(c.Auth); err != nil { // every setting, without starting the key fetch
		return err
	}
	if c.Auth.EffectiveMode() == auth.ModeDev {
		if roles != "" {
			return errors.New("SESSIONDESK_ROLES is for SSO groups; the local dev agent is always an admin")
		}
		c.Roles = map[string]string{auth.DevAdminGroup: auth.RoleAdmin}
		if err := checkLoopback(c.Addr); err != nil {
			return err
		}
		return c.checkBasePath()
	}
	if c.Roles, err = auth.ParseRoles(roles); err != nil {
		return err
	}
	if len(c.Roles) == 0 {
		return errors.New("SESSIONDESK_ROLES is empty: map at least one group to a role " +
			"(e.g. support-admins=admin,support=agent), or nobody can sign in")
	}
	if c.PublicURL == nil {
		return errors.New("SESSIONDESK_PUBLIC_URL is required behind a proxy: websockets are only accepted from its origin")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("--addr %q: %w", c.Addr, err)
	}
	return c.checkBasePath()
}

// checkBasePath defaults the base path to the public URL's and checks its form.
func (c *Config) checkBasePath() error {
	if c.BasePath == "" && c.PublicURL != nil {
		c.BasePath = c.PublicURL.Path
	}
	c.BasePath = strings.TrimRight(c.BasePath, "/")
	if c.BasePath != "" && (!strings.HasPrefix(c.BasePath, "/") || strings.ContainsAny(c.BasePath, "?#")) {
		return fmt.Errorf("SESSIONDESK_BASE_PATH %q: want a path such as /support", c.BasePath)
	}
	return nil
}

// checkLoopback refuses any listen address but loopback for the local dev
// login, which must never be reachable from another machine.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", addr, err)
	}
	if !IsLoopbackHost(host) {
		return fmt.Errorf("--addr %q: the local dev login (SESSIONDESK_AUTH=dev) only listens on loopback "+
			"(127.0.0.1, ::1 or localhost); to serve a team, run behind an SSO proxy with SESSIONDESK_AUTH=header or jwt", addr)
	}
	return nil
}

// IsLoopbackHost reports whether host names this machine only.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParsePublicURL checks an address the provider or browsers use: absolute,
// http(s), and https unless on loopback (tests, the sandbox, a laptop), since
// the provider fetches media over https only. The host is written as browsers
// write it in an Origin header, lower-case and without the scheme's default
// port, so that https://Inbox.Example.com:443 names the same pages as
// https://inbox.example.com: the websockets accept only the public URL's origin.
func ParsePublicURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%q: want an absolute http(s) URL such as https://inbox.example.com", raw)
	}
	u.Host = canonicalHost(u.Scheme, u.Hostname(), u.Port())
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("%q: plain http is only accepted on loopback; use https", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// canonicalHost is host:port as a browser writes it for scheme (url.Parse has
// already lower-cased the scheme): the name lower-case, an IPv6 address in
// brackets, and no port when it is the scheme's default or empty.
func canonicalHost(scheme, hostname, port string) string {
	hostname = strings.ToLower(hostname)
	if port == "" || port == EffectivePort(scheme, "") {
		if strings.Contains(hostname, ":") {
			return "[" + hostname + "]"
		}
		return hostname
	}
	return net.JoinHostPort(hostname, port)
}

// EffectivePort is port, or the scheme's default (80 for http, 443 for https)
// when it names none: how browsers compare origins. "" for another scheme
// without a port.
func EffectivePort(scheme, port string) string {
	if port != "" {
		return port
	}
	switch strings.ToLower(scheme) {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// checkRoutee sets c.Routee when ROUTEE_APP_ID is given, and refuses an
// incomplete provider configuration, naming everything that is missing.
func (c *Config) checkRoutee(r Routee) error {
	if r.AppID == "" {
		if r.AppSecret != "" || r.SenderID != "" {
			return errors.New("ROUTEE_APP_SECRET or ROUTEE_SENDER_ID is set but ROUTEE_APP_ID is not: " +
				"set ROUTEE_APP_ID to use Routee, or unset the others to use the sandbox")
		}
		if c.WebhookSecret != "" && len(c.WebhookSecret) < minWebhookSecret {
			return fmt.Errorf("SESSIONDESK_WEBHOOK_SECRET must be at least %d characters", minWebhookSecret)
		}
		return nil
	}
	var missing []string
	if r.AppSecret == "" {
		missing = append(missing, "ROUTEE_APP_SECRET")
	}
	if r.SenderID == "" {
		missing = append(missing, "ROUTEE_SENDER_ID")
	}
	if c.PublicURL == nil {
		missing = append(missing, "SESSIONDESK_PUBLIC_URL (the https address Routee reaches this inbox at)")
	}
	if c.WebhookSecret == "" {
		missing = append(missing, "SESSIONDESK_WEBHOOK_SECRET")
	}
	if len(missing) > 0 {
		verb := "are"
		if len(missing) == 1 {
			verb = "is"
		}
		return fmt.Errorf("the Routee channel is incomplete: ROUTEE_APP_ID is set but %s %s missing",
			strings.Join(missing, ", "), verb)
	}
	if len(c.WebhookSecret) < minWebhookSecret {
		return fmt.Errorf("SESSIONDESK_WEBHOOK_SECRET must be at least %d characters", minWebhookSecret)
	}
	for name, raw := range map[string]string{"ROUTEE_API_URL": r.APIURL, "ROUTEE_AUTH_URL": r.AuthURL} {
		if _, err := ParsePublicURL(raw); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	c.Routee = &r
	return nil
}

// checkStorage checks the event retention and the synchronous setting (and
// the reminder's lead time, a duration checked alongside).
func (c *Config) checkStorage() error {
	if c.NotifyBefore < 0 || c.NotifyBefore > 24*time.Hour {
		return fmt.Errorf("--notify-before %s: want 0 (never) up to 24h", c.NotifyBefore)
	}
	if c.ExpiringWithin < time.Minute || c.ExpiringWithin > 24*time.Hour {
		return fmt.Errorf("--expiring-within %s: want 1m up to 24h", c.ExpiringWithin)
	}
	if c.ReconcileEvery < time.Minute {
		return fmt.Errorf("--reconcile-every %s: at least 1m", c.ReconcileEvery)
	}
	if !(c.ReconcileRate > 0 && c.ReconcileRate <= 100) {
		return fmt.Errorf("--reconcile-rate %g: want more than 0, at most 100 lookups a second", c.ReconcileRate)
	}
	if c.EventRetention < MinEventRetention {
		return fmt.Errorf("--event-retention %s: keep events at least %s", c.EventRetention, MinEventRetention)
	}
	c.Synchronous = strings.ToUpper(c.Synchronous)
	if c.Synchronous != "NORMAL" && c.Synchronous != "FULL" {
		return fmt.Errorf("--sqlite-synchronous %q: want NORMAL or FULL", c.Synchronous)
	}
	return nil
}

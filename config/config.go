// Package config reads Sessiondesk's settings from flags, with environment
// variables as fallbacks, and checks them before anything starts.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

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

	LogLevel  string
	LogFormat string // text or json
}

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
	str(&c.LogLevel, "log-level", "SESSIONDESK_LOG_LEVEL", "info", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "SESSIONDESK_LOG_FORMAT", "text", "text or json")

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
	if err := checkLoopback(c.Addr); err != nil {
		return Config{}, err
	}
	if publicURL != "" {
		u, err := ParsePublicURL(publicURL)
		if err != nil {
			return Config{}, err
		}
		c.PublicURL = u
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return Config{}, fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat)
	}
	return c, nil
}

// checkLoopback refuses any listen address but loopback: the only login so far
// is the local dev agent, which must never be reachable from another machine.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", addr, err)
	}
	if !IsLoopbackHost(host) {
		return fmt.Errorf("--addr %q: the local dev login only listens on loopback (127.0.0.1, ::1 or localhost); "+
			"listening on other addresses needs SSO authentication, which this version does not have yet", addr)
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

// ParsePublicURL checks a public URL: absolute, http(s), and https unless on loopback.
func ParsePublicURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("--public-url %q: want an absolute http(s) URL such as https://inbox.example.com", raw)
	}
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("--public-url %q: plain http is only accepted on loopback; the provider fetches media over https", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

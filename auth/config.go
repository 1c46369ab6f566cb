package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode"
)

const (
	defaultLeeway       = 60 * time.Second
	defaultFetchTimeout = 10 * time.Second
	// minSecret is the shortest shared secret accepted, as for the webhook secret.
	minSecret = 16
)

// defaultAlgorithms are accepted in jwt mode when Config.Algorithms is empty.
var defaultAlgorithms = []string{"RS256", "ES256"}

// cveTrustAll is cited whenever a setting would trust every address.
const cveTrustAll = "anyone who can reach Sessiondesk could send the identity header and sign in as anyone " +
	`(the hole of CVE-2026-20896, Gitea's trusted proxies "*")`

// ParseTrustedProxies reads SESSIONDESK_TRUSTED_PROXIES: CIDRs or bare IP
// addresses (one address each), separated by commas or spaces. It refuses
// "*" and any prefix of length 0 (0.0.0.0/0, ::/0), which would trust every
// address. IPv4-mapped IPv6 forms are folded to IPv4. Its errors name the
// setting. An empty string gives no prefixes (New refuses that in header mode).
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		if f == "*" {
			return nil, fmt.Errorf("SESSIONDESK_TRUSTED_PROXIES %q would trust every address: %s; "+
				"list only your proxy's addresses, e.g. 10.0.0.5 or 172.18.0.0/16", f, cveTrustAll)
		}
		var p netip.Prefix
		if strings.Contains(f, "/") {
			var err error
			if p, err = netip.ParsePrefix(f); err != nil {
				return nil, fmt.Errorf("SESSIONDESK_TRUSTED_PROXIES: %q is not an IP address or CIDR such as 10.0.0.5 or 172.18.0.0/16", f)
			}
		} else {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("SESSIONDESK_TRUSTED_PROXIES: %q is not an IP address or CIDR such as 10.0.0.5 or 172.18.0.0/16 "+
					"(host names are not accepted: trust is judged on the connection's address)", f)
			}
			a = a.WithZone("")
			p = netip.PrefixFrom(a, a.BitLen())
		}
		p = normalizePrefix(p)
		if err := checkPrefix(p, f); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// normalizePrefix folds ::ffff:a.b.c.d/n to a.b.c.d/(n-96) and masks the host bits.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

func checkPrefix(p netip.Prefix, as string) error {
	if !p.IsValid() {
		return fmt.Errorf("SESSIONDESK_TRUSTED_PROXIES: %q is not a valid CIDR", as)
	}
	if p.Bits() == 0 {
		return fmt.Errorf("SESSIONDESK_TRUSTED_PROXIES %q would trust every address: %s; "+
			"list only your proxy's addresses, e.g. 10.0.0.5 or 172.18.0.0/16", as, cveTrustAll)
	}
	return nil
}

// trustedPeer reports whether the connection's own address (never a
// forwarding header) is in one of the prefixes.
func trustedPeer(remoteAddr string, trusted []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap().WithZone("")
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

var errNotFromProxy = fmt.Errorf("%w: the request did not come through the sign-in proxy", ErrUnauthenticated)

// New checks cfg and returns its Authenticator. Its errors name the
// SESSIONDESK_* setting to fix. It does not wait on the network: in jwt mode
// the JWKS is fetched in the background, starting now, and the
// Authenticator is an io.Closer that stops that.
func New(cfg Config) (Authenticator, error) { return build(cfg, true) }

// Check checks cfg as New does, and starts nothing: no key fetch, no
// goroutine. Configuration parsing uses it.
func Check(cfg Config) error {
	_, err := build(cfg, false)
	return err
}

// build is New; start says whether jwt mode's key refresh begins.
func build(cfg Config, start bool) (Authenticator, error) {
	mode := cfg.Mode
	var p preset
	if cfg.Preset != "" {
		var ok bool
		if p, ok = presets[cfg.Preset]; !ok {
			return nil, fmt.Errorf("SESSIONDESK_AUTH_PRESET=%q is unknown: use one of %s",
				cfg.Preset, strings.Join(presetNames(""), ", "))
		}
		if mode == "" {
			mode = p.mode
		}
		if mode != p.mode {
			return nil, fmt.Errorf("SESSIONDESK_AUTH_PRESET=%s goes with SESSIONDESK_AUTH=%s, not %s",
				cfg.Preset, p.mode, mode)
		}
	}
	set := setSettings(cfg)
	if mode == "" {
		if len(set) > 0 {
			return nil, fmt.Errorf("%s set but SESSIONDESK_AUTH is not: set SESSIONDESK_AUTH=header or jwt", areSet(set))
		}
		mode = ModeDev
	}
	switch mode {
	case ModeDev:
		if len(set) > 0 {
			return nil, fmt.Errorf("SESSIONDESK_AUTH=dev takes no SSO settings, but %s set: "+
				"unset them, or choose SESSIONDESK_AUTH=header or jwt", areSet(set))
		}
		return Dev{}, nil
	case ModeHeader, ModeJWT:
	default:
		return nil, fmt.Errorf("SESSIONDESK_AUTH=%q is unknown: use dev, header or jwt", mode)
	}

	if (cfg.SecretHeader == "") != (cfg.Secret == "") {
		return nil, errors.New("SESSIONDESK_AUTH_SECRET_HEADER and SESSIONDESK_AUTH_SECRET go together: " +
			"set both (the header the proxy adds and its value) or neither")
	}
	for _, pr := range cfg.TrustedProxies {
		if err := checkPrefix(pr, pr.String()); err != nil {
			return nil, err
		}
	}
	if cfg.Header != "" {
		if err := checkHeaderName("SESSIONDESK_AUTH_HEADER", cfg.Header); err != nil {
			return nil, err
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if mode == ModeHeader {
		var jwtOnly []string
		if cfg.JWKSURL != "" {
			jwtOnly = append(jwtOnly, "SESSIONDESK_JWKS_URL")
		}
		if cfg.Issuer != "" {
			jwtOnly = append(jwtOnly, "SESSIONDESK_JWT_ISSUER")
		}
		if cfg.Audience != "" {
			jwtOnly = append(jwtOnly, "SESSIONDESK_JWT_AUDIENCE")
		}
		if len(jwtOnly) > 0 {
			return nil, fmt.Errorf("%s set, but only SESSIONDESK_AUTH=jwt uses it, not header", areSet(jwtOnly))
		}
		return newHeader(cfg, p)
	}
	if cfg.SecretHeader != "" {
		return nil, errors.New("SESSIONDESK_AUTH_SECRET_HEADER only applies to SESSIONDESK_AUTH=header: " +
			"in jwt mode the assertion's signature proves it comes from the proxy")
	}
	return newJWT(cfg, p, start)
}

// setSettings names the SSO settings that are set, for error messages.
func setSettings(cfg Config) []string {
	var set []string
	add := func(isSet bool, name string) {
		if isSet {
			set = append(set, name)
		}
	}
	add(cfg.Preset != "", "SESSIONDESK_AUTH_PRESET")
	add(cfg.Header != "", "SESSIONDESK_AUTH_HEADER")
	add(cfg.SecretHeader != "", "SESSIONDESK_AUTH_SECRET_HEADER")
	add(cfg.Secret != "", "SESSIONDESK_AUTH_SECRET")
	add(len(cfg.TrustedProxies) > 0, "SESSIONDESK_TRUSTED_PROXIES")
	add(cfg.JWKSURL != "", "SESSIONDESK_JWKS_URL")
	add(cfg.Issuer != "", "SESSIONDESK_JWT_ISSUER")
	add(cfg.Audience != "", "SESSIONDESK_JWT_AUDIENCE")
	return set
}

// areSet is "A is" or "A, B are".
func areSet(names []string) string {
	if len(names) == 1 {
		return names[0] + " is"
	}
	return strings.Join(names, ", ") + " are"
}

// checkHeaderName accepts an HTTP header name without underscores: proxies
// and servers disagree about "_" (CVE-2025-64484), and the underscore-variant
// check needs the real name to have none.
func checkHeaderName(setting, name string) error {
	if name == "" {
		return fmt.Errorf("%s is empty", setting)
	}
	for _, c := range name {
		switch {
		case c == '_':
			return fmt.Errorf("%s=%q: a header name with '_' is refused, since proxies and servers disagree about "+
				"underscores (CVE-2025-64484); use '-'", setting, name)
		case c < 0x80 && (unicode.IsLetter(c) || unicode.IsDigit(c)), strings.ContainsRune("!#$%&'*+-.^`|~", c):
		default:
			return fmt.Errorf("%s=%q is not a valid header name", setting, name)
		}
	}
	return nil
}

// checkJWKSURL wants an absolute https URL; plain http only on loopback,
// since whoever can change the keys in transit can sign in as anyone.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("SESSIONDESK_JWKS_URL=%q: want an absolute https URL", raw)
	}
	if u.Scheme == "http" {
		h := u.Hostname()
		a, err := netip.ParseAddr(h)
		if h != "localhost" && (err != nil || !a.IsLoopback()) {
			return fmt.Errorf("SESSIONDESK_JWKS_URL=%q: plain http is only accepted on loopback; use https "+
				"(whoever can change the keys in transit can sign in as anyone)", raw)
		}
	}
	return nil
}

func defaultHTTPClient() *http.Client { return &http.Client{Timeout: defaultFetchTimeout} }

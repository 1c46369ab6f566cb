package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// headerAuth believes identity headers from trusted proxies only.
type headerAuth struct {
	trusted []netip.Prefix

	// canonical names; "" when the mode does not read that header
	user, email, name, groups string
	groupSep                  string
	groupLines                bool

	secretHeader string
	secretSum    [sha256.Size]byte

	// read is every header this mode reads, for the underscore-variant check.
	read []string
	// single are the headers that must not come twice.
	single []string
}

func newHeader(cfg Config, p preset) (*headerAuth, error) {
	if len(cfg.TrustedProxies) == 0 {
		return nil, fmt.Errorf("SESSIONDESK_AUTH=header needs SESSIONDESK_TRUSTED_PROXIES: the addresses of the proxy "+
			"that sets the identity headers, e.g. 10.0.0.5 or 172.18.0.0/16; trusting any address would mean %s", cveTrustAll)
	}
	if cfg.Preset == "" && cfg.Header == "" {
		return nil, fmt.Errorf("SESSIONDESK_AUTH=header needs SESSIONDESK_AUTH_PRESET (%s) or SESSIONDESK_AUTH_HEADER (the header naming the user)",
			strings.Join(presetNames(ModeHeader), ", "))
	}
	h := &headerAuth{
		trusted:    cfg.TrustedProxies,
		user:       p.user,
		email:      p.email,
		name:       p.name,
		groups:     p.groups,
		groupSep:   p.groupSep,
		groupLines: p.groupLines,
	}
	if cfg.Header != "" {
		h.user = cfg.Header
	}
	if cfg.SecretHeader != "" {
		if err := checkHeaderName("SESSIONDESK_AUTH_SECRET_HEADER", cfg.SecretHeader); err != nil {
			return nil, err
		}
		if len(cfg.Secret) < minSecret {
			return nil, fmt.Errorf("SESSIONDESK_AUTH_SECRET must be at least %d characters", minSecret)
		}
		h.secretHeader = cfg.SecretHeader
		h.secretSum = sha256.Sum256([]byte(cfg.Secret))
	}
	for _, p := range []*string{&h.user, &h.email, &h.name, &h.groups, &h.secretHeader} {
		if *p == "" {
			continue
		}
		*p = http.CanonicalHeaderKey(*p)
		if slices.Contains(h.read, *p) {
			return nil, fmt.Errorf("the header %s would be read for two purposes: SESSIONDESK_AUTH_HEADER and "+
				"SESSIONDESK_AUTH_SECRET_HEADER must differ from each other and from the preset's other headers", *p)
		}
		h.read = append(h.read, *p)
		if *p != h.groups || !h.groupLines {
			h.single = append(h.single, *p)
		}
	}
	return h, nil
}

// Authenticate implements Authenticator.
func (h *headerAuth) Authenticate(r *http.Request) (Identity, error) {
	if !trustedPeer(r.RemoteAddr, h.trusted) {
		return Identity{}, errNotFromProxy
	}
	// Go keeps "X_Forwarded_Email" as is in r.Header; a server or framework
	// that folds "_" into "-" would read it as the real header, which is how
	// it slipped past oauth2-proxy's stripping (CVE-2025-64484). Refuse.
	for name := range r.Header {
		if !strings.Contains(name, "_") {
			continue
		}
		folded := strings.ReplaceAll(name, "_", "-")
		for _, want := range h.read {
			if strings.EqualFold(folded, want) {
				return Identity{}, refused("the request carries %q, an underscore variant of %s", name, want)
			}
		}
	}
	if h.secretHeader != "" {
		vals := r.Header.Values(h.secretHeader)
		if len(vals) != 1 {
			return Identity{}, refused("the proxy's shared secret (%s) is missing or sent twice", h.secretHeader)
		}
		sum := sha256.Sum256([]byte(vals[0]))
		if subtle.ConstantTimeCompare(sum[:], h.secretSum[:]) != 1 {
			return Identity{}, refused("the proxy's shared secret (%s) is wrong", h.secretHeader)
		}
	}
	// Header.Get returns the first value, which may be the client's own.
	for _, name := range h.single {
		if len(r.Header.Values(name)) > 1 {
			return Identity{}, refused("the request carries two values of %s", name)
		}
	}
	user := strings.TrimSpace(r.Header.Get(h.user))
	if user == "" {
		return Identity{}, fmt.Errorf("%w: the proxy sent no %s header", ErrUnauthenticated, h.user)
	}
	id := Identity{Login: user, Subject: user}
	if h.email != "" {
		id.Email = strings.TrimSpace(r.Header.Get(h.email))
		if id.Email != "" {
			id.Login = id.Email
		}
	}
	if h.name != "" {
		id.Name = strings.TrimSpace(r.Header.Get(h.name))
	}
	if id.Name == "" {
		id.Name = id.Login
	}
	if h.groups != "" {
		id.Groups = splitGroups(r.Header.Values(h.groups), h.groupSep)
	}
	return id, nil
}

// splitGroups splits every line on sep, then cleans the names.
func splitGroups(lines []string, sep string) []string {
	var names []string
	for _, line := range lines {
		names = append(names, strings.Split(line, sep)...)
	}
	return cleanGroups(names)
}

// cleanGroups trims the names and drops empty and repeated ones.
func cleanGroups(names []string) []string {
	var out []string
	for _, g := range names {
		if g = strings.TrimSpace(g); g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// Package auth says who the agent behind a request is.
//
// Three ways, chosen by SESSIONDESK_AUTH (see Config and New):
//
//   - dev: the local agent, for a laptop; it only answers requests from this
//     machine (Dev).
//   - header: an SSO proxy (oauth2-proxy, Authelia, Authentik) names the user
//     in request headers. Those headers are believed only from the proxies'
//     own addresses, judged on the TCP peer (never X-Forwarded-For), optionally
//     plus a shared-secret header, and a request that smuggles an underscore
//     variant or a second value of an identity header is refused.
//   - jwt: the proxy (Pomerium, Cloudflare Access, or oauth2-proxy passing the
//     OIDC id token) signs an assertion, verified on every request against the
//     proxy's JWKS, with pinned algorithms, issuer, audience and a small leeway.
//
// The identity is resolved on every request; nothing is remembered between
// requests, so revoking access at the proxy takes effect at once. Roles come
// from groups: ParseRoles reads SESSIONDESK_ROLES and RoleFor maps a user's
// groups to agent, lead or admin, or to nothing (the caller answers 403).
//
// Every error Authenticate returns wraps ErrUnauthenticated (HTTP 401); a
// *RefusedError additionally marks a request refused for its shape (a likely
// forgery attempt) and is worth logging. The error texts are safe to show.
package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"
)

// Identity is an authenticated agent as the login source describes it.
type Identity struct {
	Login string // the agent's login: the email, else the user name / sub
	// Subject is the login source's own, unchanging id of the person: the
	// user header's value (header mode), or the issuer and sub (jwt). A
	// person may be able to change their email, so the inbox binds a login
	// to one subject (store.SignIn). "" where there is none (the dev login).
	Subject string
	Name    string // display name, falls back to Login
	Email   string
	Groups  []string
	// ExpiresAt is when the proxy's assertion expires (jwt mode); zero when unknown.
	ExpiresAt time.Time
}

// ErrUnauthenticated means the request carries no identity this server
// trusts. Every error from an Authenticator wraps it: answer 401.
var ErrUnauthenticated = errors.New("not signed in")

// RefusedError is a request refused for its shape: an underscore variant of
// an identity header, two values of one, a wrong shared secret, a malformed
// assertion header. It wraps ErrUnauthenticated (so also 401); its message is
// safe to show to the client and worth logging, since it is most likely an
// attempt to forge an identity.
type RefusedError struct {
	Reason string
}

func (e *RefusedError) Error() string { return "request refused: " + e.Reason }

// Unwrap makes errors.Is(err, ErrUnauthenticated) hold for refusals too.
func (e *RefusedError) Unwrap() error { return ErrUnauthenticated }

func refused(format string, args ...any) error {
	return &RefusedError{Reason: fmt.Sprintf(format, args...)}
}

// Authenticator resolves the identity behind a request, on every request.
type Authenticator interface {
	Authenticate(r *http.Request) (Identity, error)
}

// Mode is how identities are established: SESSIONDESK_AUTH.
type Mode string

// The modes.
const (
	ModeDev    Mode = "dev"
	ModeHeader Mode = "header"
	ModeJWT    Mode = "jwt"
)

// Config is the authentication settings; New checks them.
type Config struct {
	// Mode is dev, header or jwt. Empty means the preset's mode, or dev when
	// no preset is set either.
	Mode Mode
	// Preset is oauth2-proxy, authelia, authentik (header mode), pomerium,
	// cloudflare or oidc (jwt mode); "" for none.
	Preset string
	// Header is the identity header (header mode) or the assertion header
	// (jwt mode); it overrides the preset's.
	Header string
	// SecretHeader and Secret: an optional shared secret the proxy adds to
	// every request (header mode); both or neither.
	SecretHeader string
	Secret       string
	// TrustedProxies are the only peers whose headers are believed (header
	// mode, required). In jwt mode they are optional; when set, requests
	// from other peers are not signed in either.
	TrustedProxies []netip.Prefix
	// JWKSURL, Issuer and Audience (jwt mode, all required; the cloudflare
	// preset derives the JWKS URL from the issuer).
	JWKSURL, Issuer, Audience string
	// Algorithms allowed in jwt mode; default RS256 and ES256. Never "none",
	// never HS*: the verifier only holds public keys.
	Algorithms []string
	// Leeway on exp, nbf and iat; default 60 s.
	Leeway time.Duration
	// HTTPClient fetches the JWKS; default a client with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

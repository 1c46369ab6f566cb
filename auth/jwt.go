package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxAssertion bounds the assertion header's length.
const maxAssertion = 64 << 10

// asymmetric are the signature algorithms accepted in Config.Algorithms.
var asymmetric = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// jwtAuth verifies a signed assertion from the proxy on every request.
//
// The token is checked with github.com/golang-jwt/jwt/v5 and the provider's
// keys are read with github.com/MicahParks/jwkset; the key set's cache is
// this package's own (jwks.go), because what it must do is specific: refresh
// in the background within bounds, keep the last good set when a fetch
// fails, and refetch on an unknown kid at most once per refetchEvery, so
// that a flood of forged tokens never turns into a flood of requests to the
// identity provider. Those two libraries add a quarter of a megabyte to the
// binary; lestrrat-go/jwx, used before, added almost two (JWE, secp256k1,
// its own HTTP cache), all of it resident on every start. The tests still
// sign their tokens and publish their keys with jwx: an independent
// implementation on the other side of the wire.
//
// What it checks:
//   - algorithm pinning: only the configured asymmetric algorithms, and the
//     one key the kid names, of the type and curve the algorithm needs and
//     published for that algorithm if the key names one;
//   - the issuer, the audience and a required expiry, with a configurable
//     leeway on exp, nbf and iat against an injectable clock.
type jwtAuth struct {
	header   string // canonical
	bearer   bool   // the header is Authorization: Bearer <token>
	issuer   string
	audience string
	algs     []string // the allowed signature algorithms
	leeway   time.Duration
	now      func() time.Time
	trusted  []netip.Prefix // optional
	keys     *keySet
}

func newJWT(cfg Config, p preset, start bool) (*jwtAuth, error) {
	header := p.assertion
	if cfg.Header != "" {
		header = cfg.Header
	}
	if header == "" {
		return nil, fmt.Errorf("SESSIONDESK_AUTH=jwt needs SESSIONDESK_AUTH_PRESET (%s) or SESSIONDESK_AUTH_HEADER "+
			"(the header carrying the signed assertion)", strings.Join(presetNames(ModeJWT), ", "))
	}
	jwksURL := cfg.JWKSURL
	if jwksURL == "" && cfg.Preset == "cloudflare" && cfg.Issuer != "" {
		// Cloudflare Access publishes the keys under the team domain, the issuer.
		jwksURL = strings.TrimRight(cfg.Issuer, "/") + "/cdn-cgi/access/certs"
	}
	var missing []string
	need := func(value, setting, hint string) {
		if value == "" {
			if hint != "" {
				setting += " (" + hint + ")"
			}
			missing = append(missing, setting)
		}
	}
	need(jwksURL, "SESSIONDESK_JWKS_URL", p.jwksHint)
	need(cfg.Issuer, "SESSIONDESK_JWT_ISSUER", p.issuerHint)
	need(cfg.Audience, "SESSIONDESK_JWT_AUDIENCE", p.audienceHint)
	if len(missing) > 0 {
		what := "SESSIONDESK_AUTH=jwt"
		if cfg.Preset != "" {
			what += " with SESSIONDESK_AUTH_PRESET=" + cfg.Preset
		}
		return nil, fmt.Errorf("%s needs %s", what, strings.Join(missing, "; and "))
	}
	if err := checkJWKSURL(jwksURL); err != nil {
		return nil, err
	}
	a := &jwtAuth{
		header:   http.CanonicalHeaderKey(header),
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		leeway:   cfg.Leeway,
		now:      cfg.Now,
		trusted:  cfg.TrustedProxies,
	}
	a.bearer = a.header == "Authorization"
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = defaultAlgorithms
	}
	for _, alg := range algs {
		switch {
		case strings.EqualFold(alg, "none"):
			return nil, errors.New(`jwt algorithms: "none" is refused: it means an unsigned token anyone can write`)
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			return nil, fmt.Errorf("jwt algorithms: %s is refused: it is a shared-secret algorithm, and a verifier that "+
				"holds public keys must never use one as the secret", alg)
		}
		if !asymmetric[alg] {
			return nil, fmt.Errorf("jwt algorithms: %q is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA", alg)
		}
		a.algs = append(a.algs, alg)
	}
	switch {
	case a.leeway < 0:
		return nil, fmt.Errorf("jwt leeway must not be negative, got %s", a.leeway)
	case a.leeway == 0:
		a.leeway = defaultLeeway
	}
	client := cfg.HTTPClient
	if client == nil {
		client = defaultHTTPClient()
	}
	a.keys = newKeySet(jwksURL, client, cfg.Now)
	if start {
		a.keys.start()
	}
	return a, nil
}

// Close stops the JWKS cache's background refresh.
func (a *jwtAuth) Close() error { return a.keys.close() }

// Authenticate implements Authenticator.
func (a *jwtAuth) Authenticate(r *http.Request) (Identity, error) {
	if len(a.trusted) > 0 && !trustedPeer(r.RemoteAddr, a.trusted) {
		return Identity{}, errNotFromProxy
	}
	vals := r.Header.Values(a.header)
	switch {
	case len(vals) == 0:
		return Identity{}, fmt.Errorf("%w: the proxy sent no %s header", ErrUnauthenticated, a.header)
	case len(vals) > 1:
		return Identity{}, refused("the request carries two values of %s", a.header)
	}
	raw := strings.TrimSpace(vals[0])
	if a.bearer {
		scheme, token, _ := strings.Cut(raw, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return Identity{}, refused("the Authorization header is not a Bearer token")
		}
		raw = strings.TrimSpace(token)
	}
	switch {
	case raw == "":
		return Identity{}, fmt.Errorf("%w: the %s header is empty", ErrUnauthenticated, a.header)
	case len(raw) > maxAssertion:
		return Identity{}, refused("the %s header is too long", a.header)
	case strings.Count(raw, ".") != 2:
		return Identity{}, refused("the %s header is not a signed token (JWT)", a.header)
	}
	claims, err := a.verify(r.Context(), raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: the proxy's assertion is not valid: %s", ErrUnauthenticated, err)
	}
	return identityOf(claims)
}

// verify checks the token's signature with the one key its kid names, with
// the algorithm its header names if that is allowed, then its claims. The
// error texts are safe to show.
func (a *jwtAuth) verify(ctx context.Context, raw string) (jwt.MapClaims, error) {
	var keyErr error
	claims := jwt.MapClaims{}
	// The parser refuses an algorithm not in a.algs before it asks for a key.
	tok, err := jwt.ParseWithClaims(raw, claims, func(tok *jwt.Token) (any, error) {
		if _, ok := tok.Header["crit"]; ok {
			// RFC 7515 4.1.11: extensions a verifier does not know refuse the token.
			keyErr = errors.New("it asks for extensions (crit) this inbox does not know")
			return nil, keyErr
		}
		kid, _ := tok.Header["kid"].(string)
		var key any
		key, keyErr = a.keys.key(ctx, kid, tok.Method.Alg())
		return key, keyErr
	},
		jwt.WithValidMethods(a.algs),
		jwt.WithIssuer(a.issuer),
		jwt.WithAudience(a.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(a.leeway),
		jwt.WithTimeFunc(a.now),
	)
	switch {
	case err == nil:
		return claims, nil
	case keyErr != nil:
		return nil, keyErr
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, errors.New("it is not a signed token")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// Also what the parser answers for an algorithm not allowed: say which.
		if tok != nil {
			if alg, _ := tok.Header["alg"].(string); !slices.Contains(a.algs, alg) {
				return nil, fmt.Errorf("it is signed with %q, which is not an allowed algorithm", alg)
			}
		}
		return nil, errors.New("its signature does not match the key")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return nil, missingClaim(claims)
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, errors.New("it has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, errors.New("it is not valid yet")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return nil, errors.New("it is issued in the future")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return nil, errors.New("it comes from another issuer")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return nil, errors.New("it is meant for another audience")
	}
	return nil, errors.New("it could not be verified")
}

// missingClaim names the required claim a token lacks.
func missingClaim(c jwt.MapClaims) error {
	if _, ok := c["exp"]; !ok {
		return errors.New("it has no expiry (exp)")
	}
	if iss, _ := c.GetIssuer(); iss == "" {
		return errors.New("it names no issuer (iss)")
	}
	return errors.New("it names no audience (aud)")
}

// identityOf reads the agent from verified claims: the email, else sub; the
// name; the groups as a list or a comma-separated string. An email whose
// email_verified claim is false is not used as the login.
func identityOf(c jwt.MapClaims) (Identity, error) {
	id := Identity{Email: stringClaim(c, "email")}
	if verified, ok := c["email_verified"].(bool); ok && !verified {
		id.Email = ""
	}
	sub := stringClaim(c, "sub")
	if sub != "" {
		// sub is unique within its issuer only.
		iss, _ := c.GetIssuer()
		id.Subject = iss + " " + sub
	}
	id.Login = id.Email
	if id.Login == "" {
		id.Login = sub
	}
	if id.Login == "" {
		return Identity{}, fmt.Errorf("%w: the proxy's assertion names no user (no email or sub claim)", ErrUnauthenticated)
	}
	if id.Name = stringClaim(c, "name"); id.Name == "" {
		id.Name = id.Login
	}
	switch g := c["groups"].(type) {
	case string:
		id.Groups = splitGroups([]string{g}, ",")
	case []any:
		var names []string
		for _, v := range g {
			if s, ok := v.(string); ok {
				names = append(names, s)
			}
		}
		id.Groups = cleanGroups(names)
	}
	if exp, err := c.GetExpirationTime(); err == nil && exp != nil {
		id.ExpiresAt = exp.Time
	}
	return id, nil
}

func stringClaim(c jwt.MapClaims, name string) string {
	s, _ := c[name].(string)
	return strings.TrimSpace(s)
}

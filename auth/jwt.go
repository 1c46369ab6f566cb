package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

const (
	// refetchEvery is the least time between two fetches of the JWKS that
	// tokens with unknown kids trigger, so that a flood of made-up kids
	// cannot hammer the identity provider (30 s, as in panva/jose).
	refetchEvery = 30 * time.Second
	// The background refresh: Cache-Control is honoured between these, and
	// with no Cache-Control the keys are refetched every keysMinAge. A key
	// the provider removed stops verifying within keysMaxAge at the latest.
	keysMinAge = 5 * time.Minute
	keysMaxAge = time.Hour
	// maxAssertion bounds the assertion header's length.
	maxAssertion = 64 << 10
)

// asymmetric are the signature algorithms accepted in Config.Algorithms, with
// the key type each needs.
var asymmetric = map[string]jwa.KeyType{
	"RS256": jwa.RSA(), "RS384": jwa.RSA(), "RS512": jwa.RSA(),
	"PS256": jwa.RSA(), "PS384": jwa.RSA(), "PS512": jwa.RSA(),
	"ES256": jwa.EC(), "ES384": jwa.EC(), "ES512": jwa.EC(),
	"EdDSA": jwa.OKP(),
}

// jwtAuth verifies a signed assertion from the proxy on every request.
//
// It uses github.com/lestrrat-go/jwx/v3, rather than
// coreos/go-oidc/v3 with go-jose, because it gives every piece this mode
// needs as a plain option:
//
//   - a JWKS cache (jwk.Cache, on lestrrat-go/httprc) that refreshes the key
//     set in the background, honouring Cache-Control within bounds, keeps the
//     last good set when a fetch fails, and can be refreshed on demand, which
//     is what a token with an unknown kid triggers here (rate-limited below);
//   - algorithm pinning: the token is verified with exactly one key and one
//     algorithm chosen here (jwt.WithKey), never with what the header asks;
//   - issuer and audience checks (jwt.WithIssuer, jwt.WithAudience), required
//     claims, and a configurable leeway on exp, nbf and iat
//     (jwt.WithAcceptableSkew) against an injectable clock (jwt.WithClock).
//
// go-oidc's IDTokenVerifier checks exp with no configurable leeway, is shaped
// for OIDC id tokens rather than Pomerium's and Cloudflare's assertions, and
// its RemoteKeySet refetches the keys whenever no cached key verifies a token
// (unknown kid or bad signature), coalesced but not rate-limited, which a
// flood of forged tokens turns into a flood of requests to the identity
// provider.
type jwtAuth struct {
	header   string // canonical
	bearer   bool   // the header is Authorization: Bearer <token>
	issuer   string
	audience string
	algs     map[string]bool
	leeway   time.Duration
	now      func() time.Time
	trusted  []netip.Prefix // optional
	keys     *keySet
}

func newJWT(cfg Config, p preset) (*jwtAuth, error) {
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
		algs:     map[string]bool{},
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
		if _, ok := asymmetric[alg]; !ok {
			return nil, fmt.Errorf("jwt algorithms: %q is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA", alg)
		}
		a.algs[alg] = true
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
	keys, err := newKeySet(jwksURL, client, cfg.Now)
	if err != nil {
		return nil, err
	}
	a.keys = keys
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
	tok, err := a.verify(r.Context(), []byte(raw))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: the proxy's assertion is not valid: %s", ErrUnauthenticated, err)
	}
	return identityOf(tok)
}

// verify checks the token's signature with the one key its kid names, with
// the algorithm its header names if that is allowed, then its claims. The
// error texts are safe to show.
func (a *jwtAuth) verify(ctx context.Context, raw []byte) (jwt.Token, error) {
	msg, err := jws.Parse(raw, jws.WithCompact())
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, errors.New("it is not a signed token")
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg, ok := hdr.Algorithm()
	if !ok || !a.algs[alg.String()] {
		return nil, fmt.Errorf("it is signed with %q, which is not an allowed algorithm", alg.String())
	}
	kid, _ := hdr.KeyID()
	key, err := a.keys.key(ctx, kid, alg)
	if err != nil {
		return nil, err
	}
	tok, err := jwt.Parse(raw,
		jwt.WithKey(alg, key),
		jwt.WithValidate(true),
		jwt.WithIssuer(a.issuer),
		jwt.WithAudience(a.audience),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithAcceptableSkew(a.leeway),
		jwt.WithClock(jwt.ClockFunc(a.now)),
	)
	if err == nil {
		return tok, nil
	}
	switch {
	case errors.Is(err, jwt.TokenExpiredError()):
		return nil, errors.New("it has expired")
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return nil, errors.New("it is not valid yet")
	case errors.Is(err, jwt.InvalidIssuedAtError()):
		return nil, errors.New("it is issued in the future")
	case errors.Is(err, jwt.InvalidIssuerError()):
		return nil, errors.New("it comes from another issuer")
	case errors.Is(err, jwt.InvalidAudienceError()):
		return nil, errors.New("it is meant for another audience")
	case errors.Is(err, jwt.MissingRequiredClaimError()):
		return nil, errors.New("it has no expiry (exp)")
	case errors.Is(err, jws.VerifyError()), errors.Is(err, jws.VerificationError()):
		return nil, errors.New("its signature does not match the key")
	}
	return nil, errors.New("it could not be verified")
}

// identityOf reads the agent from verified claims: the email, else sub; the
// name; the groups as a list or a comma-separated string. An email whose
// email_verified claim is false is not used as the login.
func identityOf(tok jwt.Token) (Identity, error) {
	id := Identity{Email: stringClaim(tok, "email")}
	var verified any
	if tok.Get("email_verified", &verified) == nil && verified == false {
		id.Email = ""
	}
	id.Login = id.Email
	if id.Login == "" {
		id.Login, _ = tok.Subject()
		id.Login = strings.TrimSpace(id.Login)
	}
	if id.Login == "" {
		return Identity{}, fmt.Errorf("%w: the proxy's assertion names no user (no email or sub claim)", ErrUnauthenticated)
	}
	if id.Name = stringClaim(tok, "name"); id.Name == "" {
		id.Name = id.Login
	}
	var groups any
	if tok.Get("groups", &groups) == nil {
		switch g := groups.(type) {
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
		case []string:
			id.Groups = cleanGroups(g)
		}
	}
	id.ExpiresAt, _ = tok.Expiration()
	return id, nil
}

func stringClaim(tok jwt.Token, name string) string {
	var v any
	if tok.Get(name, &v) != nil {
		return ""
	}
	s, _ := v.(string)
	return strings.TrimSpace(s)
}

// keySet is the proxy's JWKS: cached by jwk.Cache, refreshed in the
// background, and refetched when a token names a kid it does not hold, at
// most once per refetchEvery.
type keySet struct {
	url   string
	cache *jwk.Cache
	res   *httprc.ResourceBase[jwk.Set]
	now   func() time.Time
	every time.Duration

	mu          sync.Mutex // one on-demand refetch at a time
	lastRefetch time.Time  // guarded by mu
}

func newKeySet(url string, client *http.Client, now func() time.Time) (*keySet, error) {
	ctx := context.Background()
	cache, err := jwk.NewCache(ctx, httprc.NewClient(httprc.WithWorkers(1)))
	if err != nil {
		return nil, fmt.Errorf("jwt: starting the key cache: %w", err)
	}
	// No waiting for the first fetch: starting does not depend on the
	// identity provider being up; the first request waits for the keys.
	err = cache.Register(ctx, url,
		jwk.WithHTTPClient(client),
		jwk.WithWaitReady(false),
		jwk.WithMinInterval(keysMinAge),
		jwk.WithMaxInterval(keysMaxAge),
	)
	if err != nil {
		_ = cache.Shutdown(ctx)
		return nil, fmt.Errorf("SESSIONDESK_JWKS_URL=%q: %w", url, err)
	}
	res, err := cache.LookupResource(ctx, url)
	if err != nil {
		_ = cache.Shutdown(ctx)
		return nil, fmt.Errorf("SESSIONDESK_JWKS_URL=%q: %w", url, err)
	}
	return &keySet{url: url, cache: cache, res: res, now: now, every: refetchEvery}, nil
}

func (k *keySet) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return k.cache.Shutdown(ctx)
}

// key is the key that verifies a token with this kid and alg: from the
// cached set, else from a fresh fetch if none was made in the last
// k.every. The errors are safe to show.
func (k *keySet) key(ctx context.Context, kid string, alg jwa.SignatureAlgorithm) (jwk.Key, error) {
	if key, ok := pick(k.res.Resource(), kid, alg); ok {
		return key, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	// Another request may have refetched while this one waited.
	if key, ok := pick(k.res.Resource(), kid, alg); ok {
		return key, nil
	}
	now := k.now()
	if !k.lastRefetch.IsZero() && now.Sub(k.lastRefetch) < k.every {
		return nil, k.unknown(kid)
	}
	k.lastRefetch = now
	// The fetch this request starts is for every request: let it finish
	// even if this client goes away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultFetchTimeout+5*time.Second)
	defer cancel()
	if _, err := k.cache.Refresh(ctx, k.url); err != nil && k.res.Resource() == nil {
		return nil, errors.New("the proxy's signing keys could not be fetched")
	}
	if key, ok := pick(k.res.Resource(), kid, alg); ok {
		return key, nil
	}
	return nil, k.unknown(kid)
}

func (k *keySet) unknown(kid string) error {
	if k.res.Resource() == nil {
		return errors.New("the proxy's signing keys could not be fetched")
	}
	if kid == "" {
		return errors.New("it names no key (kid) and no single key fits")
	}
	return errors.New("it is signed by an unknown key")
}

// pick finds the key for kid fit for alg: of alg's key type, for signing,
// and of alg if the key names one. With no kid, the only fitting key if
// there is exactly one.
func pick(set jwk.Set, kid string, alg jwa.SignatureAlgorithm) (jwk.Key, bool) {
	if set == nil {
		return nil, false
	}
	want := asymmetric[alg.String()]
	var found jwk.Key
	n := 0
	for i := range set.Len() {
		key, ok := set.Key(i)
		if !ok || key.KeyType() != want {
			continue
		}
		if use, ok := key.KeyUsage(); ok && use != "sig" {
			continue
		}
		if ka, ok := key.Algorithm(); ok && ka.String() != alg.String() {
			continue
		}
		id, _ := key.KeyID()
		if kid != "" {
			if id == kid {
				return key, true
			}
			continue
		}
		found = key
		n++
	}
	return found, n == 1
}

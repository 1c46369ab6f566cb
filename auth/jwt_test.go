package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"sessiondesk/clock"
)

const (
	testIssuer   = "https://team.cloudflareaccess.com"
	testAudience = "inbox-aud"
)

// Keys are made once: RSA generation is the slow part.
var testKeys = sync.OnceValue(func() (k struct{ rsa, rsaOther *rsa.PrivateKey }) {
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	return k
})

// signer is a private key as a JWK with its kid.
type signer struct {
	priv jwk.Key
	alg  jwa.SignatureAlgorithm
}

func newSigner(t *testing.T, raw any, kid string, alg jwa.SignatureAlgorithm) signer {
	t.Helper()
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	return signer{priv: k, alg: alg}
}

func ecSigner(t *testing.T, kid string) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newSigner(t, k, kid, jwa.ES256())
}

// public is the JWKS entry of s, as a provider publishes it (with alg and use).
func (s signer) public(t *testing.T) jwk.Key {
	t.Helper()
	pub, err := s.priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Set(jwk.AlgorithmKey, s.alg)
	_ = pub.Set(jwk.KeyUsageKey, "sig")
	return pub
}

// idp serves a JWKS and counts its fetches.
type idp struct {
	srv     *httptest.Server
	mu      sync.Mutex
	body    []byte
	fetches atomic.Int64
}

func newIDP(t *testing.T, keys ...jwk.Key) *idp {
	t.Helper()
	p := &idp{}
	p.publish(t, keys...)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		p.mu.Lock()
		body := p.body
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) publish(t *testing.T, keys ...jwk.Key) {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k); err != nil {
			t.Fatal(err)
		}
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.body = body
	p.mu.Unlock()
}

type jwtFixture struct {
	clock  *clock.Manual
	idp    *idp
	rsa    signer // kid rsa-1, published
	ec     signer // kid ec-1, published
	auth   *jwtAuth
	header string
}

func newJWTFixture(t *testing.T, cfg Config) *jwtFixture {
	t.Helper()
	f := &jwtFixture{
		clock: clock.NewManual(time.Now().Truncate(time.Second)),
		rsa:   newSigner(t, testKeys().rsa, "rsa-1", jwa.RS256()),
		ec:    ecSigner(t, "ec-1"),
	}
	f.idp = newIDP(t, f.rsa.public(t), f.ec.public(t))
	cfg.Mode = ModeJWT
	if cfg.Preset == "" && cfg.Header == "" {
		cfg.Preset = "cloudflare"
	}
	cfg.JWKSURL = f.idp.srv.URL + "/certs"
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	cfg.Audience = testAudience
	cfg.Now = f.clock.Now
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.auth = a.(*jwtAuth)
	t.Cleanup(func() { _ = f.auth.Close() })
	f.header = f.auth.header
	return f
}

// claims are a good token's claims; edit them per test.
func (f *jwtFixture) claims() map[string]any {
	now := f.clock.Now()
	return map[string]any{
		jwt.IssuerKey:     testIssuer,
		jwt.AudienceKey:   []string{testAudience},
		jwt.SubjectKey:    "u-123",
		jwt.IssuedAtKey:   now,
		jwt.NotBeforeKey:  now,
		jwt.ExpirationKey: now.Add(5 * time.Minute),
		"email":           "ana@example.com",
		"name":            "Ana Lima",
		"groups":          []string{"support", "support-admins"},
	}
}

func sign(t *testing.T, s signer, claims map[string]any) string {
	t.Helper()
	b := jwt.NewBuilder()
	for k, v := range claims {
		b.Claim(k, v)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Sign(tok, jwt.WithKey(s.alg, s.priv))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func (f *jwtFixture) auth1(token string) (Identity, error) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "198.51.100.4:4000"
	if f.header == "Authorization" {
		token = "Bearer " + token
	}
	r.Header.Set(f.header, token)
	return f.auth.Authenticate(r)
}

func TestJWTGood(t *testing.T) {
	for _, tc := range []struct {
		preset string
		signer func(*jwtFixture) signer
		groups any
	}{
		{"cloudflare", func(f *jwtFixture) signer { return f.rsa }, "support, support-admins"},
		{"pomerium", func(f *jwtFixture) signer { return f.ec }, []string{"support", "support-admins"}},
		{"oidc", func(f *jwtFixture) signer { return f.rsa }, []string{"support", "support-admins", "support"}},
	} {
		f := newJWTFixture(t, Config{Preset: tc.preset})
		c := f.claims()
		c["groups"] = tc.groups
		s := tc.signer(f)
		id, err := f.auth1(sign(t, s, c))
		exp := c[jwt.ExpirationKey].(time.Time)
		if err != nil || id.Login != "ana@example.com" || id.Subject != testIssuer+" u-123" || id.Email != "ana@example.com" || id.Name != "Ana Lima" ||
			!slices.Equal(id.Groups, []string{"support", "support-admins"}) || !id.ExpiresAt.Equal(exp) {
			t.Errorf("%s %s: got %+v, %v", tc.preset, s.alg, id, err)
		}
		role, ok := RoleFor(id.Groups, map[string]string{"support-admins": RoleAdmin})
		if !ok || role != RoleAdmin {
			t.Errorf("%s: role %q, %v", tc.preset, role, ok)
		}
	}
}

func TestJWTIdentityFallbacks(t *testing.T) {
	f := newJWTFixture(t, Config{})
	c := f.claims()
	delete(c, "email")
	delete(c, "name")
	delete(c, "groups")
	id, err := f.auth1(sign(t, f.rsa, c))
	if err != nil || id.Login != "u-123" || id.Name != "u-123" || id.Email != "" || id.Groups != nil {
		t.Errorf("no email: got %+v, %v", id, err)
	}
	// An email the provider has not verified is not a login.
	c = f.claims()
	c["email_verified"] = false
	if id, err := f.auth1(sign(t, f.rsa, c)); err != nil || id.Login != "u-123" || id.Email != "" {
		t.Errorf("unverified email: got %+v, %v", id, err)
	}
	c["email_verified"] = true
	if id, err := f.auth1(sign(t, f.rsa, c)); err != nil || id.Login != "ana@example.com" {
		t.Errorf("verified email: got %+v, %v", id, err)
	}
	c = f.claims()
	delete(c, "email")
	delete(c, jwt.SubjectKey)
	id, err = f.auth1(sign(t, f.rsa, c))
	wantUnauthenticated(t, "no user", id, err)
}

func TestJWTRefusals(t *testing.T) {
	f := newJWTFixture(t, Config{})
	now := f.clock.Now()
	edit := func(k string, v any) map[string]any {
		c := f.claims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	// Each refusal gives its own reason: the operator reads it in the log.
	for _, tc := range []struct{ name, token, reason string }{
		{"wrong RSA key, same kid", sign(t, newSigner(t, testKeys().rsaOther, "rsa-1", jwa.RS256()), f.claims()), "signature does not match"},
		{"wrong EC key, same kid", sign(t, ecSigner(t, "ec-1"), f.claims()), "signature does not match"},
		{"RSA token with the EC kid", sign(t, newSigner(t, testKeys().rsa, "ec-1", jwa.RS256()), f.claims()), "unknown key"},
		{"wrong audience", sign(t, f.rsa, edit(jwt.AudienceKey, []string{"another-app"})), "another audience"},
		{"no audience", sign(t, f.rsa, edit(jwt.AudienceKey, nil)), "no audience (aud)"},
		{"wrong issuer", sign(t, f.ec, edit(jwt.IssuerKey, "https://evil.cloudflareaccess.com")), "another issuer"},
		{"no issuer", sign(t, f.ec, edit(jwt.IssuerKey, nil)), "no issuer (iss)"},
		{"expired beyond leeway", sign(t, f.rsa, edit(jwt.ExpirationKey, now.Add(-61*time.Second))), "expired"},
		{"not yet valid", sign(t, f.rsa, edit(jwt.NotBeforeKey, now.Add(2*time.Minute))), "not valid yet"},
		{"issued in the future", sign(t, f.rsa, edit(jwt.IssuedAtKey, now.Add(2*time.Minute))), "issued in the future"},
		{"no expiry", sign(t, f.rsa, edit(jwt.ExpirationKey, nil)), "no expiry (exp)"},
		{"alg none", unsigned(t, "rsa-1", f.claims()), `"none", which is not an allowed algorithm`},
		{"HS256 with the public key", hmacWithPublicKey(t, f.claims()), `"HS256", which is not an allowed algorithm`},
		{"tampered payload", tamper(t, sign(t, f.rsa, f.claims())), "signature does not match"},
		{"critical extension", withHeader(t, f.rsa, "crit", []string{"exp"}, f.claims()), "extensions (crit)"},
		{"payload not base64", mangle(sign(t, f.rsa, f.claims()), 1, "!!"), "not a signed token"},
	} {
		id, err := f.auth1(tc.token)
		wantUnauthenticated(t, tc.name, id, err)
		if err != nil && !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: %v; want the reason %q", tc.name, err, tc.reason)
		}
	}
	for name, value := range map[string]string{
		"not a JWT":       "hello",
		"JSON serialized": `{"payload":"e30","signatures":[]}`,
	} {
		id, err := f.auth1(value)
		wantRefused(t, name, id, err)
	}
	// Missing: not signed in; two values: refused.
	r := httptest.NewRequest("GET", "/", nil)
	id, err := f.auth.Authenticate(r)
	wantUnauthenticated(t, "no assertion", id, err)
	good := sign(t, f.rsa, f.claims())
	r.Header.Add(f.header, good)
	r.Header.Add(f.header, good)
	id, err = f.auth.Authenticate(r)
	wantRefused(t, "two assertions", id, err)
}

func TestJWTLeeway(t *testing.T) {
	f := newJWTFixture(t, Config{})
	now := f.clock.Now()
	c := f.claims()
	c[jwt.ExpirationKey] = now.Add(-30 * time.Second)
	if id, err := f.auth1(sign(t, f.rsa, c)); err != nil || id.Login != "ana@example.com" {
		t.Errorf("expired within leeway: %+v, %v", id, err)
	}
	c = f.claims()
	c[jwt.NotBeforeKey] = now.Add(30 * time.Second)
	if _, err := f.auth1(sign(t, f.rsa, c)); err != nil {
		t.Errorf("nbf within leeway: %v", err)
	}
	// A narrower leeway is honoured.
	f = newJWTFixture(t, Config{Leeway: 10 * time.Second})
	c = f.claims()
	c[jwt.ExpirationKey] = f.clock.Now().Add(-30 * time.Second)
	id, err := f.auth1(sign(t, f.rsa, c))
	wantUnauthenticated(t, "expired beyond a 10 s leeway", id, err)
}

func TestJWTAlgorithmPinning(t *testing.T) {
	f := newJWTFixture(t, Config{Preset: "pomerium", Algorithms: []string{"ES256"}})
	if _, err := f.auth1(sign(t, f.ec, f.claims())); err != nil {
		t.Fatalf("ES256: %v", err)
	}
	id, err := f.auth1(sign(t, f.rsa, f.claims()))
	wantUnauthenticated(t, "RS256 when only ES256 is allowed", id, err)
	// A key published for RS256 does not verify PS256, even with its kid.
	f = newJWTFixture(t, Config{Algorithms: []string{"RS256", "PS256"}})
	ps := newSigner(t, testKeys().rsa, "rsa-1", jwa.PS256())
	id, err = f.auth1(sign(t, ps, f.claims()))
	wantUnauthenticated(t, "PS256 with a key published for RS256", id, err)
}

func TestJWTKeyRotationAndKidFlood(t *testing.T) {
	f := newJWTFixture(t, Config{})
	if _, err := f.auth1(sign(t, f.rsa, f.claims())); err != nil {
		t.Fatal(err)
	}
	before := f.idp.fetches.Load()
	// A flood of made-up kids: at most one refetch in the window.
	for i := range 50 {
		id, err := f.auth1(sign(t, newSigner(t, testKeys().rsa, fmt.Sprintf("bogus-%d", i), jwa.RS256()), f.claims()))
		wantUnauthenticated(t, "bogus kid", id, err)
	}
	if n := f.idp.fetches.Load() - before; n > 1 {
		t.Errorf("50 unknown kids made %d JWKS fetches; want at most 1", n)
	}
	// The provider rotates to a new key; once the window has passed, the
	// first token with the new kid makes one refetch and is accepted.
	rotated := ecSigner(t, "ec-2")
	f.idp.publish(t, rotated.public(t))
	f.clock.Add(refetchEvery + time.Second)
	before = f.idp.fetches.Load()
	id, err := f.auth1(sign(t, rotated, f.claims()))
	if err != nil || id.Login != "ana@example.com" {
		t.Fatalf("token with the new kid: %+v, %v", id, err)
	}
	if n := f.idp.fetches.Load() - before; n != 1 {
		t.Errorf("rotation made %d fetches; want 1", n)
	}
	// The keys are cached: more tokens make no fetch.
	for range 10 {
		if _, err := f.auth1(sign(t, rotated, f.claims())); err != nil {
			t.Fatal(err)
		}
	}
	// The old key was removed from the set: its tokens no longer verify.
	_, err = f.auth1(sign(t, f.rsa, f.claims()))
	wantUnauthenticated(t, "removed key", Identity{}, err)
	if n := f.idp.fetches.Load() - before; n != 1 {
		t.Errorf("cached keys: %d fetches; want 1", n)
	}
}

func TestJWTConcurrentFirstRequests(t *testing.T) {
	f := newJWTFixture(t, Config{Preset: "pomerium"})
	token := sign(t, f.ec, f.claims())
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if _, err := f.auth1(token); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// They all wait for the fetch that starting began.
	if n := f.idp.fetches.Load(); n != 1 {
		t.Errorf("20 concurrent first requests made %d fetches; want 1", n)
	}
}

func TestJWTUnreachableKeys(t *testing.T) {
	f := newJWTFixture(t, Config{})
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	a, err := New(Config{Preset: "cloudflare", JWKSURL: gone.URL, Issuer: testIssuer, Audience: testAudience, Now: f.clock.Now})
	if err != nil {
		t.Fatalf("New must not depend on the keys being reachable: %v", err)
	}
	defer a.(*jwtAuth).Close()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cf-Access-Jwt-Assertion", sign(t, f.rsa, f.claims()))
	id, err := a.Authenticate(r)
	wantUnauthenticated(t, "keys unreachable", id, err)
}

func TestJWTTrustedProxiesOptional(t *testing.T) {
	f := newJWTFixture(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	id, err := f.auth1(sign(t, f.rsa, f.claims())) // from 198.51.100.4
	wantUnauthenticated(t, "jwt from outside the trusted proxies", id, err)
}

func TestJWTBearer(t *testing.T) {
	f := newJWTFixture(t, Config{Preset: "oidc"})
	good := sign(t, f.rsa, f.claims())
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"Bearer " + good, true},
		{"bearer  " + good, true},
		{"Basic YWxhZGRpbjpvcGVuc2VzYW1l", false},
		{good, false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", tc.value)
		id, err := f.auth.Authenticate(r)
		if tc.ok != (err == nil) {
			t.Errorf("%.20q: %+v, %v", tc.value, id, err)
		}
	}
}

// unsigned is an alg "none" token.
func unsigned(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	hdr, _ := json.Marshal(map[string]string{"alg": "none", "kid": kid, "typ": "JWT"})
	body, err := json.Marshal(claimsJSON(claims))
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(hdr) + "." + enc.EncodeToString(body) + "."
}

// hmacWithPublicKey is the algorithm-confusion attack: HS256 keyed with the
// RSA public key's PEM bytes, under the RSA key's kid.
func hmacWithPublicKey(t *testing.T, claims map[string]any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&testKeys().rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return sign(t, newSigner(t, secret, "rsa-1", jwa.HS256()), claims)
}

// tamper changes the payload of a signed token, keeping its signature.
func tamper(t *testing.T, token string) string {
	t.Helper()
	var parts [3]string
	n := 0
	for i, start := 0, 0; i <= len(token); i++ {
		if i == len(token) || token[i] == '.' {
			parts[n] = token[start:i]
			n++
			start = i + 1
		}
	}
	c := map[string]any{"iss": testIssuer, "aud": testAudience, "sub": "boss", "email": "boss@example.com",
		"exp": time.Now().Add(time.Hour).Unix(), "groups": []string{"support-admins"}}
	body, _ := json.Marshal(c)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(body) + "." + parts[2]
}

// claimsJSON turns times into NumericDates.
func claimsJSON(claims map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range claims {
		if tm, ok := v.(time.Time); ok {
			v = tm.Unix()
		}
		out[k] = v
	}
	return out
}

// withHeader signs claims with one more protected header.
func withHeader(t *testing.T, s signer, name string, value any, claims map[string]any) string {
	t.Helper()
	hdr := jws.NewHeaders()
	if err := hdr.Set(name, value); err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(claimsJSON(claims))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.Sign(body, jws.WithKey(s.alg, s.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// mangle replaces the i-th dot-separated part of a token.
func mangle(token string, i int, part string) string {
	parts := strings.Split(token, ".")
	parts[i] = part
	return strings.Join(parts, ".")
}

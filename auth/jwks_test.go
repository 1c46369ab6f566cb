package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

func TestKeysKeptForCacheControlWithinBounds(t *testing.T) {
	k := newKeySet("https://idp.example/certs", http.DefaultClient, time.Now)
	for cc, want := range map[string]time.Duration{
		"":                                keysMinAge,
		"max-age=0":                       keysMinAge,
		"no-store":                        keysMinAge,
		"public, max-age=900":             15 * time.Minute,
		`max-age="1200", must-revalidate`: 20 * time.Minute,
		"MAX-AGE=86400":                   keysMaxAge,
		"max-age=-5":                      keysMinAge,
		"max-age=soon":                    keysMinAge,
	} {
		if got := k.maxAgeOf(cc); got != want {
			t.Errorf("Cache-Control %q: keys kept %s, want %s", cc, got, want)
		}
	}
}

// TestKeysRefreshedInTheBackground: a rotated key verifies without any
// token asking for it, and a provider that fails, or serves an empty set,
// keeps the last good set.
func TestKeysRefreshedInTheBackground(t *testing.T) {
	old := ecSigner(t, "ec-old")
	p := newIDP(t, old.public(t))
	var failing, empty atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			p.fetches.Add(1)
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		if empty.Load() {
			p.fetches.Add(1)
			_, _ = w.Write([]byte(`{"keys":[]}`))
			return
		}
		p.srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	k := newKeySet(srv.URL, srv.Client(), time.Now)
	k.minAge, k.maxAge = 10*time.Millisecond, 10*time.Millisecond
	k.lastRefetch = time.Now() // no on-demand refetch: only the background one
	k.every = time.Hour
	k.start()
	defer k.close()
	ctx := context.Background()
	if _, err := k.key(ctx, "ec-old", "ES256"); err != nil {
		t.Fatalf("the first set: %v", err)
	}
	rotated := ecSigner(t, "ec-new")
	p.publish(t, rotated.public(t))
	waitFor(t, "the rotated key", func() bool { _, err := k.key(ctx, "ec-new", "ES256"); return err == nil })
	if _, err := k.key(ctx, "ec-old", "ES256"); err == nil {
		t.Error("the removed key still verifies after a refresh")
	}
	failing.Store(true)
	before := p.fetches.Load()
	waitFor(t, "failed refreshes", func() bool { return p.fetches.Load() >= before+3 })
	if _, err := k.key(ctx, "ec-new", "ES256"); err != nil {
		t.Errorf("a failing provider lost the last good set: %v", err)
	}
	failing.Store(false)
	empty.Store(true)
	before = p.fetches.Load()
	waitFor(t, "refreshes answered with an empty set", func() bool { return p.fetches.Load() >= before+3 })
	if _, err := k.key(ctx, "ec-new", "ES256"); err != nil {
		t.Errorf("an empty set replaced the last good one: %v", err)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
	}
}

// TestJWKSParsing: keys that cannot verify are skipped, not fatal; a set
// with none that can is an error, as is a body that is not a set or too big.
func TestJWKSParsing(t *testing.T) {
	good := ecSigner(t, "ec-1").public(t)
	enc := ecSigner(t, "ec-enc").public(t)
	_ = enc.Set(jwk.KeyUsageKey, "enc")
	oct, err := jwk.Import([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	_ = oct.Set(jwk.KeyIDKey, "hs")
	set := jwk.NewSet()
	for _, key := range []jwk.Key{enc, oct, good} {
		_ = set.AddKey(key)
	}
	body, _ := json.Marshal(set)
	// One more key that is broken: an EC point not on its curve.
	var raw map[string][]map[string]any
	_ = json.Unmarshal(body, &raw)
	raw["keys"] = append(raw["keys"], map[string]any{"kty": "EC", "crv": "P-256", "kid": "broken",
		"x": "AAAA", "y": "AAAA"})
	body, _ = json.Marshal(raw)
	keys, err := parseJWKS(body)
	if err != nil || len(keys) != 1 || keys[0].kid != "ec-1" || keys[0].alg != "ES256" {
		t.Fatalf("parseJWKS kept %+v, %v; want only ec-1", keys, err)
	}
	for name, body := range map[string]string{
		"only unusable keys": `{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"hs"}]}`,
		"no key":             `{"keys":[]}`,
		"no keys member":     `{}`,
		"not JSON":           `<html>sign in</html>`,
		"keys not a list":    `{"keys":{"kty":"EC"}}`,
	} {
		if keys, err := parseJWKS([]byte(body)); err == nil {
			t.Errorf("%s: kept %+v, want an error", name, keys)
		}
	}
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[` + strings.Repeat(" ", maxJWKS) + `]}`))
	}))
	defer huge.Close()
	k := newKeySet(huge.URL, huge.Client(), time.Now)
	if _, err := k.fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("a JWKS over %d bytes: %v, want refused", maxJWKS, err)
	}
}

// TestKeyFitsItsAlgorithm: a key verifies only the algorithms of its type
// and, for EC, of its curve.
func TestKeyFitsItsAlgorithm(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	rsaPub := &testKeys().rsa.PublicKey
	for _, tc := range []struct {
		name string
		key  any
		alg  string
		want bool
	}{
		{"RSA RS256", rsaPub, "RS256", true},
		{"RSA PS512", rsaPub, "PS512", true},
		{"RSA ES256", rsaPub, "ES256", false},
		{"P-256 ES256", &p256.PublicKey, "ES256", true},
		{"P-256 ES384", &p256.PublicKey, "ES384", false},
		{"P-384 ES384", &p384.PublicKey, "ES384", true},
		{"P-384 ES256", &p384.PublicKey, "ES256", false},
		{"Ed25519 EdDSA", edPub, "EdDSA", true},
		{"Ed25519 ES256", edPub, "ES256", false},
		{"RSA EdDSA", rsaPub, "EdDSA", false},
	} {
		if got := fits(tc.key, tc.alg); got != tc.want {
			t.Errorf("%s: fits %v, want %v", tc.name, got, tc.want)
		}
	}
	// With no kid, the one key that fits is used; with two, none is.
	one := []verifyingKey{{kid: "a", key: rsaPub}, {kid: "b", key: &p256.PublicKey}}
	if key, ok := pick(&one, "", "ES256"); !ok || key != any(&p256.PublicKey) {
		t.Errorf("no kid, one EC key: %v, %v", key, ok)
	}
	two := append(one, verifyingKey{kid: "c", key: &p256.PublicKey})
	if _, ok := pick(&two, "", "ES256"); ok {
		t.Error("no kid, two EC keys: picked one")
	}
	// A key published for RS256 does not verify PS256.
	pinned := []verifyingKey{{kid: "r", alg: "RS256", key: rsaPub}}
	if _, ok := pick(&pinned, "r", "PS256"); ok {
		t.Error("a key published for RS256 was picked for PS256")
	}
}

// TestCheckStartsNoFetch: checking the settings (as the configuration does
// at start-up) fetches nothing and leaves nothing running; only New starts
// the key refresh, and Close stops it.
func TestCheckStartsNoFetch(t *testing.T) {
	p := newIDP(t, ecSigner(t, "ec-1").public(t))
	cfg := Config{Mode: ModeJWT, Preset: "cloudflare", JWKSURL: p.srv.URL + "/certs", Issuer: testIssuer, Audience: testAudience}
	for range 5 {
		if err := Check(cfg); err != nil {
			t.Fatal(err)
		}
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	j := a.(*jwtAuth)
	<-j.keys.ready
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if n := p.fetches.Load(); n != 1 {
		t.Errorf("5 checks and one New made %d JWKS fetches; want 1 (New's)", n)
	}
	bad := cfg
	bad.JWKSURL = "ftp://idp.example/certs"
	if err := Check(bad); err == nil {
		t.Error("Check accepted an ftp JWKS URL")
	}
}

package auth

import (
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.0.0.5, 172.18.0.0/16 fd00::/8\t::ffff:192.168.1.0/120,10.1.2.3/8 ")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.5/32"), netip.MustParsePrefix("172.18.0.0/16"), netip.MustParsePrefix("fd00::/8"),
		netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("10.0.0.0/8"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, err := ParseTrustedProxies(""); err != nil || len(got) != 0 {
		t.Errorf(`"": %v, %v`, got, err)
	}
	for _, bad := range []string{"*", "0.0.0.0/0", "::/0", "10.0.0.5,0.0.0.0/0", "1.2.3.4/0", "::ffff:0.0.0.0/96"} {
		_, err := ParseTrustedProxies(bad)
		if err == nil || !strings.Contains(err.Error(), "every address") || !strings.Contains(err.Error(), "CVE-2026-20896") {
			t.Errorf("%q: got %v; want a refusal citing CVE-2026-20896", bad, err)
		}
	}
	for _, bad := range []string{"proxy.internal", "10.0.0.300", "10.0.0.0/33"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestNewRefusals(t *testing.T) {
	anywhere := func(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error
	}{
		{"header without proxies", Config{Mode: ModeHeader, Preset: "oauth2-proxy"},
			[]string{"SESSIONDESK_AUTH=header needs SESSIONDESK_TRUSTED_PROXIES"}},
		{"header with 0.0.0.0/0", Config{Mode: ModeHeader, Preset: "authelia", TrustedProxies: anywhere("0.0.0.0/0")},
			[]string{"every address", "CVE-2026-20896"}},
		{"header with ::/0", Config{Mode: ModeHeader, Preset: "authelia", TrustedProxies: anywhere("::/0")},
			[]string{"every address"}},
		{"header with an invalid prefix", Config{Mode: ModeHeader, Preset: "authelia", TrustedProxies: []netip.Prefix{{}}},
			[]string{"SESSIONDESK_TRUSTED_PROXIES"}},
		{"header with neither preset nor header", Config{Mode: ModeHeader, TrustedProxies: proxies},
			[]string{"SESSIONDESK_AUTH_PRESET", "SESSIONDESK_AUTH_HEADER"}},
		{"header name with underscore", Config{Mode: ModeHeader, Header: "X_User", TrustedProxies: proxies},
			[]string{"SESSIONDESK_AUTH_HEADER", "CVE-2025-64484"}},
		{"secret header without secret", Config{Preset: "authelia", TrustedProxies: proxies, SecretHeader: "X-Secret"},
			[]string{"SESSIONDESK_AUTH_SECRET"}},
		{"secret without secret header", Config{Preset: "authelia", TrustedProxies: proxies, Secret: "0123456789abcdef"},
			[]string{"SESSIONDESK_AUTH_SECRET_HEADER"}},
		{"short secret", Config{Preset: "authelia", TrustedProxies: proxies, SecretHeader: "X-Secret", Secret: "short"},
			[]string{"at least 16"}},
		{"secret header is an identity header", Config{Preset: "authelia", TrustedProxies: proxies,
			SecretHeader: "remote-user", Secret: "0123456789abcdef"}, []string{"two purposes"}},
		{"jwt settings in header mode", Config{Preset: "authelia", TrustedProxies: proxies, Issuer: "x"},
			[]string{"SESSIONDESK_JWT_ISSUER is set"}},
		{"unknown preset", Config{Mode: ModeHeader, Preset: "keycloak", TrustedProxies: proxies},
			[]string{`SESSIONDESK_AUTH_PRESET="keycloak" is unknown`, "oauth2-proxy"}},
		{"unknown mode", Config{Mode: "saml"}, []string{`SESSIONDESK_AUTH="saml" is unknown`}},
		{"preset of another mode", Config{Mode: ModeHeader, Preset: "pomerium", TrustedProxies: proxies},
			[]string{"SESSIONDESK_AUTH_PRESET=pomerium goes with SESSIONDESK_AUTH=jwt"}},
		{"settings without a mode", Config{Header: "X-User"}, []string{"SESSIONDESK_AUTH_HEADER is set but SESSIONDESK_AUTH is not"}},
		{"jwt without JWKS URL", Config{Mode: ModeJWT, Preset: "pomerium", Issuer: "inbox.example.com", Audience: "inbox.example.com"},
			[]string{"needs SESSIONDESK_JWKS_URL", "/.well-known/pomerium/jwks.json"}},
		{"jwt without anything", Config{Mode: ModeJWT, Preset: "oidc"},
			[]string{"SESSIONDESK_JWKS_URL", "SESSIONDESK_JWT_ISSUER", "SESSIONDESK_JWT_AUDIENCE"}},
		{"jwt without audience", Config{Preset: "cloudflare", Issuer: "https://team.cloudflareaccess.com"},
			[]string{"needs SESSIONDESK_JWT_AUDIENCE (the application's Audience (AUD) tag)"}},
		{"jwt without header", Config{Mode: ModeJWT, JWKSURL: "https://idp/jwks", Issuer: "i", Audience: "a"},
			[]string{"SESSIONDESK_AUTH_PRESET", "SESSIONDESK_AUTH_HEADER"}},
		{"jwt over plain http", Config{Preset: "oidc", JWKSURL: "http://idp.example.com/jwks", Issuer: "i", Audience: "a"},
			[]string{"plain http"}},
		{"jwt with alg none", Config{Preset: "oidc", JWKSURL: "https://idp/jwks", Issuer: "i", Audience: "a", Algorithms: []string{"none"}},
			[]string{`"none" is refused`}},
		{"jwt with HS256", Config{Preset: "oidc", JWKSURL: "https://idp/jwks", Issuer: "i", Audience: "a", Algorithms: []string{"RS256", "HS256"}},
			[]string{"HS256 is refused"}},
		{"jwt with an unknown alg", Config{Preset: "oidc", JWKSURL: "https://idp/jwks", Issuer: "i", Audience: "a", Algorithms: []string{"rs256"}},
			[]string{`"rs256" is not one of`}},
		{"jwt with a secret header", Config{Preset: "oidc", JWKSURL: "https://idp/jwks", Issuer: "i", Audience: "a",
			SecretHeader: "X-S", Secret: "0123456789abcdef"}, []string{"only applies to SESSIONDESK_AUTH=header"}},
		{"jwt with negative leeway", Config{Preset: "oidc", JWKSURL: "https://idp/jwks", Issuer: "i", Audience: "a", Leeway: -1},
			[]string{"leeway"}},
		{"dev with settings", Config{Mode: ModeDev, TrustedProxies: proxies}, []string{"SESSIONDESK_AUTH=dev takes no SSO settings"}},
	} {
		a, err := New(tc.cfg)
		if err == nil {
			t.Errorf("%s: New succeeded (%T); want an error", tc.name, a)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
	}
}

func TestNewInfersModeFromPreset(t *testing.T) {
	a, err := New(Config{Preset: "authentik", TrustedProxies: proxies})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.(*headerAuth); !ok {
		t.Fatalf("got %T", a)
	}
	// Cloudflare's keys live under the team domain: the JWKS URL may be left out.
	a, err = New(Config{Preset: "cloudflare", Issuer: "https://team.cloudflareaccess.com/", Audience: "aud-tag",
		HTTPClient: &http.Client{Transport: offline{}}})
	if err != nil {
		t.Fatal(err)
	}
	j, ok := a.(*jwtAuth)
	if !ok {
		t.Fatalf("got %T", a)
	}
	defer j.Close()
	if j.keys.url != "https://team.cloudflareaccess.com/cdn-cgi/access/certs" || j.header != "Cf-Access-Jwt-Assertion" {
		t.Errorf("got %q, %q", j.keys.url, j.header)
	}
}

// offline is a transport that never reaches the network.
type offline struct{}

func (offline) RoundTrip(*http.Request) (*http.Response, error) { return nil, errors.New("offline") }

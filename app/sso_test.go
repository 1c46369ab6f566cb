package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"sessiondesk/config"
	"sessiondesk/store"
)

// startSSOApp starts the inbox behind a (pretend) SSO proxy with env as its
// environment, on a loopback port whose URL is the public URL.
func startSSOApp(t *testing.T, env map[string]string) *testApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env["SESSIONDESK_PUBLIC_URL"] = "http://" + ln.Addr().String()
	cfg, err := config.Parse([]string{"--addr", ln.Addr().String(), "--data", t.TempDir(), "--no-demo"},
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	return runApp(t, cfg, nil, Options{Listener: ln})
}

func (ta *testApp) get(t *testing.T, path string, header ...string) (int, string) {
	t.Helper()
	status, body := ta.do(t, "GET", path, "", "", header...)
	return status, string(body)
}

func TestHeaderModeTrustsOnlyTheProxy(t *testing.T) {
	base := map[string]string{"SESSIONDESK_AUTH": "header", "SESSIONDESK_AUTH_PRESET": "oauth2-proxy",
		"SESSIONDESK_ROLES": "support-admins=admin,support=agent"}

	// The proxy is elsewhere: this test's requests come from an untrusted peer.
	env := map[string]string{"SESSIONDESK_TRUSTED_PROXIES": "10.20.0.0/16"}
	for k, v := range base {
		env[k] = v
	}
	far := startSSOApp(t, env)
	if status, body := far.get(t, "/api/v1/conversations", "X-Forwarded-User", "mallory", "X-Forwarded-Email", "boss@example.com",
		"X-Forwarded-Groups", "support-admins"); status != http.StatusUnauthorized {
		t.Errorf("forged identity from an untrusted address: %d %s, want 401", status, body)
	}

	// The proxy is this machine.
	env = map[string]string{"SESSIONDESK_TRUSTED_PROXIES": "127.0.0.1/32"}
	for k, v := range base {
		env[k] = v
	}
	ta := startSSOApp(t, env)
	status, body := ta.get(t, "/", "X-Forwarded-User", "olga", "X-Forwarded-Email", "olga@example.com",
		"X-Forwarded-Groups", "support")
	if status != 200 || !strings.Contains(body, "olga@example.com") && !strings.Contains(body, "olga") {
		t.Errorf("a trusted identity: %d, want the inbox", status)
	}
	if strings.Contains(body, "Local mode") {
		t.Error("the local mode banner shows behind a proxy")
	}
	for _, tc := range []struct {
		name   string
		header []string
		want   int
	}{
		{"no identity", nil, 401},
		{"a group with no role", []string{"X-Forwarded-User", "eve", "X-Forwarded-Email", "eve@example.com", "X-Forwarded-Groups", "sales"}, 403},
		{"an underscore variant of the email header", []string{"X-Forwarded-User", "olga", "X-Forwarded-Groups", "support",
			"X_Forwarded_Email", "boss@example.com"}, 401},
	} {
		if status, body := ta.get(t, "/api/v1/conversations", tc.header...); status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.want)
		}
	}
	// Two values of the identity header.
	req, _ := http.NewRequest("GET", ta.base+"/api/v1/conversations", nil)
	req.Header.Add("X-Forwarded-User", "olga")
	req.Header.Add("X-Forwarded-User", "boss")
	req.Header.Set("X-Forwarded-Groups", "support")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("two identity headers: %d, want 401", res.StatusCode)
	}
}

func TestHeaderModeWithoutTrustedProxiesRefusesToStart(t *testing.T) {
	for _, proxies := range []string{"", "0.0.0.0/0", "::/0", "*"} {
		env := map[string]string{"SESSIONDESK_AUTH": "header", "SESSIONDESK_AUTH_PRESET": "authelia",
			"SESSIONDESK_ROLES": "support=agent", "SESSIONDESK_PUBLIC_URL": "https://inbox.example.com",
			"SESSIONDESK_TRUSTED_PROXIES": proxies}
		_, err := config.Parse([]string{"--addr", "0.0.0.0:8080"}, func(k string) string { return env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "SESSIONDESK_TRUSTED_PROXIES") {
			t.Errorf("trusted proxies %q: %v, want a refusal naming SESSIONDESK_TRUSTED_PROXIES", proxies, err)
		}
	}
}

// jwtIssuer is a pretend Pomerium: it signs assertions and serves its JWKS.
type jwtIssuer struct {
	key jwk.Key
	srv *httptest.Server
}

func newIssuer(t *testing.T) *jwtIssuer {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = key.Set(jwk.KeyIDKey, "k1")
	_ = key.Set(jwk.AlgorithmKey, jwa.ES256())
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	return &jwtIssuer{key: key, srv: srv}
}

func (is *jwtIssuer) sign(t *testing.T, key jwk.Key, aud string, exp time.Time, groups ...string) string {
	t.Helper()
	tok, err := jwt.NewBuilder().Issuer("https://auth.example.com").Audience([]string{aud}).Subject("u-1").
		Expiration(exp).IssuedAt(time.Now().Add(-time.Minute)).Claim("email", "olga@example.com").
		Claim("name", "Olga Agent").Claim("groups", groups).Build()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), key))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

func TestJWTModeVerifiesTheAssertion(t *testing.T) {
	is := newIssuer(t)
	ta := startSSOApp(t, map[string]string{
		"SESSIONDESK_AUTH": "jwt", "SESSIONDESK_AUTH_PRESET": "pomerium", "SESSIONDESK_JWKS_URL": is.srv.URL,
		"SESSIONDESK_JWT_ISSUER": "https://auth.example.com", "SESSIONDESK_JWT_AUDIENCE": "inbox.example.com",
		"SESSIONDESK_ROLES": "support-admins=admin,support=agent",
	})
	other := newIssuer(t)
	_ = other.key.Set(jwk.KeyIDKey, "k1") // the same key id, another key
	hour := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name  string
		token string
		want  int
	}{
		{"a good assertion", is.sign(t, is.key, "inbox.example.com", hour, "support"), 200},
		{"a wrong key", is.sign(t, other.key, "inbox.example.com", hour, "support"), 401},
		{"a wrong audience", is.sign(t, is.key, "other.example.com", hour, "support"), 401},
		{"expired", is.sign(t, is.key, "inbox.example.com", time.Now().Add(-10*time.Minute), "support"), 401},
		{"no mapped group", is.sign(t, is.key, "inbox.example.com", hour, "sales"), 403},
	} {
		status, body := ta.get(t, "/api/v1/conversations", "X-Pomerium-Jwt-Assertion", tc.token)
		if status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.want)
		}
	}
	// The agent was created with the mapped role.
	status, body := ta.get(t, "/", "X-Pomerium-Jwt-Assertion", is.sign(t, is.key, "inbox.example.com", hour, "support-admins"))
	if status != 200 || !strings.Contains(body, "Olga Agent") {
		t.Errorf("the inbox for a signed-in admin: %d, does not name the agent", status)
	}

	// The websocket closes with 1013 when the assertion expires.
	h := http.Header{}
	h.Set("Origin", ta.base)
	h.Set("X-Pomerium-Jwt-Assertion", is.sign(t, is.key, "inbox.example.com", time.Now().Add(1500*time.Millisecond), "support"))
	conn, _, err := websocket.DefaultDialer.Dial(strings.Replace(ta.base, "http://", "ws://", 1)+"/ws?after=0", h)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err = readLive(conn); err != nil {
			break
		}
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1013 {
		t.Errorf("the socket ended with %v, want close 1013 at the assertion's expiry", err)
	}
}

func TestRolesAndAPITokens(t *testing.T) {
	ta := startSSOApp(t, map[string]string{"SESSIONDESK_AUTH": "header", "SESSIONDESK_AUTH_PRESET": "authelia",
		"SESSIONDESK_TRUSTED_PROXIES": "127.0.0.1/32", "SESSIONDESK_ROLES": "support-admins=admin,support=agent"})
	agent := []string{"Remote-User", "ivan", "Remote-Email", "ivan@example.com", "Remote-Groups", "support"}
	admin := []string{"Remote-User", "anna", "Remote-Email", "anna@example.com", "Remote-Groups", "staff,support-admins"}

	// An agent who is not an admin: 403 on settings and the audit log.
	for _, p := range []string{"/admin/settings", "/admin/audit", "/admin/audit.csv", "/admin/tokens"} {
		if status, _ := ta.get(t, p, agent...); status != http.StatusForbidden {
			t.Errorf("agent on %s: %d, want 403", p, status)
		}
		if status, _ := ta.get(t, p, admin...); status != http.StatusOK {
			t.Errorf("admin on %s: %d, want 200", p, status)
		}
	}
	if status, _ := ta.do(t, "POST", "/admin/settings", "application/x-www-form-urlencoded", "max_unanswered=50", agent...); status != http.StatusForbidden {
		t.Errorf("agent posting settings: %d, want 403", status)
	}

	// An admin creates a token; integrations use it on the JSON API only.
	var admins int64
	_ = ta.Store.Read(t.Context(), func(r *store.Reader) error {
		agents, _ := r.Agents(t.Context())
		for _, a := range agents {
			if a.Role == "admin" {
				admins = a.ID
			}
		}
		return nil
	})
	secret, info, err := ta.Store.CreateToken(t.Context(), admins, "CRM sync")
	if err != nil {
		t.Fatal(err)
	}
	bearer := []string{"Authorization", "Bearer " + secret}
	if status, body := ta.get(t, "/api/v1/conversations", bearer...); status != 200 {
		t.Errorf("API with a token: %d %s", status, body)
	}
	if status, _ := ta.get(t, "/", bearer...); status != http.StatusUnauthorized {
		t.Errorf("a page with a token: %d, want 401 (pages go through the proxy)", status)
	}
	if err := ta.Store.RevokeToken(t.Context(), admins, info.ID); err != nil {
		t.Fatal(err)
	}
	if status, _ := ta.get(t, "/api/v1/conversations", bearer...); status != http.StatusUnauthorized {
		t.Errorf("API with a revoked token: %d, want 401", status)
	}
	if status, _ := ta.get(t, "/api/v1/conversations", "Authorization", "Bearer sdk_forged"); status != http.StatusUnauthorized {
		t.Errorf("API with a forged token: %d, want 401", status)
	}
	// The audit log has both, and its CSV export says so.
	status, body := ta.get(t, "/admin/audit.csv", admin...)
	if status != 200 || !strings.Contains(body, "token_create") || !strings.Contains(body, "token_revoke") {
		t.Errorf("audit CSV: %d %.300s", status, body)
	}
}

// Behind a proxy the websockets accept only the public URL's origin, compared
// as browsers mean it: with SESSIONDESK_PUBLIC_URL=https://Inbox.Example.com:443
// the inbox's own pages (Origin https://inbox.example.com) get their live
// updates, and another port or scheme is still refused.
func TestWebsocketAcceptsPublicURLWithDefaultPortAndCapitals(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SESSIONDESK_AUTH": "header", "SESSIONDESK_AUTH_PRESET": "oauth2-proxy",
		"SESSIONDESK_ROLES": "support=agent", "SESSIONDESK_TRUSTED_PROXIES": "127.0.0.1/32",
		"SESSIONDESK_PUBLIC_URL": "https://Inbox.Example.com:443"}
	cfg, err := config.Parse([]string{"--addr", ln.Addr().String(), "--data", t.TempDir(), "--no-demo"},
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	runApp(t, cfg, nil, Options{Listener: ln})
	for origin, want := range map[string]bool{
		"https://inbox.example.com":      true,
		"https://inbox.example.com:8443": false,
		"http://inbox.example.com":       false,
		"null":                           false,
	} {
		h := http.Header{}
		h.Set("Origin", origin)
		h.Set("X-Forwarded-User", "olga")
		h.Set("X-Forwarded-Email", "olga@example.com")
		h.Set("X-Forwarded-Groups", "support")
		conn, res, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/ws?after=0", h)
		if err == nil {
			conn.Close()
		}
		switch {
		case want && err != nil:
			t.Errorf("Origin %s: %v, want the socket", origin, err)
		case !want && (res == nil || res.StatusCode != http.StatusForbidden):
			t.Errorf("Origin %s: %v, want 403", origin, err)
		}
	}
}

// A person who sets their e-mail at the sign-in service to a colleague's
// does not become that colleague: the login is bound to the person who
// first signed in with it, and anyone else presenting it is refused.
func TestLoginBoundToThePersonWhoFirstSignedIn(t *testing.T) {
	ta := startSSOApp(t, map[string]string{"SESSIONDESK_AUTH": "header", "SESSIONDESK_AUTH_PRESET": "authentik",
		"SESSIONDESK_TRUSTED_PROXIES": "127.0.0.1/32", "SESSIONDESK_ROLES": "support-admins=admin,support=agent"})
	anna := []string{"X-Authentik-Username", "anna", "X-Authentik-Email", "anna@example.com", "X-Authentik-Groups", "support-admins"}
	ivan := []string{"X-Authentik-Username", "ivan", "X-Authentik-Email", "anna@example.com", "X-Authentik-Groups", "support"}
	if status, body := ta.get(t, "/api/v1/me/preferences", anna...); status != 200 || !strings.Contains(body, `"sound":false`) {
		t.Fatalf("Anna: %d %s", status, body)
	}
	status, body := ta.do(t, "PATCH", "/api/v1/me/preferences", "application/json", `{"sound": true}`, ivan...)
	if status != 403 || !strings.Contains(string(body), "another person") {
		t.Errorf("Ivan with Anna's address: %d %s, want 403 naming the conflict", status, body)
	}
	if _, body := ta.get(t, "/api/v1/me/preferences", anna...); !strings.Contains(body, `"sound":false`) {
		t.Errorf("Anna's settings changed: %s", body)
	}
	var logins []string
	_ = ta.Store.Read(t.Context(), func(r *store.Reader) error {
		agents, err := r.Agents(t.Context())
		for _, a := range agents {
			logins = append(logins, a.Login+"/"+a.Role)
		}
		return err
	})
	if strings.Join(logins, ",") != "anna@example.com/admin" {
		t.Errorf("agents %v, want Anna's alone, still admin", logins)
	}
	// Anna's address changes at the sign-in service: she keeps her agent.
	moved := []string{"X-Authentik-Username", "anna", "X-Authentik-Email", "anna@new.example.com", "X-Authentik-Groups", "support-admins"}
	if status, body := ta.get(t, "/api/v1/me/preferences", moved...); status != 200 {
		t.Fatalf("Anna at her new address: %d %s", status, body)
	}
	// Her old address is free now: Ivan may have it, as an agent of his own.
	if status, body := ta.get(t, "/api/v1/me/preferences", ivan...); status != 200 {
		t.Errorf("Ivan with the address Anna left: %d %s", status, body)
	}
}

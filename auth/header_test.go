package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

var proxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("127.0.0.1/32")}

func headerAuthFor(t *testing.T, cfg Config) Authenticator {
	t.Helper()
	cfg.Mode = ModeHeader
	if cfg.TrustedProxies == nil {
		cfg.TrustedProxies = proxies
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// request builds a request from remote with headers given as "Name: value"
// lines, kept exactly as written (as Go's server does for names with '_').
func request(remote string, lines ...string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = remote
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ":")
		if strings.Contains(name, "_") {
			r.Header[name] = append(r.Header[name], strings.TrimSpace(value))
		} else {
			r.Header.Add(name, strings.TrimSpace(value))
		}
	}
	return r
}

func wantRefused(t *testing.T, what string, id Identity, err error) {
	t.Helper()
	var re *RefusedError
	if !errors.As(err, &re) || !errors.Is(err, ErrUnauthenticated) || id.Login != "" {
		t.Errorf("%s: got %+v, %v; want a *RefusedError", what, id, err)
	}
}

func wantUnauthenticated(t *testing.T, what string, id Identity, err error) {
	t.Helper()
	var re *RefusedError
	if !errors.Is(err, ErrUnauthenticated) || errors.As(err, &re) || id.Login != "" {
		t.Errorf("%s: got %+v, %v; want plain ErrUnauthenticated", what, id, err)
	}
}

func TestHeaderPresets(t *testing.T) {
	for _, tc := range []struct {
		preset string
		lines  []string
		want   Identity
	}{
		{"oauth2-proxy", []string{
			"X-Forwarded-User: 0b1c", "X-Forwarded-Email: ana@example.com", "X-Forwarded-Preferred-Username: ana",
			"X-Forwarded-Groups: support", "X-Forwarded-Groups: support-admins, ops",
		}, Identity{Login: "ana@example.com", Subject: "0b1c", Name: "ana", Email: "ana@example.com", Groups: []string{"support", "support-admins", "ops"}}},
		{"oauth2-proxy", []string{"X-Forwarded-User: bob"}, Identity{Login: "bob", Subject: "bob", Name: "bob"}},
		{"authelia", []string{
			"Remote-User: ana", "Remote-Email: ana@example.com", "Remote-Name: Ana Lima", "Remote-Groups: support,support-admins",
		}, Identity{Login: "ana@example.com", Subject: "ana", Name: "Ana Lima", Email: "ana@example.com", Groups: []string{"support", "support-admins"}}},
		{"authentik", []string{
			"X-authentik-username: ana", "X-authentik-email: ana@example.com", "X-authentik-name: Ana Lima",
			"X-authentik-groups: authentik Admins|support",
		}, Identity{Login: "ana@example.com", Subject: "ana", Name: "Ana Lima", Email: "ana@example.com", Groups: []string{"authentik Admins", "support"}}},
		{"authentik", []string{"X-authentik-username: ana", "X-authentik-email: "},
			Identity{Login: "ana", Subject: "ana", Name: "ana"}},
	} {
		a := headerAuthFor(t, Config{Preset: tc.preset})
		id, err := a.Authenticate(request("10.0.0.7:4000", tc.lines...))
		if err != nil || id.Login != tc.want.Login || id.Subject != tc.want.Subject || id.Name != tc.want.Name || id.Email != tc.want.Email ||
			!slices.Equal(id.Groups, tc.want.Groups) || !id.ExpiresAt.IsZero() {
			t.Errorf("%s %v: got %+v, %v; want %+v", tc.preset, tc.lines, id, err, tc.want)
		}
	}
}

func TestHeaderCustomIdentityHeader(t *testing.T) {
	a := headerAuthFor(t, Config{Header: "X-Remote-Login"})
	id, err := a.Authenticate(request("10.0.0.7:1", "X-Remote-Login: ana", "X-Forwarded-Email: boss@example.com"))
	if err != nil || id.Login != "ana" || id.Email != "" || id.Groups != nil {
		t.Errorf("got %+v, %v", id, err)
	}
	// The override replaces the preset's user header only.
	a = headerAuthFor(t, Config{Preset: "oauth2-proxy", Header: "X-Auth-Request-User"})
	id, err = a.Authenticate(request("10.0.0.7:1", "X-Auth-Request-User: ana", "X-Forwarded-Groups: support"))
	if err != nil || id.Login != "ana" || !slices.Equal(id.Groups, []string{"support"}) {
		t.Errorf("got %+v, %v", id, err)
	}
	_, err = a.Authenticate(request("10.0.0.7:1", "X-Forwarded-User: ana"))
	wantUnauthenticated(t, "the preset's header after an override", Identity{}, err)
}

func TestHeaderForgedFromUntrustedPeer(t *testing.T) {
	a := headerAuthFor(t, Config{Preset: "oauth2-proxy"})
	for _, remote := range []string{"203.0.113.9:5000", "10.0.1.7:80", "[2001:db8::1]:443", "garbage", ""} {
		id, err := a.Authenticate(request(remote,
			"X-Forwarded-User: admin", "X-Forwarded-Email: admin@example.com", "X-Forwarded-Groups: support-admins",
			"X-Forwarded-For: 10.0.0.7", "X-Real-Ip: 10.0.0.7", "Forwarded: for=10.0.0.7"))
		wantUnauthenticated(t, "forged from "+remote, id, err)
	}
	// The same headers from the proxy are believed, also over IPv4-mapped IPv6.
	for _, remote := range []string{"10.0.0.7:5000", "[::ffff:10.0.0.7]:5000"} {
		id, err := a.Authenticate(request(remote, "X-Forwarded-User: admin"))
		if err != nil || id.Login != "admin" {
			t.Errorf("from %s: got %+v, %v", remote, id, err)
		}
	}
}

func TestHeaderUnderscoreVariantsRefused(t *testing.T) {
	for _, tc := range []struct {
		preset, variant string
	}{
		{"oauth2-proxy", "X_Forwarded_Email"},
		{"oauth2-proxy", "X-Forwarded_User"},
		{"oauth2-proxy", "x_forwarded_groups"},
		{"oauth2-proxy", "X_FORWARDED_PREFERRED_USERNAME"},
		{"authelia", "Remote_User"},
		{"authelia", "Remote_Groups"},
		{"authentik", "X_authentik_email"},
		{"authentik", "X-authentik_groups"},
	} {
		a := headerAuthFor(t, Config{Preset: tc.preset})
		user := presets[tc.preset].user
		id, err := a.Authenticate(request("10.0.0.7:1", user+": ana", tc.variant+": boss@example.com"))
		wantRefused(t, tc.preset+" "+tc.variant, id, err)
	}
	// An underscore header the mode does not read is none of its business.
	a := headerAuthFor(t, Config{Preset: "oauth2-proxy"})
	if id, err := a.Authenticate(request("10.0.0.7:1", "X-Forwarded-User: ana", "X_Custom_Thing: 1")); err != nil || id.Login != "ana" {
		t.Errorf("unrelated underscore header: %+v, %v", id, err)
	}
	// The secret header is read too.
	a = headerAuthFor(t, Config{Preset: "authelia", SecretHeader: "X-Proxy-Secret", Secret: "0123456789abcdef"})
	id, err := a.Authenticate(request("10.0.0.7:1", "Remote-User: ana", "X-Proxy-Secret: 0123456789abcdef", "X_Proxy_Secret: x"))
	wantRefused(t, "secret header variant", id, err)
}

// Over a real connection: Go's server keeps X_Forwarded_Email as is, and the
// request is refused rather than read as the email.
func TestHeaderUnderscoreVariantOverHTTP(t *testing.T) {
	a := headerAuthFor(t, Config{Preset: "oauth2-proxy"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.Authenticate(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, id.Login)
	}))
	defer srv.Close()
	send := func(extra string) (int, string) {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: inbox\r\nX-Forwarded-User: ana\r\n%sConnection: close\r\n\r\n", extra)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	if code, body := send(""); code != 200 || body != "ana" {
		t.Fatalf("plain request: %d %q", code, body)
	}
	if code, body := send("X_Forwarded_Email: boss@example.com\r\n"); code != 401 || !strings.Contains(body, "underscore variant") {
		t.Errorf("underscore variant: %d %q", code, body)
	}
	if code, body := send("X-Forwarded-User: boss\r\n"); code != 401 || !strings.Contains(body, "two values") {
		t.Errorf("two values: %d %q", code, body)
	}
}

func TestHeaderTwoValuesRefused(t *testing.T) {
	a := headerAuthFor(t, Config{Preset: "oauth2-proxy"})
	for _, lines := range [][]string{
		{"X-Forwarded-User: boss", "X-Forwarded-User: ana"},
		{"X-Forwarded-User: ana", "X-Forwarded-Email: boss@example.com", "X-Forwarded-Email: ana@example.com"},
	} {
		id, err := a.Authenticate(request("10.0.0.7:1", lines...))
		wantRefused(t, fmt.Sprint(lines), id, err)
	}
	// Authelia sends its groups on one line: a second line is smuggled.
	a = headerAuthFor(t, Config{Preset: "authelia"})
	id, err := a.Authenticate(request("10.0.0.7:1", "Remote-User: ana", "Remote-Groups: support", "Remote-Groups: support-admins"))
	wantRefused(t, "two Remote-Groups lines", id, err)
}

func TestHeaderMissingIdentity(t *testing.T) {
	a := headerAuthFor(t, Config{Preset: "authelia"})
	for _, lines := range [][]string{nil, {"Remote-Email: ana@example.com"}, {"Remote-User:  "}} {
		id, err := a.Authenticate(request("10.0.0.7:1", lines...))
		wantUnauthenticated(t, fmt.Sprint(lines), id, err)
	}
}

func TestHeaderSharedSecret(t *testing.T) {
	const secret = "s3cret-s3cret-s3cret"
	a := headerAuthFor(t, Config{Preset: "authelia", SecretHeader: "X-Proxy-Secret", Secret: secret})
	for _, tc := range []struct {
		lines []string
		ok    bool
	}{
		{[]string{"X-Proxy-Secret: " + secret}, true},
		{nil, false},
		{[]string{"X-Proxy-Secret: wrong"}, false},
		{[]string{"X-Proxy-Secret: " + secret + "x"}, false},
		{[]string{"X-Proxy-Secret: " + secret, "X-Proxy-Secret: " + secret}, false},
	} {
		id, err := a.Authenticate(request("10.0.0.7:1", append(tc.lines, "Remote-User: ana")...))
		if tc.ok {
			if err != nil || id.Login != "ana" {
				t.Errorf("%v: got %+v, %v", tc.lines, id, err)
			}
			continue
		}
		wantRefused(t, fmt.Sprint(tc.lines), id, err)
	}
}

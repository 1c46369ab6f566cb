package auth

import (
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestDevAcceptsOnlyLoopback(t *testing.T) {
	for _, tc := range []struct {
		remote string
		ok     bool
	}{
		{"127.0.0.1:5000", true},
		{"[::1]:5000", true},
		{"10.0.0.5:5000", false},
		{"192.168.1.2:80", false},
		{"garbage", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		// A forwarding header must never make a remote request local.
		r.Header.Set("X-Forwarded-For", "127.0.0.1")
		id, err := Dev{}.Authenticate(r)
		if tc.ok && (err != nil || id.Login != "local" || id.Name != "Local agent" || !slices.Equal(id.Groups, []string{DevAdminGroup})) {
			t.Errorf("%s: got %+v, %v; want the local agent in %s", tc.remote, id, err, DevAdminGroup)
		}
		if !tc.ok && !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: got %+v, %v; want ErrUnauthenticated", tc.remote, id, err)
		}
	}
}

func TestDevIdentityIsNotShared(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:1"
	a, _ := Dev{}.Authenticate(r)
	a.Groups[0] = "changed"
	b, _ := Dev{}.Authenticate(r)
	if b.Groups[0] != DevAdminGroup {
		t.Fatalf("one request's identity changed the next one's: %v", b.Groups)
	}
}

func TestNewDevByDefault(t *testing.T) {
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.(Dev); !ok {
		t.Fatalf("New(Config{}) = %T, want Dev", a)
	}
	if _, err := New(Config{Mode: ModeDev, JWKSURL: "https://x"}); err == nil {
		t.Error("dev mode with an SSO setting: want an error")
	}
}

func TestRefusedErrorIsUnauthenticated(t *testing.T) {
	err := refused("two values of %s", "X-Forwarded-User")
	var re *RefusedError
	if !errors.Is(err, ErrUnauthenticated) || !errors.As(err, &re) || re.Reason != "two values of X-Forwarded-User" {
		t.Fatalf("got %v", err)
	}
}

package auth

import (
	"errors"
	"net/http/httptest"
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
		if tc.ok && (err != nil || id.Login != "local") {
			t.Errorf("%s: got %+v, %v; want the local agent", tc.remote, id, err)
		}
		if !tc.ok && !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: got %+v, %v; want ErrUnauthenticated", tc.remote, id, err)
		}
	}
}

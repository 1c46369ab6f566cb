package media_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"sessiondesk/media"
)

// countingListener counts the connections a victim server accepts: a refused
// download must never reach it.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// victim is a server on 127.0.0.1 holding something an attacker wants.
func victim(t *testing.T) (*httptest.Server, *countingListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "login,action\nadmin,export\n")
	}))
	srv.Listener = cl
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cl
}

func wantFetchRefused(t *testing.T, err error, what string) {
	t.Helper()
	var re *media.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("%s: err %v, want a *media.RefusedError", what, err)
	}
	if strings.Contains(err.Error(), "hush") {
		t.Errorf("%s: the error %q shows the query", what, err)
	}
}

// A media URL that points at this machine or its network is refused, whether
// it names the address, a name that resolves to it, or redirects there.
func TestFetchRefusesNonPublicAddresses(t *testing.T) {
	srv, hits := victim(t)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	s, dir := newStore(t)
	for _, u := range []string{
		srv.URL + "/audit.csv?token=hush",                                  // plain http on loopback
		fmt.Sprintf("https://127.0.0.1:%d/audit.csv?token=hush", port),     // https on loopback
		fmt.Sprintf("https://localhost:%d/audit.csv?token=hush", port),     // a name: refused at dial time
		fmt.Sprintf("https://[::ffff:127.0.0.1]:%d/x?token=hush", port),    // IPv4-mapped IPv6
		fmt.Sprintf("https://0.0.0.0:%d/x?token=hush", port),               // unspecified reaches loopback on Linux
		fmt.Sprintf("https://[::]:%d/x?token=hush", port),                  // same in IPv6
		fmt.Sprintf("https://169.254.169.254:%d/latest/?token=hush", port), // cloud metadata
		"https://10.0.0.1/x?token=hush",
		"https://[fd00::1]/x?token=hush",
		"http://example.com/photo.jpg?token=hush", // public, but not https
	} {
		_, _, err := (&media.Fetcher{}).Fetch(context.Background(), u, s)
		wantFetchRefused(t, err, u)
	}
	if n := hits.n.Load(); n != 0 {
		t.Fatalf("the loopback server accepted %d connections", n)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("stored %v", got)
	}
}

// A redirect is checked like the first URL: out of the allowed sandbox path,
// to loopback, it is refused; and redirects are capped.
func TestFetchRedirectsAreChecked(t *testing.T) {
	target, hits := victim(t)
	port := target.Listener.Addr().(*net.TCPAddr).Port
	var loops atomic.Int32
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/media/to-victim":
			http.Redirect(w, r, target.URL+"/audit.csv", http.StatusFound)
		case "/media/to-victim-by-name":
			http.Redirect(w, r, fmt.Sprintf("https://localhost:%d/audit.csv", port), http.StatusFound)
		case "/media/to-admin":
			http.Redirect(w, r, "/admin/audit.csv", http.StatusFound)
		case "/media/loop":
			loops.Add(1)
			http.Redirect(w, r, "/media/loop", http.StatusFound)
		case "/admin/audit.csv":
			t.Error("the fake's path outside the allowed prefix was fetched")
		default:
			http.NotFound(w, r)
		}
	}))
	defer fake.Close()
	f := &media.Fetcher{Allow: []string{fake.URL + "/media/"}}
	s, dir := newStore(t)
	for _, path := range []string{"/media/to-victim", "/media/to-victim-by-name", "/media/to-admin", "/media/loop", "/admin/audit.csv"} {
		_, _, err := f.Fetch(context.Background(), fake.URL+path+"?token=hush", s)
		wantFetchRefused(t, err, path)
	}
	if n := loops.Load(); n != media.MaxRedirects+1 {
		t.Errorf("the redirect loop was followed %d times, want %d", n, media.MaxRedirects+1)
	}
	if n := hits.n.Load(); n != 0 {
		t.Fatalf("the loopback server accepted %d connections", n)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("stored %v", got)
	}
}

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "1.1.1.1": true, "2606:4700:4700::1111": true, "93.184.216.34": true,
		"127.0.0.1": false, "127.1.2.3": false, "::1": false,
		"0.0.0.0": false, "0.1.2.3": false, "::": false,
		"10.1.2.3": false, "172.16.0.1": false, "172.31.255.255": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fe80::1%eth0": false,
		"100.64.0.1": false, "100.127.255.255": false, "100.128.0.1": true,
		"fc00::1": false, "fd12:3456::1": false,
		"224.0.0.1": false, "ff02::1": false, "255.255.255.255": false,
		"::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "::ffff:8.8.8.8": true,
		"64:ff9b::7f00:1": false, "2002:7f00:1::": false,
	} {
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := media.PublicAddr(ip); got != want {
			t.Errorf("PublicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

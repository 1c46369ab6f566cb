package handlers

import (
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// serveUpgrades serves the inbox's websocket upgrader (newUpgrader, whose
// CheckOrigin is checkOrigin) for a public URL, on a loopback port until the
// test ends; it returns the address.
func serveUpgrades(t *testing.T, pub *url.URL, localMode bool) string {
	t.Helper()
	s := &Server{Deps: Deps{PublicURL: pub, LocalMode: localMode}}
	up := s.newUpgrader()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // the upgrader answered (403 for a foreign Origin)
		}
		conn.Close()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// The websocket Origin check compares origins as browsers mean them: a public
// URL with the scheme's default port or capitals (set that way by hand, or
// anywhere else than through config.ParsePublicURL) is the origin a browser
// sends, lower-case and without the default port, and its pages are
// accepted. Another scheme, host or port, an empty Origin and "null" are
// refused, over a real upgrade.
func TestWebsocketOriginComparedAsBrowsersMeanIt(t *testing.T) {
	type origins struct {
		accepted, refused []string
	}
	foreign := []string{"", "null", "https://evil.example", "http://inbox.example.com", "https://inbox.example.com:8443",
		"https://inbox.example.com.evil.example", "https://evil.example/https://inbox.example.com", "wss://inbox.example.com",
		"https://evil@inbox.example.com", "https://inbox.example.com/page", "inbox.example.com"}
	for _, tc := range []struct {
		public string
		local  bool
		origins
	}{
		{"https://inbox.example.com:443", false, origins{
			[]string{"https://inbox.example.com", "https://Inbox.Example.com", "https://inbox.example.com:443"},
			append([]string{"https://inbox.example.com:80"}, foreign...)}},
		{"https://Inbox.Example.com", false, origins{
			[]string{"https://inbox.example.com", "https://INBOX.EXAMPLE.COM:443"}, foreign}},
		{"HTTPS://inbox.example.com:8443/support", false, origins{
			[]string{"https://inbox.example.com:8443"},
			[]string{"", "null", "https://inbox.example.com", "https://inbox.example.com:443", "http://inbox.example.com:8443"}}},
		{"http://LocalHost:80", true, origins{
			[]string{"http://localhost", "http://127.0.0.1", "http://[::1]:80"},
			[]string{"", "null", "http://localhost:8080", "https://localhost", "http://evil.example"}}},
		{"http://127.0.0.1:8080", true, origins{
			[]string{"http://127.0.0.1:8080", "http://LOCALHOST:8080"},
			[]string{"http://127.0.0.1", "http://localhost:8081", "https://127.0.0.1:8080"}}},
		{"http://127.0.0.1:8080", false, origins{ // behind a proxy: the public URL only
			[]string{"http://127.0.0.1:8080"},
			[]string{"http://localhost:8080"}}},
	} {
		pub, err := url.Parse(tc.public)
		if err != nil {
			t.Fatal(err)
		}
		addr := serveUpgrades(t, pub, tc.local)
		for _, want := range []bool{true, false} {
			list := tc.accepted
			if !want {
				list = tc.refused
			}
			for _, origin := range list {
				h := http.Header{}
				if origin != "" {
					h.Set("Origin", origin)
				}
				conn, res, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", h)
				if err == nil {
					conn.Close()
				}
				switch {
				case want && err != nil:
					t.Errorf("public URL %s (local %v): Origin %q refused: %v", tc.public, tc.local, origin, err)
				case !want && err == nil:
					t.Errorf("public URL %s (local %v): Origin %q accepted", tc.public, tc.local, origin)
				case !want && (res == nil || res.StatusCode != http.StatusForbidden):
					t.Errorf("public URL %s (local %v): Origin %q: %v, want 403", tc.public, tc.local, origin, err)
				}
			}
		}
	}
}

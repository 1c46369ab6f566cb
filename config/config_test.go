package config

import (
	"io"
	"strings"
	"testing"
	"time"

	"sessiondesk/session"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Parse(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.DataDir != "./data" || c.PublicURL != nil || c.NoDemo {
		t.Errorf("defaults = %+v", c)
	}
	if c.Rules != session.Defaults() {
		t.Errorf("rules = %+v, want the seed's", c.Rules)
	}
	if c.DBPath() != "./data/sessiondesk.db" {
		t.Errorf("db path %q", c.DBPath())
	}
}

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	e := env(map[string]string{"SESSIONDESK_DATA": "/env/data", "SESSIONDESK_ADDR": "127.0.0.1:9000",
		"SESSIONDESK_SESSION_WINDOW": "12h", "SESSIONDESK_SESSION_AFTER_CAP": "close", "SESSIONDESK_NO_DEMO": "true"})
	c, err := Parse([]string{"--data", "/flag/data"}, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/flag/data" || c.Addr != "127.0.0.1:9000" || c.Rules.Window != 12*time.Hour ||
		c.Rules.AfterCap != session.Close || !c.NoDemo {
		t.Errorf("config = %+v", c)
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--addr", "0.0.0.0:8080"}, nil, "only listens on loopback"},
		{[]string{"--addr", ":8080"}, nil, "only listens on loopback"},
		{[]string{"--addr", "192.168.1.5:8080"}, nil, "only listens on loopback"},
		{nil, map[string]string{"SESSIONDESK_ADDR": "10.0.0.1:80"}, "only listens on loopback"},
		{[]string{"--session-after-cap", "explode"}, nil, "after-cap"},
		{[]string{"--session-max", "0"}, nil, "1 to 60"},
		{nil, map[string]string{"SESSIONDESK_SESSION_MAX": "sixty"}, "not a whole number"},
		{[]string{"--public-url", "http://inbox.example.com"}, nil, "only accepted on loopback"},
		{nil, map[string]string{"ROUTEE_APP_ID": "app"}, "ROUTEE_APP_SECRET, ROUTEE_SENDER_ID, SESSIONDESK_PUBLIC_URL"},
		{nil, map[string]string{"ROUTEE_APP_ID": "app", "ROUTEE_APP_SECRET": "s", "ROUTEE_SENDER_ID": "x",
			"SESSIONDESK_PUBLIC_URL": "https://inbox.example.com"}, "SESSIONDESK_WEBHOOK_SECRET is missing"},
		{nil, map[string]string{"ROUTEE_APP_ID": "app", "ROUTEE_APP_SECRET": "s", "ROUTEE_SENDER_ID": "x",
			"SESSIONDESK_PUBLIC_URL": "https://inbox.example.com", "SESSIONDESK_WEBHOOK_SECRET": "short"}, "at least 16"},
		{nil, map[string]string{"ROUTEE_APP_SECRET": "s"}, "ROUTEE_APP_ID is not"},
		{[]string{"--ttl", "10s"}, nil, "30s to 24h"},
		{[]string{"--public-url", "inbox"}, nil, "absolute"},
		{[]string{"--log-format", "xml"}, nil, "text or json"},
		{[]string{"extra"}, nil, "unexpected argument"},
	} {
		_, err := Parse(tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: got %v, want an error about %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestLoopbackAddresses(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "localhost:8080", "[::1]:8080", "127.0.0.2:80"} {
		if _, err := Parse([]string{"--addr", addr}, env(nil), io.Discard); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	c, err := Parse([]string{"--public-url", "https://inbox.example.com/"}, env(nil), io.Discard)
	if err != nil || c.PublicURL.String() != "https://inbox.example.com" {
		t.Errorf("https public URL: %v %v", c.PublicURL, err)
	}
}

// A public URL is kept as browsers write its origin: lower-case, without the
// scheme's default port. The websockets accept only that origin, and a
// browser on https://Inbox.Example.com:443 sends Origin https://inbox.example.com.
// Another port stays, and the path keeps its case.
func TestPublicURLWrittenAsBrowsersWriteIt(t *testing.T) {
	for raw, want := range map[string]string{
		"https://inbox.example.com:443":          "https://inbox.example.com",
		"https://Inbox.Example.com":              "https://inbox.example.com",
		"HTTPS://INBOX.example.COM:443/Support/": "https://inbox.example.com/Support",
		"https://inbox.example.com:":             "https://inbox.example.com",
		"https://inbox.example.com:8443":         "https://inbox.example.com:8443",
		"https://inbox.example.com:80":           "https://inbox.example.com:80",
		"http://LocalHost:80":                    "http://localhost",
		"http://localhost:443":                   "http://localhost:443",
		"http://127.0.0.1:8080":                  "http://127.0.0.1:8080",
		"http://[::1]:80/x":                      "http://[::1]/x",
		"http://[::1]:8080":                      "http://[::1]:8080",
	} {
		u, err := ParsePublicURL(raw)
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		if u.String() != want {
			t.Errorf("%s: %s, want %s", raw, u, want)
		}
	}
	// Through the flag and the environment alike.
	c, err := Parse(nil, env(map[string]string{"SESSIONDESK_PUBLIC_URL": "https://Inbox.Example.com:443/support"}), io.Discard)
	if err != nil || c.PublicURL.String() != "https://inbox.example.com/support" || c.BasePath != "/support" {
		t.Errorf("SESSIONDESK_PUBLIC_URL: %v (base path %q) %v", c.PublicURL, c.BasePath, err)
	}
	// Still refused: plain http off loopback, whatever its case.
	for _, raw := range []string{"HTTP://Inbox.Example.com", "http://inbox.example.com:80", "ftp://inbox.example.com"} {
		if u, err := ParsePublicURL(raw); err == nil {
			t.Errorf("%s: accepted as %s", raw, u)
		}
	}
}

func TestRouteeComplete(t *testing.T) {
	c, err := Parse(nil, env(map[string]string{"ROUTEE_APP_ID": "app", "ROUTEE_APP_SECRET": "secret", "ROUTEE_SENDER_ID": "sender",
		"SESSIONDESK_PUBLIC_URL": "https://inbox.example.com", "SESSIONDESK_WEBHOOK_SECRET": "0123456789abcdef"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Routee == nil || c.Routee.APIURL != "https://connect.routee.net" || c.Routee.AuthURL != "https://auth.routee.net" {
		t.Errorf("routee = %+v", c.Routee)
	}
	if c, _ := Parse(nil, env(nil), io.Discard); c.Routee != nil {
		t.Error("the sandbox default has a Routee configuration")
	}
}

// The session flags are refused outside what Viber allows, naming the range;
// the edges are accepted.
func TestSessionFlagsWithinVibersRanges(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--session-window", "25h"}, nil, "at most 24h"},
		{nil, map[string]string{"SESSIONDESK_SESSION_WINDOW": "48h"}, "at most 24h"},
		{[]string{"--session-window", "0s"}, nil, "more than 0"},
		{[]string{"--text-max", "1001"}, nil, "1 to 1000"},
		{[]string{"--text-max", "0"}, nil, "1 to 1000"},
		{[]string{"--session-max-unanswered", "11"}, nil, "1 to 10"},
		{[]string{"--session-max-unanswered", "0"}, nil, "1 to 10"},
		{[]string{"--session-max", "61"}, nil, "1 to 60"},
		{[]string{"--session-max", "0"}, nil, "1 to 60"},
		{[]string{"--ttl", "29s"}, nil, "30s to 24h"},
		{[]string{"--ttl", "24h1s"}, nil, "30s to 24h"},
	} {
		_, err := Parse(tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want an error naming %q", tc.args, tc.env, err, tc.want)
		}
	}
	c, err := Parse([]string{"--session-window", "24h", "--text-max", "1000", "--session-max-unanswered", "10",
		"--session-max", "60", "--ttl", "30s"}, env(nil), io.Discard)
	if err != nil {
		t.Fatalf("the edges of the ranges: %v", err)
	}
	if c.Rules.Window != 24*time.Hour || c.Rules.MaxTextLen != 1000 || c.Rules.MaxUnanswered != 10 || c.Rules.MaxPerSession != 60 || c.TTL != 30*time.Second {
		t.Errorf("config = %+v", c)
	}
	if _, err := Parse([]string{"--ttl", "24h"}, env(nil), io.Discard); err != nil {
		t.Errorf("--ttl 24h: %v", err)
	}
}

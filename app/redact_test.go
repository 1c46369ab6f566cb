package app

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

// Whatever carries the secret (an error, a URL, a group, a logger's own
// attributes, the message), the output does not.
func TestRedactLogsHidesTheSecret(t *testing.T) {
	const secret = "0123456789abcdef-hidden"
	var out bytes.Buffer
	log := redactLogs(slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})), secret)
	u, _ := url.Parse("http://127.0.0.1:8080/webhooks/routee/" + secret + "/inbound")
	err := fmt.Errorf("post: %w", &url.Error{Op: "Post", URL: u.String(), Err: errors.New("connection refused")})
	log.With("hooks", u.String()).WithGroup("g").Debug("callback to "+u.Path+" failed",
		"err", err, "url", u, slog.Group("nested", "path", u.Path), "n", 3)
	log.Error("plain", "secret-"+secret, true)
	got := out.String()
	if strings.Contains(got, secret) {
		t.Fatalf("the secret is in the logs: %s", got)
	}
	if strings.Count(got, redacted) < 6 || !strings.Contains(got, "connection refused") || !strings.Contains(got, `"n":3`) {
		t.Errorf("the log lost more than the secret: %s", got)
	}
}

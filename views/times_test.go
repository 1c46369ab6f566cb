package views

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"sessiondesk/session"
)

// The window_closed refusal the rules write names the session's end in UTC;
// the page shows that time as a <time> the script puts in the browser's zone.
// If package session writes the time differently, this fails rather than the
// page quietly speaking UTC again.
func TestRefusalTimeIsALocalTime(t *testing.T) {
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	st := session.State{Current: &session.Session{Number: 1, StartedAt: start, EndsAt: start.Add(24 * time.Hour)}}
	status := session.StatusAt(st, session.Defaults(), start.Add(25*time.Hour))
	if status.Refusal == nil || status.Refusal.Code != session.WindowClosed {
		t.Fatalf("want a window_closed refusal, got %+v", status.Refusal)
	}
	minsk := time.FixedZone("MSK", 3*3600)
	var buf bytes.Buffer
	if err := refusalText(status.Refusal, status.EndsAt.In(minsk)).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	want := `<time datetime="2026-11-25T10:00:00Z" data-format="day"`
	if !strings.Contains(html, want) || !strings.Contains(html, ">25 Nov 13:00</time>") {
		t.Errorf("the refusal renders as %s, want a <time> of the end (%s…) in the server's zone as fallback", html, want)
	}
	if strings.Contains(html, "UTC") {
		t.Errorf("the refusal still names UTC: %s", html)
	}
}

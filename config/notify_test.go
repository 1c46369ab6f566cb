package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

// --notify-before defaults to 15 minutes, takes 0 for never, and refuses a
// negative lead or one longer than a day (no session lasts longer).
func TestNotifyBefore(t *testing.T) {
	env := func(string) string { return "" }
	c, err := Parse(nil, env, io.Discard)
	if err != nil || c.NotifyBefore != 15*time.Minute {
		t.Fatalf("default: %s, %v; want 15m", c.NotifyBefore, err)
	}
	c, err = Parse(nil, func(k string) string {
		if k == "SESSIONDESK_NOTIFY_BEFORE" {
			return "0s"
		}
		return ""
	}, io.Discard)
	if err != nil || c.NotifyBefore != 0 {
		t.Errorf("env 0s: %s, %v; want 0", c.NotifyBefore, err)
	}
	for _, v := range []string{"-1m", "25h"} {
		if _, err := Parse([]string{"--notify-before", v}, env, io.Discard); err == nil || !strings.Contains(err.Error(), "--notify-before") {
			t.Errorf("--notify-before %s: %v, want an error naming the flag", v, err)
		}
	}
}

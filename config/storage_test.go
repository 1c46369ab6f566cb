package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestStorageSettings(t *testing.T) {
	c, err := Parse(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.EventRetention != 720*time.Hour || c.Synchronous != "NORMAL" {
		t.Errorf("defaults: retention %s, synchronous %q; want 720h and NORMAL", c.EventRetention, c.Synchronous)
	}
	c, err = Parse([]string{"--sqlite-synchronous", "full"},
		env(map[string]string{"SESSIONDESK_EVENT_RETENTION": "48h", "SESSIONDESK_SQLITE_SYNCHRONOUS": "NORMAL"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.EventRetention != 48*time.Hour || c.Synchronous != "FULL" {
		t.Errorf("retention %s, synchronous %q; want 48h and FULL", c.EventRetention, c.Synchronous)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--event-retention", "59m"}, nil, "at least 1h"},
		{[]string{"--event-retention", "-720h"}, nil, "at least 1h"},
		{nil, map[string]string{"SESSIONDESK_EVENT_RETENTION": "30d"}, "not a duration"},
		{[]string{"--sqlite-synchronous", "OFF"}, nil, "NORMAL or FULL"},
		{[]string{"--sqlite-synchronous", ""}, nil, "NORMAL or FULL"},
	} {
		_, err := Parse(tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: got %v, want an error about %q", tc.args, tc.env, err, tc.want)
		}
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSeedWritesADatabaseAndRefusesBadFlags(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run([]string{"--data", dir, "--sessions", "40", "--days", "7", "--end", "2026-11-28"}, &out, &out); err != nil {
		t.Fatalf("run: %v (%s)", err, out.String())
	}
	if !strings.Contains(out.String(), "seeded 2026-11-21 to 2026-11-27") || !strings.Contains(out.String(), "40 sessions") {
		t.Errorf("output %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "sessiondesk.db")); err != nil {
		t.Error(err)
	}
	for _, bad := range [][]string{{"--sessions", "0"}, {"--days", "400"}, {"--end", "tomorrow"}, {"--agents", "-1"}} {
		if err := run(append([]string{"--data", t.TempDir()}, bad...), &out, &out); err == nil {
			t.Errorf("%v: want an error", bad)
		}
	}
}

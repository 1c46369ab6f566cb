package main

import (
	"io"
	"strings"
	"testing"
)

func TestRunRefusesNonLoopbackWithoutSSO(t *testing.T) {
	err := run([]string{"--addr", "0.0.0.0:8080", "--data", t.TempDir()}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("run on 0.0.0.0: %v, want a refusal naming loopback", err)
	}
}

func TestRunRefusesBadLogLevel(t *testing.T) {
	err := run([]string{"--log-level", "loud", "--data", t.TempDir()}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "log-level") {
		t.Fatalf("run with a bad log level: %v", err)
	}
}

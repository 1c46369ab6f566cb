package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sessiondesk/channel/routee/fakeroutee"
)

// TestMain lets a test run this binary's main in a child process: the child
// is the test binary itself, so no separate build is needed.
func TestMain(m *testing.M) {
	if os.Getenv("SESSIONDESK_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestRunRefusesNonLoopbackWithoutSSO(t *testing.T) {
	err := run([]string{"--addr", "0.0.0.0:8080", "--data", t.TempDir()}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("run on 0.0.0.0: %v, want a refusal naming loopback", err)
	}
}

func TestRunRefusesBadLogLevel(t *testing.T) {
	err := run([]string{"--log-level", "loud", "--data", t.TempDir()}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "log-level") {
		t.Fatalf("run with a bad log level: %v", err)
	}
}

// child runs main in a child process with the given environment.
func child(env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0]) // TestMain runs main: no test flags
	cmd.Env = append(os.Environ(), append(env, "SESSIONDESK_TEST_RUN_MAIN=1")...)
	return cmd
}

// ROUTEE_APP_ID without its secret: a clear error and a non-zero exit.
func TestIncompleteRouteeConfigExitsNonZero(t *testing.T) {
	cmd := child("ROUTEE_APP_ID=app", "SESSIONDESK_DATA="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("exit: %v, want a non-zero exit code", err)
	}
	if !strings.Contains(stderr.String(), "ROUTEE_APP_SECRET") {
		t.Errorf("stderr %q does not name the missing ROUTEE_APP_SECRET", stderr.String())
	}
}

// After SIGKILL while messages are queued, and a restart, each queued message
// is sent once: none lost, none twice, counted at the fake Routee.
func TestSIGKILLWhileQueuedSendsEachOnce(t *testing.T) {
	fake := fakeroutee.New(fakeroutee.Options{AppID: "app-id", AppSecret: "app-secret"})
	provider := httptest.NewServer(fake.Handler())
	defer provider.Close()
	fake.SetDown(true)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	const secret = "kill-test-secret-0123456789"
	base := "http://" + addr
	env := []string{
		"ROUTEE_APP_ID=app-id", "ROUTEE_APP_SECRET=app-secret", "ROUTEE_SENDER_ID=sender",
		"ROUTEE_API_URL=" + provider.URL, "ROUTEE_AUTH_URL=" + provider.URL,
		"SESSIONDESK_PUBLIC_URL=" + base, "SESSIONDESK_WEBHOOK_SECRET=" + secret,
		"SESSIONDESK_ADDR=" + addr, "SESSIONDESK_DATA=" + t.TempDir(), "SESSIONDESK_NO_DEMO=true",
	}
	var logs bytes.Buffer
	start := func() *exec.Cmd {
		t.Helper()
		cmd := child(env...)
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			res, err := http.Get(base + "/healthz")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == 200 {
					return cmd
				}
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("the inbox did not come up: %v\n%s", err, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	first := start()
	var accepted []string
	for i := range 3 {
		from := fmt.Sprintf("+37529600%04d", 1000+i)
		if err := fake.SendInbound(context.Background(), base+"/webhooks/routee/"+secret+"/inbound",
			fakeroutee.Inbound{From: from, Text: "Hello"}); err != nil {
			t.Fatal(err)
		}
		for n := range 4 {
			res, err := http.Post(base+"/api/v1/conversations/"+strconv.Itoa(i+1)+"/messages", "application/json",
				strings.NewReader(fmt.Sprintf(`{"type":"text","text":"reply %d"}`, n)))
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Message struct{ ID int64 } `json:"message"`
			}
			err = json.NewDecoder(res.Body).Decode(&out)
			res.Body.Close()
			if res.StatusCode != 201 || err != nil {
				t.Fatalf("send: %d %v", res.StatusCode, err)
			}
			accepted = append(accepted, strconv.FormatInt(out.Message.ID, 10))
		}
	}
	time.Sleep(300 * time.Millisecond) // let the outbox try, and fail, against the outage
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	if n := len(fake.Messages()); n != 0 {
		t.Fatalf("%d messages reached Routee while it was down", n)
	}

	fake.SetDown(false)
	second := start()
	deadline := time.Now().Add(20 * time.Second)
	for len(fake.Messages()) < len(accepted) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // room for a duplicate to show up
	for _, label := range accepted {
		if n := fake.Count(label); n != 1 {
			t.Errorf("message %s reached Routee %d times, want once", label, n)
		}
	}
	if n := len(fake.Messages()); n != len(accepted) {
		t.Errorf("Routee got %d messages, want %d", n, len(accepted))
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("malformed requests: %v", v)
	}

	// SIGTERM stops it cleanly, with exit code 0.
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		second.Process.Kill()
		t.Error("no exit within 20 s of SIGTERM")
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sessiondesk/session"
	"sessiondesk/store"
)

// inbox is the real binary running in a child process.
type inbox struct {
	cmd  *exec.Cmd
	base string
	logs *bytes.Buffer
}

// startInbox runs the inbox on a free loopback port with the data folder and
// waits until it answers /healthz.
func startInbox(t *testing.T, data string) *inbox {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	in := &inbox{base: "http://" + addr, logs: new(bytes.Buffer)}
	in.cmd = child("SESSIONDESK_ADDR="+addr, "SESSIONDESK_DATA="+data, "SESSIONDESK_NO_DEMO=true")
	in.cmd.Stderr = in.logs
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if in.cmd.ProcessState == nil {
			in.cmd.Process.Kill()
			in.cmd.Wait()
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(in.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return in
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the inbox did not come up: %v\n%s", err, in.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (in *inbox) stop(t *testing.T) {
	t.Helper()
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := in.cmd.Wait(); err != nil {
		t.Fatalf("the inbox exited with %v\n%s", err, in.logs)
	}
}

// sessiondesk runs the binary with args and returns its exit code and output.
func sessiondesk(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := child(env...)
	cmd.Args = append(cmd.Args, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	default:
		t.Fatal(err)
		return 0, "", ""
	}
}

// threads reads every conversation's messages through the JSON API, as
// "phone: text" lines keyed by message id.
func threads(t *testing.T, base string) map[int64]string {
	t.Helper()
	get := func(path string, v any) {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, res.StatusCode)
		}
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	var convs struct {
		Conversations []struct {
			ID    int64  `json:"id"`
			Phone string `json:"phone"`
		} `json:"conversations"`
	}
	get("/api/v1/conversations", &convs)
	out := map[int64]string{}
	for _, c := range convs.Conversations {
		var msgs struct {
			Messages []struct {
				ID        int64  `json:"id"`
				Direction string `json:"direction"`
				Text      string `json:"text"`
			} `json:"messages"`
		}
		get(fmt.Sprintf("/api/v1/conversations/%d/messages", c.ID), &msgs)
		for _, m := range msgs.Messages {
			out[m.ID] = m.Direction + " " + m.Text
		}
	}
	return out
}

// The whole round trip through the binary: messages go in through the sandbox
// and the API, `backup` copies the running inbox, refuses an existing file,
// `restore` is refused while the inbox runs, then puts the copy into a new
// folder (and over the old one, keeping it aside), and the inbox started on
// the restored copy serves every message through its JSON API.
func TestBackupAndRestoreThroughTheBinary(t *testing.T) {
	data := t.TempDir()
	in := startInbox(t, data)
	for i := range 12 {
		body, _ := json.Marshal(map[string]string{"from": fmt.Sprintf("+37529860%04d", 3900+i%3), "name": "Olga", "text": fmt.Sprintf("client message %d", i)})
		res, err := http.Post(in.base+"/sandbox/messages", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("sandbox message %d: %d", i, res.StatusCode)
		}
	}
	for conv := 1; conv <= 3; conv++ {
		res, err := http.Post(fmt.Sprintf("%s/api/v1/conversations/%d/messages", in.base, conv), "application/json",
			strings.NewReader(fmt.Sprintf(`{"type":"text","text":"agent reply %d"}`, conv)))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("reply in %d: %d", conv, res.StatusCode)
		}
	}
	want := threads(t, in.base)
	if len(want) != 15 {
		t.Fatalf("the inbox shows %d messages, want 15", len(want))
	}

	backups := t.TempDir()
	backup := filepath.Join(backups, "sessiondesk-backup.db")
	code, stdout, stderr := sessiondesk(t, []string{"SESSIONDESK_DATA=" + data}, "backup", backup)
	if code != 0 {
		t.Fatalf("backup exited %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "15 messages") || !strings.Contains(stdout, "integrity ok") {
		t.Errorf("backup says %q, want the count of 15 messages and the check", stdout)
	}
	// A second backup to the same file is refused; --force (after PATH) replaces it.
	before, _ := os.ReadFile(backup)
	if code, _, stderr := sessiondesk(t, nil, "backup", "--data", data, backup); code == 0 || !strings.Contains(stderr, "already exists") {
		t.Errorf("backup over an existing file: exit %d, %q; want a refusal", code, stderr)
	}
	if after, _ := os.ReadFile(backup); !bytes.Equal(before, after) {
		t.Error("the refused backup changed the existing file")
	}
	if code, _, stderr := sessiondesk(t, nil, "backup", "--data", data, backup, "--force"); code != 0 {
		t.Errorf("backup --force: exit %d, %s", code, stderr)
	}
	if code, _, stderr := sessiondesk(t, nil, "backup", "--data", data); code == 0 || !strings.Contains(stderr, "want one PATH") {
		t.Errorf("backup without PATH: exit %d, %q", code, stderr)
	}
	// Restoring under the running inbox is refused, and changes nothing.
	if code, _, stderr := sessiondesk(t, nil, "restore", "--data", data, backup); code == 0 || !strings.Contains(stderr, "stop the inbox first") {
		t.Errorf("restore while the inbox runs: exit %d, %q; want a refusal", code, stderr)
	}
	if got := threads(t, in.base); len(got) != len(want) {
		t.Errorf("after the refused restore the inbox shows %d messages, want %d", len(got), len(want))
	}
	in.stop(t)

	fresh := filepath.Join(t.TempDir(), "data")
	code, stdout, stderr = sessiondesk(t, []string{"SESSIONDESK_DATA=" + fresh}, "restore", backup)
	if code != 0 {
		t.Fatalf("restore exited %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "15 messages") {
		t.Errorf("restore says %q, want the count of 15 messages", stdout)
	}
	// Over the old folder: the database it replaces is kept.
	code, stdout, stderr = sessiondesk(t, nil, "restore", "--data", data, backup)
	if code != 0 || !strings.Contains(stdout, "kept at") {
		t.Fatalf("restore over the old database: exit %d, %q %s", code, stdout, stderr)
	}
	kept, _ := filepath.Glob(filepath.Join(data, "sessiondesk.before-restore-*.db"))
	if len(kept) != 1 {
		t.Errorf("databases kept aside: %v, want one", kept)
	}

	again := startInbox(t, fresh)
	got := threads(t, again.base)
	for id, m := range want {
		if got[id] != m {
			t.Errorf("message %d after restore: %q, want %q", id, got[id], m)
		}
	}
	if len(got) != len(want) {
		t.Errorf("the restored inbox shows %d messages, want %d", len(got), len(want))
	}
	again.stop(t)
}

// unbind-login releases a login bound to a person of the sign-in service,
// beside the running inbox; the next person to sign in with it binds it.
func TestUnbindLoginBesideTheRunningInbox(t *testing.T) {
	data := t.TempDir()
	db := filepath.Join(data, "sessiondesk.db")
	st, err := store.Open(t.Context(), db, store.Options{Rules: session.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	anna, err := st.SignIn(t.Context(), store.SignIn{Login: "anna@example.com", Subject: "anna", Name: "Anna", Role: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	startInbox(t, data)

	code, stdout, stderr := sessiondesk(t, nil, "unbind-login", "--data", data, "anna@example.com")
	if code != 0 || !strings.Contains(stdout, "released anna@example.com") {
		t.Fatalf("unbind-login exited %d: %s %s", code, stdout, stderr)
	}
	if code, _, stderr := sessiondesk(t, nil, "unbind-login", "--data", data, "anna@example.com"); code == 0 || !strings.Contains(stderr, "nothing to do") {
		t.Errorf("unbinding it again exited %d: %s, want an error saying there is nothing to do", code, stderr)
	}
	if code, _, stderr := sessiondesk(t, nil, "unbind-login", "--data", data); code == 0 || !strings.Contains(stderr, "want one LOGIN") {
		t.Errorf("without a login it exited %d: %s", code, stderr)
	}

	// Anna, renamed at the sign-in service, signs in again: her agent.
	st, err = store.Open(t.Context(), db, store.Options{Rules: session.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := st.SignIn(t.Context(), store.SignIn{Login: "anna@example.com", Subject: "anna.k", Name: "Anna", Role: "agent"})
	if err != nil || a.ID != anna.ID {
		t.Errorf("after unbind-login: %+v, %v; want agent %d", a, err, anna.ID)
	}
}

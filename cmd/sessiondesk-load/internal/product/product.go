// Package product builds, starts and stops the Sessiondesk binary for the load
// tool, on loopback only, and reads its memory use.
package product

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Group is the SSO group the load tool's agents are in; the product maps it
// to the agent role.
const Group = "sessiondesk-load"

// Build compiles the product (the module's root package) into dir.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "sessiondesk")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "sessiondesk")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build sessiondesk: %w\n%s", err, out.String())
	}
	return bin, nil
}

// Config says how to start the product.
type Config struct {
	Binary  string
	DataDir string    // holds sessiondesk.db (the dataset copy)
	Log     io.Writer // the product's stderr; nil discards it
	// StartTimeout bounds the wait for /healthz.
	StartTimeout time.Duration
}

// Product is one running binary.
type Product struct {
	cmd  *exec.Cmd
	done chan error
	// URL is the inbox's base URL, http://127.0.0.1:port.
	URL string
	// WebhookSecret is the secret path segment of the Routee webhooks.
	WebhookSecret string
	// ColdStart is the time from exec to the first healthy /healthz.
	ColdStart time.Duration
	// ExtraFlags lists the flags added because the binary has them (a per-agent
	// websocket cap raised out of the way).
	ExtraFlags []string
}

// capFlag matches a per-agent socket cap in the binary's -h text, e.g.
// "-ws-per-agent int" or "-max-sockets-per-agent int".
var capFlag = regexp.MustCompile(`^\s+-([a-z0-9-]*(?:socket|ws|websocket)[a-z0-9-]*) int\b`)

// sockCapFlags reads the binary's help and returns flags that raise any
// per-agent websocket cap, so that many sockets of one agent are not refused.
// A binary without such a flag gets none.
func sockCapFlags(ctx context.Context, bin string) []string {
	out, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput() // -h exits non-zero
	var flags []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := capFlag.FindStringSubmatch(sc.Text())
		if m != nil && (strings.Contains(m[1], "max") || strings.Contains(m[1], "per") || strings.Contains(m[1], "limit")) {
			flags = append(flags, "--"+m[1]+"=100000")
		}
	}
	return flags
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Start runs the binary with the sandbox channel, a known webhook secret, and
// the header SSO mode trusting 127.0.0.1 (every agent of the load tool names
// itself in X-Forwarded-* headers, like behind oauth2-proxy), and waits until
// /healthz answers.
func Start(ctx context.Context, cfg Config) (*Product, error) {
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 2 * time.Minute
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("product: free port: %w", err)
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	p := &Product{URL: fmt.Sprintf("http://127.0.0.1:%d", port), WebhookSecret: hex.EncodeToString(secret), done: make(chan error, 1)}
	p.ExtraFlags = sockCapFlags(ctx, cfg.Binary)
	args := append([]string{
		"--addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--public-url", p.URL,
		"--data", cfg.DataDir,
		"--no-demo",
		"--webhook-secret", p.WebhookSecret,
		"--auth", "header", "--auth-preset", "oauth2-proxy",
		"--trusted-proxies", "127.0.0.1",
		"--roles", Group + "=agent",
		"--log-level", "warn",
	}, p.ExtraFlags...)
	p.cmd = exec.Command(cfg.Binary, args...)
	p.cmd.Env = cleanEnv()
	if cfg.Log != nil {
		p.cmd.Stdout, p.cmd.Stderr = cfg.Log, cfg.Log
	}
	began := time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("product: start %s: %w", cfg.Binary, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(cfg.StartTimeout)
	for {
		select {
		case err := <-p.done:
			return nil, fmt.Errorf("product: exited before answering /healthz: %v", err)
		default:
		}
		resp, err := client.Get(p.URL + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body) //nolint:errcheck // draining only
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.ColdStart = time.Since(began)
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("product: /healthz not answering after %s", cfg.StartTimeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// cleanEnv is the tool's environment without SESSIONDESK_* and ROUTEE_*
// settings, which would otherwise change the product under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SESSIONDESK_") || strings.HasPrefix(kv, "ROUTEE_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Pid is the product's process id.
func (p *Product) Pid() int { return p.cmd.Process.Pid }

// RSS reads the product's resident memory in bytes from /proc.
func (p *Product) RSS() (int64, error) { return p.status("VmRSS") }

// AnonRSS reads the resident memory that is the product's own (heap, stacks,
// SQLite's caches), without the executable's file pages that RSS also
// counts (the kernel may map those in 2 MB pages, whole).
func (p *Product) AnonRSS() (int64, error) { return p.status("RssAnon") }

// status reads a size in kB from /proc/PID/status, in bytes.
func (p *Product) status(field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, fmt.Errorf("product: read %s: %w", field, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("product: %s %q: %w", field, rest, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("product: no %s in /proc status", field)
}

// Stop asks the product to stop (SIGTERM), and kills it after 20 s.
func (p *Product) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("product: exited with %v", err)
		}
		return err
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("product: did not stop within 20 s of SIGTERM; killed")
	}
}

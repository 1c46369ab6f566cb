// Command sessiondesk-load measures Sessiondesk at team scale (issue 10): it
// builds and starts the binary on loopback (or runs the one given), loads a
// dataset made through the store's own calls, connects agents' websockets
// that read like browsers, and runs the scenarios below, each figure with its
// baseline measured in the same run (raw SQLite one-row transactions with the
// product's pragmas on the same disk, a bare Echo handler serving a body of the
// same size). It prints a markdown table (the README's Performance section),
// or JSON with -json. It only ever talks to 127.0.0.1 and stops by itself.
//
//	go run ./cmd/sessiondesk-load                 # full size: 100k conversations, 1M messages, 3 runs
//	go run ./cmd/sessiondesk-load --quick         # CI smoke: seconds, tiny dataset
//	go run ./cmd/sessiondesk-load --scenarios live,pages --runs 1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// allScenarios in the order a run plays them.
var allScenarios = []string{"coldstart", "rss", "pages", "ingest", "live", "send", "sockets", "churn"}

// options are the command line.
type options struct {
	runs          int
	scenarios     map[string]bool
	conversations int
	messages      int
	agents        int
	pageSizes     []int // extra, smaller datasets the pages are measured at
	senders       []int
	rates         []int
	sockets       []int
	churn         int
	churnRate     int
	duration      time.Duration // of one measurement
	wait          time.Duration // for frames after the last live message
	binary        string
	cacheDir      string
	json          bool
	quick         bool
	timeout       time.Duration
	verbose       bool
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "sessiondesk-load:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	limit := raiseFileLimit()
	need := 0
	if o.scenarios["sockets"] && len(o.sockets) > 0 {
		need = slices.Max(o.sockets)
	}
	if o.scenarios["churn"] {
		need = max(need, o.churn)
	}
	if need+o.agents+512 > int(limit) {
		fmt.Fprintf(stderr, "sessiondesk-load: open files limited to %d: fewer sockets than asked will connect (raise with ulimit -n)\n", limit)
	}

	work, err := os.MkdirTemp("", "sessiondesk-load-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := o.binary
	if bin == "" {
		fmt.Fprintln(stderr, "sessiondesk-load: building the product")
		if bin, err = buildProduct(ctx, work); err != nil {
			return err
		}
	}
	r := newRunner(o, bin, work, stderr)
	defer r.close()
	rep, err := r.all(ctx)
	if err != nil {
		return err
	}
	rep.Command = "go run ./cmd/sessiondesk-load " + strings.Join(args, " ")
	rep.FileLimit = limit
	if o.json {
		return rep.writeJSON(stdout)
	}
	rep.writeMarkdown(stdout)
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("sessiondesk-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o                                           options
		scenarios, pageSizes, senders, rates, socks string
	)
	fs.IntVar(&o.runs, "runs", 3, "runs; every figure is the median of the runs, each with its own baseline")
	fs.StringVar(&scenarios, "scenarios", strings.Join(allScenarios, ","), "comma list of: "+strings.Join(allScenarios, ", "))
	fs.IntVar(&o.conversations, "conversations", 100_000, "conversations in the main dataset")
	fs.IntVar(&o.messages, "messages", 1_000_000, "messages in the main dataset")
	fs.IntVar(&o.agents, "agents", 100, "agents with the inbox open (websockets) in the ingest and live scenarios")
	fs.StringVar(&pageSizes, "page-sizes", "1000,10000", "smaller datasets (conversations, 10 messages each) the pages are also measured at")
	fs.StringVar(&senders, "senders", "8,32,64", "closed-loop webhook senders of the ingest scenario")
	fs.StringVar(&rates, "rates", "100,200", "client messages per second of the live latency scenario")
	fs.StringVar(&socks, "sockets", "1000,5000", "idle websockets whose memory is measured")
	fs.IntVar(&o.churn, "churn", 1000, "websockets connecting and leaving in the churn scenario")
	fs.IntVar(&o.churnRate, "churn-rate", 20, "client messages per second while the sockets churn")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of one measurement")
	fs.DurationVar(&o.wait, "wait", 10*time.Second, "how long after the last live message frames are awaited (then a pair counts as never shown)")
	fs.StringVar(&o.binary, "binary", "", "the sessiondesk binary to run (default: go build the module's)")
	fs.StringVar(&o.cacheDir, "cache", filepath.Join(os.TempDir(), "sessiondesk-load"), "where generated datasets are kept between runs")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of the markdown table")
	fs.BoolVar(&o.quick, "quick", false, "CI smoke: tiny dataset, one short run of every scenario, no thresholds")
	fs.DurationVar(&o.timeout, "timeout", time.Hour, "stop everything after this long")
	fs.BoolVar(&o.verbose, "v", false, "pass the product's log (warnings) through to stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: see -h", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		// Small enough to take seconds; explicit flags still win.
		quick := map[string]func(){
			"runs":          func() { o.runs = 1 },
			"conversations": func() { o.conversations = 300 },
			"messages":      func() { o.messages = 1500 },
			"agents":        func() { o.agents = 3 },
			"page-sizes":    func() { pageSizes = "" },
			"senders":       func() { senders = "4" },
			"rates":         func() { rates = "20" },
			"sockets":       func() { socks = "20" },
			"churn":         func() { o.churn = 10 },
			"churn-rate":    func() { o.churnRate = 10 },
			"duration":      func() { o.duration = 500 * time.Millisecond },
			"wait":          func() { o.wait = 3 * time.Second },
			"timeout":       func() { o.timeout = 5 * time.Minute },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	var err error
	o.scenarios = map[string]bool{}
	for _, s := range splitList(scenarios) {
		if !slices.Contains(allScenarios, s) {
			return o, fmt.Errorf("--scenarios: unknown %q, want some of %s", s, strings.Join(allScenarios, ","))
		}
		o.scenarios[s] = true
	}
	if len(o.scenarios) == 0 {
		return o, errors.New("--scenarios: name at least one")
	}
	if o.pageSizes, err = intList("page-sizes", pageSizes, 1, 10_000_000); err != nil {
		return o, err
	}
	if o.senders, err = intList("senders", senders, 1, 1024); err != nil {
		return o, err
	}
	if o.rates, err = intList("rates", rates, 1, 100_000); err != nil {
		return o, err
	}
	if o.sockets, err = intList("sockets", socks, 1, 100_000); err != nil {
		return o, err
	}
	switch {
	case o.runs < 1 || o.runs > 15:
		return o, fmt.Errorf("--runs %d: want 1 to 15", o.runs)
	case o.conversations < 1 || o.messages < o.conversations:
		return o, fmt.Errorf("--conversations %d --messages %d: want at least one message per conversation", o.conversations, o.messages)
	case o.agents < 0 || o.agents > 10_000:
		return o, fmt.Errorf("--agents %d: want 0 to 10000", o.agents)
	case o.churn < 1 || o.churn > 100_000 || o.churnRate < 1 || o.churnRate > 100_000:
		return o, fmt.Errorf("--churn %d --churn-rate %d: want 1 to 100000", o.churn, o.churnRate)
	case o.duration < 100*time.Millisecond || o.duration > 10*time.Minute:
		return o, fmt.Errorf("--duration %s: want 100ms to 10m", o.duration)
	case o.wait < 100*time.Millisecond || o.wait > 10*time.Minute:
		return o, fmt.Errorf("--wait %s: want 100ms to 10m", o.wait)
	case o.timeout <= 0:
		return o, fmt.Errorf("--timeout %s: want a positive duration", o.timeout)
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// intList reads a comma list of whole numbers in [lo, hi].
func intList(name, s string, lo, hi int) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("--%s: %q is not a whole number from %d to %d", name, f, lo, hi)
		}
		out = append(out, n)
	}
	return out, nil
}

// raiseFileLimit lifts the soft limit on open files to the hard one, for the
// thousands of sockets; the product, started afterwards, inherits it. It
// returns the limit in force.
func raiseFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 1024
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	return l.Cur
}

// machine names the CPU, its cores and the Go version, for the report.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s/%s, %s", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

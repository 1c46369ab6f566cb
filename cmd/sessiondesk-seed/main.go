// Command sessiondesk-seed writes a month of made-up support traffic into a
// Sessiondesk data folder, through the store's own write path, so that the
// reports page (/reports) has something to show. The same --seed gives the
// same data. Stop the inbox first: the data folder has one writer.
//
//	go run ./cmd/sessiondesk-seed --data ./data --sessions 3000 --seed 1
//	go run . --data ./data --no-demo    # then open /reports
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"sessiondesk/seed"
	"sessiondesk/session"
	"sessiondesk/store"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sessiondesk-seed:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sessiondesk-seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "the data folder (the inbox's --data); the database is sessiondesk.db in it")
	sessions := fs.Int("sessions", 3000, "about how many client sessions to open")
	days := fs.Int("days", 30, "how many days the traffic covers, ending now")
	agents := fs.Int("agents", 6, "how many agents answer")
	seedN := fs.Uint64("seed", 1, "the seed: the same seed, options and end day give the same data")
	end := fs.String("end", "", "the day after the last day of traffic, YYYY-MM-DD in UTC (default: today)")
	rateText := fs.Float64("rate-text", 0.0085, "the text-only session rate frozen on the sessions")
	rateMedia := fs.Float64("rate-media", 0.0170, "the media session rate frozen on the sessions")
	currency := fs.String("currency", "EUR", "the rates' currency")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sessions < 1 || *sessions > 2_000_000 || *days < 1 || *days > 366 || *agents < 1 || *agents > 100 {
		return fmt.Errorf("want 1 to 2000000 sessions, 1 to 366 days and 1 to 100 agents")
	}
	stop := time.Now().UTC().Truncate(24 * time.Hour)
	if *end != "" {
		t, err := time.Parse(time.DateOnly, *end)
		if err != nil {
			return fmt.Errorf("--end: write the day as YYYY-MM-DD")
		}
		stop = t
	}
	start := stop.AddDate(0, 0, -*days)
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(*data, "sessiondesk.db"), store.Options{Rules: session.Defaults(),
		Rates: session.Rates{Text: *rateText, Media: *rateMedia, Currency: *currency}})
	if err != nil {
		return err
	}
	defer st.Close()
	began := time.Now()
	res, err := seed.Month(ctx, st, seed.Options{Seed: *seedN, Start: start, Days: *days, Sessions: *sessions, Agents: *agents})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %s to %s: %d clients, %d sessions, %d client messages, %d business messages (%d rejected) in %s\n",
		start.Format(time.DateOnly), stop.AddDate(0, 0, -1).Format(time.DateOnly), res.Contacts, res.Sessions,
		res.ClientMessages, res.BusinessMessages, res.Rejected, time.Since(began).Round(time.Millisecond))
	return nil
}

package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"sessiondesk/report"
	"sessiondesk/seed"
	"sessiondesk/session"
	"sessiondesk/store"
	"sessiondesk/views"
)

// The reports benchmark reads a month of SESSIONDESK_BENCH_REPORT_SESSIONS
// sessions (skipped when unset, so go test stays fast), all in the 30 days
// the report covers:
//
//	SESSIONDESK_BENCH_REPORT_SESSIONS=100000 go test ./store -run '^$' -bench BenchmarkReports -count 5
//
// The database is played once by the seed generator (the store's own write
// path) and kept in the system's temporary folder, named by its size.

var benchEnd = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)

func benchReportStore(b *testing.B) (*store.Store, string) {
	v := os.Getenv("SESSIONDESK_BENCH_REPORT_SESSIONS")
	if v == "" {
		b.Skip("set SESSIONDESK_BENCH_REPORT_SESSIONS (e.g. 100000) to run the reports benchmark")
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 100 {
		b.Fatalf("SESSIONDESK_BENCH_REPORT_SESSIONS=%q: want a number of sessions, at least 100", v)
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("sessiondesk-bench-reports-v1-%d.db", n))
	ctx := context.Background()
	opts := store.Options{Rules: session.Defaults(), Rates: session.Rates{Text: 0.0085, Media: 0.017, Currency: "EUR"},
		Now: func() time.Time { return benchEnd.Add(10 * time.Hour) }}
	if _, err := os.Stat(path); err != nil {
		b.Logf("playing %d sessions into %s (once)", n, path)
		start := time.Now()
		tmp := path + ".part"
		for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
			_ = os.Remove(p)
		}
		st, err := store.Open(ctx, tmp, opts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := seed.Month(ctx, st, seed.Options{Seed: 1, Start: benchEnd.AddDate(0, 0, -30), Days: 30, Sessions: n, Agents: 8}); err != nil {
			b.Fatal(err)
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			b.Fatal(err)
		}
		b.Logf("played in %s", time.Since(start).Round(time.Second))
	}
	st, err := store.Open(ctx, path, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st, path
}

// BenchmarkReports is what the reports page does for the last 30 days: every
// figure read in one snapshot, the tables and charts built, and the page
// rendered (handlers.reportsPage minus parsing the query). "all" and "agent"
// run with the days that are over kept (BuildReportDays, which the inbox runs
// in the background); "all, nothing kept" reads every session, as a report
// does before the background has kept anything.
func BenchmarkReports(b *testing.B) {
	st, path := benchReportStore(b)
	ctx := context.Background()
	f := store.ReportFilter{From: benchEnd.AddDate(0, 0, -30), To: benchEnd, Loc: time.UTC}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		name  string
		agent int64
		kept  bool
	}{{"all, nothing kept", 0, false}, {"all", 0, true}, {"agent", 1, true}} {
		b.Run(tc.name, func(b *testing.B) {
			if tc.kept {
				if _, err := st.BuildReportDays(ctx, store.MaxReportDays); err != nil {
					b.Fatal(err)
				}
			} else if _, err := db.ExecContext(ctx, `DELETE FROM report_session_days`); err != nil {
				b.Fatal(err)
			}
			f.AgentID = tc.agent
			var rep store.Report
			var size int
			for b.Loop() {
				err := st.Read(ctx, func(r *store.Reader) error {
					var err error
					rep, err = r.Report(ctx, f)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				page := views.ReportsPage{Chrome: views.Chrome{Title: "Reports", AgentName: "Bench", CanReport: true},
					From: "2026-10-29", To: "2026-11-27", Zone: "UTC",
					Tables: report.Tables(rep, "EUR"), Charts: report.Charts(rep, "EUR")}
				var buf bytes.Buffer
				if err := views.Reports(page).Render(ctx, &buf); err != nil {
					b.Fatal(err)
				}
				size = buf.Len()
			}
			b.ReportMetric(float64(size), "bytes")
			b.ReportMetric(float64(rep.Sessions), "sessions")
		})
	}
}

package store

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"sessiondesk/session"
)

func TestZZProbe(t *testing.T) {
	path := os.Getenv("PROBE_DB")
	if path == "" {
		t.Skip()
	}
	end := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	s, err := Open(context.Background(), path, Options{Rules: session.Defaults(), Now: func() time.Time { return end.Add(10 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	f := ReportFilter{From: end.AddDate(0, 0, -30), To: end, Loc: time.UTC}
	for round := 0; round < 2; round++ {
		_ = s.Read(ctx, func(r *Reader) error {
			rep := Report{Filter: f, MaxUnanswered: 5, MaxPerSession: 60}
			var bounds [][2]int64
			for d := f.From; d.Before(f.To); d = d.AddDate(0, 0, 1) {
				rep.Days = append(rep.Days, ReportDay{Day: d})
				bounds = append(bounds, [2]int64{ms(d), ms(d.AddDate(0, 0, 1))})
			}
			b, _ := json.Marshal(bounds)
			rep.dayBounds = string(b)
			for _, st := range []struct {
				name string
				step func(context.Context, *Report) error
			}{
				{"sessions", r.reportSessions},
				{"first", r.reportFirstResponses}, {"responses", r.reportResponses}, {"top", r.reportTop}} {
				name, step := st.name, st.step
				start := time.Now()
				if err := step(ctx, &rep); err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: %s", name, time.Since(start))
			}
			return nil
		})
	}
}

package seed

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"sessiondesk/session"
	"sessiondesk/store"
)

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), store.Options{Rules: session.Defaults(),
		Rates: session.Rates{Text: 0.01, Media: 0.02, Currency: "EUR"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func BenchmarkMonth(b *testing.B) {
	for b.Loop() {
		st := openStore(b)
		if _, err := Month(context.Background(), st, Options{Seed: 1, Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), Sessions: 1000}); err != nil {
			b.Fatal(err)
		}
	}
}

func monthReport(t *testing.T, seedN uint64) (Result, store.Report) {
	t.Helper()
	st := openStore(t)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	res, err := Month(context.Background(), st, Options{Seed: seedN, Start: start, Days: 30, Sessions: 300, Agents: 3})
	if err != nil {
		t.Fatal(err)
	}
	var rep store.Report
	err = st.Read(context.Background(), func(r *store.Reader) error {
		var err error
		rep, err = r.Report(context.Background(), store.ReportFilter{From: start, To: start.AddDate(0, 0, 30), Loc: time.UTC})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return res, rep
}

// The same seed gives the same month, figure for figure; another seed another.
func TestMonthIsDeterministic(t *testing.T) {
	res1, rep1 := monthReport(t, 3)
	res2, rep2 := monthReport(t, 3)
	if res1 != res2 || !reflect.DeepEqual(rep1, rep2) {
		t.Errorf("two runs with seed 3 differ:\n%+v\n%+v", res1, res2)
	}
	if res1.Sessions != 300 || rep1.Opened != 300 || rep1.Lost == 0 || rep1.RolledOver == 0 || rep1.HitLimit == 0 || rep1.Kinds[1].Sessions == 0 {
		t.Errorf("the month lacks a kind of traffic: %+v, opened %d lost %d rolled %d limit %d media %d",
			res1, rep1.Opened, rep1.Lost, rep1.RolledOver, rep1.HitLimit, rep1.Kinds[1].Sessions)
	}
	res3, _ := monthReport(t, 4)
	if res3 == res1 {
		t.Errorf("seeds 3 and 4 gave the same traffic: %+v", res3)
	}
}

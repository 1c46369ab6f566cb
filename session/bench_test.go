package session_test

import (
	"testing"
	"time"

	"sessiondesk/session"
)

// benchState is a typical open conversation: session 3, a dozen messages counted,
// one unanswered.
func benchState(used, unanswered int) session.State {
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	return session.State{
		Current:    &session.Session{Number: 3, StartedAt: start, EndsAt: start.Add(24 * time.Hour), Used: used},
		Unanswered: unanswered,
	}
}

var benchNow = time.Date(2026, 11, 24, 15, 30, 0, 0, time.UTC)

func BenchmarkDecide(b *testing.B) {
	set := session.Defaults()
	st := benchState(12, 1)
	parts := []session.Part{{Kind: session.Text, Text: "Your order 4711 left our warehouse this morning."}}
	b.ReportAllocs()
	for b.Loop() {
		if d := session.Decide(st, set, benchNow, parts, false); !d.Allowed() {
			b.Fatal(d.Err)
		}
	}
}

func BenchmarkDecideRollover(b *testing.B) {
	set := session.Defaults()
	st := benchState(59, 0)
	parts := []session.Part{
		{Kind: session.Text, Text: "Here are the documents you asked for."},
		{Kind: session.Image},
		{Kind: session.File},
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := session.Decide(st, set, benchNow, parts, true); !d.StartsNewSession {
			b.Fatal("no rollover", d.Err)
		}
	}
}

func BenchmarkStatusAt(b *testing.B) {
	set := session.Defaults()
	st := benchState(12, 1)
	b.ReportAllocs()
	for b.Loop() {
		if s := session.StatusAt(st, set, benchNow); !s.CanSend {
			b.Fatal(s.Refusal)
		}
	}
}

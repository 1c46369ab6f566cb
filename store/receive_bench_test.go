package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"sessiondesk/session"
)

// BenchmarkReceiveOnDataset measures the store alone taking client messages:
// no HTTP, no live pages, no load tool on the same cores. It is the ceiling
// of ingest through the webhook. It needs a database with clients, such as
// the load tool's cached dataset (skipped when unset):
//
//	SESSIONDESK_BENCH_DATASET=/tmp/sessiondesk-load/dataset-v2-c100000-m1000000.db \
//	    go test ./store -run '^$' -bench BenchmarkReceiveOnDataset -benchtime 40000x -count 3
//
// The database (and its -search file) is copied once; every message goes to a
// known client picked at random, as the load tool's ingest does, with a
// delivery key of its own. It reports messages a second and the process's CPU
// per message (user and system), which counts the writer, the checkpoints and
// the callers' own work.
func BenchmarkReceiveOnDataset(b *testing.B) {
	src := os.Getenv("SESSIONDESK_BENCH_DATASET")
	if src == "" {
		b.Skip("set SESSIONDESK_BENCH_DATASET to a database with clients (e.g. the load tool's dataset) to run it")
	}
	dir := b.TempDir()
	path := filepath.Join(dir, "bench.db")
	for _, suffix := range []string{"", "-search"} {
		if err := copyFile(src+suffix, path+suffix); err != nil && !(suffix != "" && os.IsNotExist(err)) {
			b.Fatal(err)
		}
	}
	st, err := Open(context.Background(), path, Options{Rules: session.Defaults()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	phones, err := clientPhones(st)
	if err != nil {
		b.Fatal(err)
	}
	run := time.Now().UnixNano()
	var calls atomic.Int64 // each call of a sub-benchmark numbers its messages from 1
	for _, senders := range []int{1, 32} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			call := calls.Add(1)
			cpu := processCPU()
			b.ResetTimer()
			n := float64(receiveConcurrently(b, st, senders, func(i int64) ClientMessage {
				return ClientMessage{Phone: phones[(i*7919)%int64(len(phones))], Kind: session.Text,
					Text: "Hello, I have a question about my order", DedupeKey: fmt.Sprintf("bench-%d-%d-%d", run, call, i)}
			}))
			b.StopTimer()
			b.ReportMetric(n/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/n, "cpu-µs/msg")
		})
	}
}

// clientPhones reads the phone numbers of the clients the store holds.
func clientPhones(s *Store) ([]string, error) {
	rows, err := s.read.Query(`SELECT phone FROM contacts`)
	if err != nil {
		return nil, fmt.Errorf("the dataset's clients: %w", err)
	}
	defer rows.Close()
	var phones []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		phones = append(phones, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(phones) == 0 {
		return nil, errors.New("the dataset holds no client")
	}
	return phones, nil
}

// processCPU is the CPU time the process has used so far, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

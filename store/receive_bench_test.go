package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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
// delivery key of its own, hashed as a real delivery's (hashedKey). It
// reports messages a second and the process's CPU per message (user and
// system), which counts the writer, the checkpoints and the callers' own work.
func BenchmarkReceiveOnDataset(b *testing.B) {
	st, _, phones := openBenchDataset(b)
	run := time.Now().UnixNano()
	var calls atomic.Int64 // each call of a sub-benchmark numbers its messages from 1
	for _, senders := range []int{1, 32} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			call := calls.Add(1)
			cpu := processCPU()
			b.ResetTimer()
			n := float64(receiveConcurrently(b, st, senders, func(i int64) ClientMessage {
				return benchMessage(phones, i, hashedKey("bench", run, call, i))
			}))
			b.StopTimer()
			b.ReportMetric(n/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/n, "cpu-µs/msg")
		})
	}
}

// openBenchDataset opens a copy of the database SESSIONDESK_BENCH_DATASET
// names (and of its -search file), skipping b when it is unset. It returns
// the store, the copy's path and the clients' phone numbers.
func openBenchDataset(b *testing.B) (*Store, string, []string) {
	src := os.Getenv("SESSIONDESK_BENCH_DATASET")
	if src == "" {
		b.Skip("set SESSIONDESK_BENCH_DATASET to a database with clients (e.g. the load tool's dataset) to run it")
	}
	path := filepath.Join(b.TempDir(), "bench.db")
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
	return st, path, phones
}

// BenchmarkReceiveWALPages counts the pages client messages write, by the
// table or index each belongs to: what a message costs the WAL, its
// checkpoints and the page cache, whatever the machine's speed. A page
// written by several messages of one commit counts once, as SQLite writes
// it once. On the load tool's dataset:
//
//	SESSIONDESK_BENCH_DATASET=/tmp/sessiondesk-load/dataset-v2-c100000-m1000000.db \
//	    go test ./store -run '^$' -bench BenchmarkReceiveWALPages -benchtime 1500x
//
// It reports pages/msg in all and msgs/commit (the pages every commit
// writes, such as the tables' last pages, weigh less the more messages share
// it), then the pages of every table or index that writes at least 0.05 a
// message. The background checkpoints are stopped and the writer's own are
// off, so that the WAL holds every frame of the run.
func BenchmarkReceiveWALPages(b *testing.B) {
	st, path, phones := openBenchDataset(b)
	if err := st.checkpoints.close(); err != nil {
		b.Fatal(err)
	}
	for _, pragma := range []string{`PRAGMA wal_autocheckpoint = 0`, `PRAGMA wal_checkpoint(TRUNCATE)`} {
		if _, err := st.write.Exec(pragma); err != nil {
			b.Fatalf("%s: %v", pragma, err)
		}
	}
	run := time.Now().UnixNano()
	b.ResetTimer()
	n := receiveConcurrently(b, st, 32, func(i int64) ClientMessage {
		return benchMessage(phones, i, hashedKey("pages", run, i))
	})
	b.StopTimer()
	frames, commits, err := walFrames(path + "-wal")
	if err != nil {
		b.Fatal(err)
	}
	// Into the database file, where the b-trees can be walked.
	if _, err := st.write.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	owners, err := pageOwners(st, path)
	if err != nil {
		b.Fatal(err)
	}
	byName := map[string]int{}
	for _, pg := range frames {
		name, ok := owners[pg]
		if !ok {
			name = "other" // overflow, free list
		}
		byName[name]++
	}
	b.ReportMetric(float64(len(frames))/float64(n), "pages/msg")
	b.ReportMetric(float64(n)/float64(max(commits, 1)), "msgs/commit")
	for name, c := range byName {
		if per := float64(c) / float64(n); per >= 0.05 {
			b.ReportMetric(per, name+"-pages/msg")
		}
	}
}

// walFrames reads the page number of every committed frame of the WAL at
// path, in order, and counts the commits (the format: https://www.sqlite.org/fileformat.html#the_write_ahead_log).
// Frames whose salts are not the header's are an older run's and end the log.
func walFrames(path string) (pages []uint32, commits int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("read the WAL: %w", err)
	}
	if len(data) < 32 {
		return nil, 0, fmt.Errorf("the WAL %s is %d bytes: no header", path, len(data))
	}
	pageSize := int(binary.BigEndian.Uint32(data[8:12]))
	salts := data[16:24]
	var committed []uint32
	for off := 32; off+24+pageSize <= len(data); off += 24 + pageSize {
		h := data[off : off+24]
		if !bytes.Equal(h[8:16], salts) {
			break
		}
		pages = append(pages, binary.BigEndian.Uint32(h[0:4]))
		if binary.BigEndian.Uint32(h[4:8]) != 0 { // a commit's last frame
			committed = pages
			commits++
		}
	}
	return committed, commits, nil
}

// pageOwners maps each b-tree page of the database file at path to the table
// or index it belongs to, walking every b-tree from its root
// (https://www.sqlite.org/fileformat.html#b_tree_pages). Overflow and free
// pages are left out.
func pageOwners(s *Store, path string) (map[uint32]string, error) {
	roots := map[string]uint32{}
	rows, err := s.read.Query(`SELECT name, rootpage FROM sqlite_schema WHERE rootpage > 0`)
	if err != nil {
		return nil, fmt.Errorf("the b-trees' roots: %w", err)
	}
	for rows.Next() {
		var name string
		var root uint32
		if err := rows.Scan(&name, &root); err != nil {
			rows.Close()
			return nil, err
		}
		roots[name] = root
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var header [100]byte
	if _, err := f.ReadAt(header[:], 0); err != nil {
		return nil, fmt.Errorf("the database header: %w", err)
	}
	pageSize := int(binary.BigEndian.Uint16(header[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	owners := map[uint32]string{}
	page := make([]byte, pageSize)
	for name, root := range roots {
		todo := []uint32{root}
		for len(todo) > 0 {
			pg := todo[len(todo)-1]
			todo = todo[:len(todo)-1]
			if _, seen := owners[pg]; seen || pg == 0 {
				continue
			}
			owners[pg] = name
			if _, err := f.ReadAt(page, int64(pg-1)*int64(pageSize)); err != nil {
				return nil, fmt.Errorf("page %d of %s: %w", pg, name, err)
			}
			h := page
			if pg == 1 {
				h = page[100:] // the file header comes first
			}
			if h[0] != 2 && h[0] != 5 { // a leaf: no children
				continue
			}
			cells := int(binary.BigEndian.Uint16(h[3:5]))
			todo = append(todo, binary.BigEndian.Uint32(h[8:12])) // the right-most child
			for i := range cells {
				// Cell offsets count from the page's start, page 1 included.
				at := int(binary.BigEndian.Uint16(h[12+2*i:]))
				todo = append(todo, binary.BigEndian.Uint32(page[at:at+4]))
			}
		}
	}
	return owners, nil
}

// benchMessage is the i-th client message of a benchmark: a text from one of
// the known clients, spread over all of them (7919 is prime), under key.
func benchMessage(phones []string, i int64, key string) ClientMessage {
	return ClientMessage{Phone: phones[(i*7919)%int64(len(phones))], Kind: session.Text,
		Text: "Hello, I have a question about my order", DedupeKey: key}
}

// hashedKey is a delivery key of its own for each set of parts, shaped like
// the keys of real deliveries: Routee gives an inbound message no id, so the
// webhook keys it by a SHA-256 of its content (routee.Inbound.DedupeKey), and
// each key lands at a random place of messages_by_dedupe_key, one more
// random page a message. Increasing keys would all land on its last page.
func hashedKey(parts ...any) string {
	sum := sha256.Sum256([]byte(fmt.Sprint(parts...)))
	return "routee:" + hex.EncodeToString(sum[:])
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

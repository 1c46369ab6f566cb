// Package marker tags the client messages of a latency measurement with
// unique text and finds the tags in the frames agents' websockets receive, to
// time every (message, agent) pair from the webhook POST to the frame.
package marker

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"time"
)

const digits = 7

// Tracker holds the send times of one phase's messages and, per agent, when
// each was first seen.
type Tracker struct {
	prefix []byte
	sent   []atomic.Int64 // unix nanoseconds, 0 until sent
	seen   [][]int64      // [agent][message], atomically; each row written only by its agent's reader
	pairs  atomic.Int64   // pairs seen so far
}

// New returns a tracker for up to messages messages seen by agents agents.
// phase keeps the tags of different measurements apart: a frame still
// showing an earlier phase's message does not count.
func New(phase, messages, agents int) *Tracker {
	t := &Tracker{prefix: fmt.Appendf(nil, "ldt%02dn", phase%100), sent: make([]atomic.Int64, messages), seen: make([][]int64, agents)}
	for a := range t.seen {
		t.seen[a] = make([]int64, messages)
	}
	return t
}

// Text is the client message for message i: its tag first, so the inbox
// list's preview shows it.
func (t *Tracker) Text(i int) string {
	return fmt.Sprintf("%s%0*dx is my order on its way?", t.prefix, digits, i)
}

// Sent records when message i's webhook POST began.
func (t *Tracker) Sent(i int, at time.Time) { t.sent[i].Store(at.UnixNano()) }

// Observer returns the frame callback for agent a: it records the first
// time each tag of this phase appears in a frame.
func (t *Tracker) Observer(a int) func(frame []byte, at time.Time) {
	row := t.seen[a]
	return func(frame []byte, at time.Time) {
		for rest := frame; ; {
			i := bytes.Index(rest, t.prefix)
			if i < 0 {
				return
			}
			rest = rest[i+len(t.prefix):]
			if len(rest) <= digits || rest[digits] != 'x' {
				continue
			}
			n := 0
			for _, c := range rest[:digits] {
				if c < '0' || c > '9' {
					n = -1
					break
				}
				n = n*10 + int(c-'0')
			}
			if n >= 0 && n < len(row) && atomic.LoadInt64(&row[n]) == 0 {
				atomic.StoreInt64(&row[n], at.UnixNano())
				t.pairs.Add(1)
			}
		}
	}
}

// Seen is how many pairs were seen so far.
func (t *Tracker) Seen() int64 { return t.pairs.Load() }

// Result returns the latency of every seen pair of the first n messages that
// were sent, and how many of those pairs were never seen. Call it once the
// agents' readers have stopped or when nothing more is awaited.
func (t *Tracker) Result(n int) (lat []time.Duration, never int) {
	for a := range t.seen {
		for i := range min(n, len(t.sent)) {
			sent := t.sent[i].Load()
			if sent == 0 {
				continue
			}
			seen := atomic.LoadInt64(&t.seen[a][i])
			if seen == 0 {
				never++
				continue
			}
			lat = append(lat, time.Duration(max(seen-sent, 0)))
		}
	}
	return lat, never
}

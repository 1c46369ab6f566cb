package store

import (
	"sync"
	"time"
)

// readMemo keeps results that readers of the same commits share: every page
// draws the sidebar's counts, and while nothing is written the counts of the
// open sessions (a range of an index as long as the open sessions are many)
// are the same for every agent until a session ends or enters a window. An
// entry is reused only by a reader whose snapshot holds exactly the commits
// it was computed from (Reader.exactGeneration) and whose clock reading lies
// in the span over which the result cannot change.
type readMemo struct {
	mu     sync.Mutex
	gen    uint64 // the commits the entries were computed from
	counts map[timedCountsKey]timedCounts
	reused int // entries handed out again (for the tests)
}

// timedCountsKey is what the timed counts depend on besides the commits and
// the time.
type timedCountsKey struct {
	status         string
	expiringWithin time.Duration
	maxUnanswered  int
}

// timedCounts are ViewCounts' counts that depend on the time, valid for a
// clock reading (stored milliseconds) in [from, until).
type timedCounts struct {
	waiting, expiring, locked int
	from, until               int64
}

// maxMemoCounts bounds the entries of one generation: a key is a status and
// a setting, so a few are in use at once.
const maxMemoCounts = 32

// timedCounts returns the counts kept for key, computed from the commits gen,
// that hold at the clock reading now.
func (m *readMemo) timedCounts(gen uint64, key timedCountsKey, now int64) (timedCounts, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gen != gen {
		return timedCounts{}, false
	}
	c, ok := m.counts[key]
	if !ok || now < c.from || now >= c.until {
		return timedCounts{}, false
	}
	m.reused++
	return c, true
}

// keepTimedCounts keeps c for key, computed from the commits gen. Entries of
// older commits go; those of newer ones stay (a reader of an older snapshot
// may finish last).
func (m *readMemo) keepTimedCounts(gen uint64, key timedCountsKey, c timedCounts) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case gen < m.gen:
		return
	case gen > m.gen || m.counts == nil || len(m.counts) >= maxMemoCounts:
		m.gen, m.counts = gen, make(map[timedCountsKey]timedCounts, 4)
	}
	m.counts[key] = c
}

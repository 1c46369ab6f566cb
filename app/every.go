package app

import (
	"context"
	"time"
)

// every runs do after first, and then every interval, until ctx ends. The
// background passes (pruning, reminders, the reports' days) share it.
func every(ctx context.Context, first, interval time.Duration, do func()) {
	if first > 0 && !sleep(ctx, first) {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		do()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sleep waits d, or until ctx ends; it reports whether the wait ran its course.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

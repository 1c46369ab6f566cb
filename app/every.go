package app

import (
	"context"
	"time"
)

// every runs do after first, and then every interval, until ctx ends. The
// background passes (pruning, reminders, the reports' days) share it.
func every(ctx context.Context, first, interval time.Duration, do func()) {
	if first > 0 {
		t := time.NewTimer(first)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
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

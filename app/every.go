package app

import (
	"context"
	"time"

	"sessiondesk/clock"
)

// every runs do after first, and then every interval, until ctx ends. The
// background passes (pruning, reminders, the reports' days) share it.
func every(ctx context.Context, first, interval time.Duration, do func()) {
	if first > 0 && !clock.Sleep(ctx, first) {
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

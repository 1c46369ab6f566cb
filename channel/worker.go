package channel

import (
	"context"
	"time"
)

// idlePoll bounds how long a worker sleeps with nothing due: a safety net in
// case a wake-up is ever lost.
const idlePoll = 5 * time.Second

// runWorker calls pass at once, then whenever wake fires or the time pass
// returned falls due (zero: nothing is due), until ctx ends.
func runWorker(ctx context.Context, wake <-chan struct{}, now func() time.Time, pass func(context.Context) time.Time) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-timer.C:
		}
		wait := idlePoll
		if next := pass(ctx); !next.IsZero() {
			wait = min(max(next.Sub(now()), 0), idlePoll)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

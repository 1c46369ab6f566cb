package app

import (
	"context"
	"time"

	"sessiondesk/store"
)

// keepReportDaysEvery is how often the facts of the days that are over are
// kept for the reports (store.BuildReportDays): a day is over about a day
// after it ends, and until it is kept a report reads its sessions instead.
const keepReportDaysEvery = 10 * time.Minute

// keepReportDaysAfter is how long after start the first pass waits: the
// start-up, and the pages every agent opens then, go first.
const keepReportDaysAfter = time.Minute

// keepReportDays keeps the reports' facts of every day that is over, a
// minute after start and then every keepReportDaysEvery, until ctx ends. Each
// pass keeps at most a report's longest range of days, one short transaction
// each, so a first start on a large database catches up over a few passes
// without holding the writer. A failed pass is logged and tried again at the
// next tick: a report is only slower meanwhile, never different.
func (a *App) keepReportDays(ctx context.Context) {
	every(ctx, keepReportDaysAfter, keepReportDaysEvery, func() {
		n, err := a.Store.BuildReportDays(ctx, store.MaxReportDays)
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Error("keeping the reports' days", "err", err)
		case n > 0:
			a.log.Info("kept the reports' days", "days", n)
		}
	})
}

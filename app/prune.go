package app

import (
	"context"
	"time"

	"sessiondesk/store"
)

// pruneEvery is how often old live events are deleted: often enough that each
// run deletes one hour's worth, in a few short transactions.
const pruneEvery = time.Hour

// pruneEvents deletes the events older than the retention at start and then
// every hour, until ctx ends. A failed run is logged and tried again at the
// next tick: nothing a user sees depends on it.
func (a *App) pruneEvents(ctx context.Context) {
	every(ctx, 0, pruneEvery, func() {
		n, err := a.Store.PruneEvents(ctx, a.Store.Now().Add(-a.cfg.EventRetention), store.PruneBatch)
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Error("pruning old events", "err", err)
		case n > 0:
			a.log.Info("pruned old events", "deleted", n, "retention", a.cfg.EventRetention)
		}
	})
}

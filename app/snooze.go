package app

import (
	"context"
	"time"

	"sessiondesk/clock"
)

// snoozeEvery is the longest the snooze waker sleeps: a conversation snoozed
// while it sleeps reopens at most this late.
const snoozeEvery = 30 * time.Second

// wakeSnoozed reopens snoozed conversations when their time comes, until ctx
// ends: it sleeps until the next one is due, or every at most (the clock may
// be a test's, and a new snooze may be due sooner). The store appends the
// events, so every open page sees the conversation reopen.
func (a *App) wakeSnoozed(ctx context.Context, every time.Duration) {
	for {
		n, next, err := a.Store.WakeSnoozed(ctx)
		wait := every
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Error("reopening snoozed conversations", "err", err)
		case err == nil:
			if n > 0 {
				a.log.Info("reopened snoozed conversations", "count", n)
			}
			if !next.IsZero() {
				// A floor, so that a time just due (or a clock that went back)
				// never makes this spin.
				wait = min(wait, max(next.Sub(a.Store.Now()), 50*time.Millisecond))
			}
		}
		if !clock.Sleep(ctx, wait) {
			return
		}
	}
}

package app

import (
	"context"
	"time"
)

// defaultRemindEvery is how often the sessions about to close unanswered are
// looked for: a reminder comes at most this late (of the 15 minutes given).
const defaultRemindEvery = 30 * time.Second

// remindSessions reminds agents of the sessions of their conversations that
// are about to close with the client's last message unanswered, until ctx
// ends. The store marks each session reminded as it hands it out, so a
// session is reminded once, across restarts too; an agent with no page open
// at that moment misses it (it is a nudge, the views still show the session).
func (a *App) remindSessions(ctx context.Context, interval time.Duration) {
	if a.cfg.NotifyBefore <= 0 {
		return
	}
	every(ctx, 0, interval, func() { a.remindOnce(ctx) })
}

// remindOnce hands out the reminders due now; it returns how many.
func (a *App) remindOnce(ctx context.Context) int {
	due, err := a.Store.TakeReminders(ctx, a.cfg.NotifyBefore)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Error("session reminders", "err", err)
		}
		return 0
	}
	for _, r := range due {
		pages, err := a.handlers.Remind(ctx, r)
		if err != nil {
			a.log.Error("session reminder", "session", r.SessionID, "err", err)
			continue
		}
		a.log.Debug("session reminder", "session", r.SessionID, "agent", r.AgentID, "pages", pages)
	}
	return len(due)
}

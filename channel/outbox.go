package channel

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"sessiondesk/store"
)

// OutboxOptions tune the outbox; zero values take the defaults.
type OutboxOptions struct {
	// Backoff is the wait after the first failed try; it doubles with every
	// further failure (with jitter) up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// GiveUpAfter is how long after acceptance a message that could not be
	// handed to the provider fails visibly instead of being retried again.
	GiveUpAfter time.Duration
	// Workers is how many clients' messages are sent at once. One client's
	// messages always go one at a time, in order.
	Workers int
	// Batch is how many queued messages one pass reads.
	Batch int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MediaURL gives the public URL the provider fetches an attachment from,
	// by its token.
	MediaURL func(token string) string
}

func (o *OutboxOptions) defaults() {
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = time.Hour
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Outbox sends queued business messages through a Sender.
type Outbox struct {
	store  *store.Store
	sender Sender
	log    *slog.Logger
	opts   OutboxOptions
}

// NewOutbox returns an outbox that sends the store's queue through sender.
func NewOutbox(st *store.Store, sender Sender, log *slog.Logger, opts OutboxOptions) *Outbox {
	opts.defaults()
	return &Outbox{store: st, sender: sender, log: log, opts: opts}
}

// Run sends what is queued, then again whenever wake fires (the live broker's
// subscription: every committed write) or a retry falls due, until ctx ends.
// A send in flight when ctx ends is finished first, so its outcome is recorded.
func (o *Outbox) Run(ctx context.Context, wake <-chan struct{}) error {
	runWorker(ctx, wake, o.opts.Now, func(ctx context.Context) time.Time {
		next, err := o.Pass(ctx)
		if err != nil && ctx.Err() == nil {
			o.log.Error("outbox pass failed", "err", err)
			next = o.opts.Now().Add(o.opts.Backoff)
		}
		return next
	})
	return nil
}

// Pass sends, for every client with queued messages, the oldest one if it is
// due, several clients at once. It returns when the next pass is needed: now
// when something was sent (the client's next message may be waiting), or the
// earliest retry; zero when nothing is queued.
func (o *Outbox) Pass(ctx context.Context) (next time.Time, err error) {
	queued, err := o.store.Queued(ctx, o.opts.Batch)
	if err != nil {
		return time.Time{}, fmt.Errorf("outbox: %w", err)
	}
	now := o.opts.Now()
	seen := make(map[int64]bool)
	var due []store.Outgoing
	for _, msg := range queued {
		if seen[msg.ConversationID] {
			continue // a later message of a client waits for the earlier one
		}
		seen[msg.ConversationID] = true
		if msg.NextAttemptAt.After(now) {
			if next.IsZero() || msg.NextAttemptAt.Before(next) {
				next = msg.NextAttemptAt
			}
			continue
		}
		due = append(due, msg)
	}
	if len(due) == 0 {
		if len(queued) == o.opts.Batch && next.IsZero() {
			next = now // the batch was full of held messages: look again
		}
		return next, nil
	}

	// Workers take the due heads; each finishes its send even when ctx ends,
	// so that a message the provider accepted is recorded as sent.
	work := make(chan store.Outgoing)
	var wg sync.WaitGroup
	for range min(o.opts.Workers, len(due)) {
		wg.Go(func() {
			for msg := range work {
				o.sendOne(context.WithoutCancel(ctx), msg, now)
			}
		})
	}
	for _, msg := range due {
		if ctx.Err() != nil {
			break
		}
		work <- msg
	}
	close(work)
	wg.Wait()
	return now, nil
}

// sendOne hands one message to the provider and records the outcome.
func (o *Outbox) sendOne(ctx context.Context, msg store.Outgoing, now time.Time) {
	log := o.log.With("message", msg.ID, "conversation", msg.ConversationID)
	if now.Sub(msg.CreatedAt) >= o.opts.GiveUpAfter {
		reason := fmt.Sprintf("Not sent: the provider could not be reached for %s", o.opts.GiveUpAfter)
		if msg.LastError != "" {
			reason += " (last error: " + msg.LastError + ")"
		}
		log.Warn("giving up on message", "attempts", msg.Attempts, "reason", reason)
		// It never reached the provider, so no session was billed for it: release it (S6).
		if err := o.store.RejectMessage(ctx, store.MessageRef{ID: msg.ID}, reason); err != nil {
			log.Error("record give-up", "err", err)
		}
		return
	}
	if a := msg.Attachment; a != nil && o.opts.MediaURL != nil {
		msg.MediaURL, msg.FileName = o.opts.MediaURL(a.Token), a.Name
	}
	providerID, err := o.sender.Send(ctx, msg)
	if rej, ok := IsRejected(err); ok {
		log.Info("provider rejected message", "reason", rej.Reason)
		if err := o.store.RejectMessage(ctx, store.MessageRef{ID: msg.ID}, rej.Reason); err != nil {
			log.Error("record rejection", "err", err)
		}
		return
	}
	if err != nil {
		retryAt := o.opts.Now().Add(o.backoff(msg.Attempts))
		log.Warn("send failed, will retry", "attempt", msg.Attempts+1, "retry_at", retryAt, "err", err)
		if err := o.store.SendFailed(ctx, msg.ID, err.Error(), retryAt); err != nil {
			log.Error("record failed send", "err", err)
		}
		return
	}
	_, err = o.store.ApplyStatus(ctx, store.StatusUpdate{
		Ref: store.MessageRef{ID: msg.ID}, Status: store.StatusSent, ProviderID: providerID,
	})
	if err != nil {
		log.Error("record message as sent", "err", err)
	}
}

// backoff is the wait after the given number of earlier failures: exponential,
// capped, with jitter so clients queued behind one outage do not retry in step.
func (o *Outbox) backoff(failures int) time.Duration {
	d := o.opts.Backoff << min(failures, 20)
	if d <= 0 || d > o.opts.MaxBackoff {
		d = o.opts.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

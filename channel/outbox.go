package channel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"sessiondesk/metrics"
	"sessiondesk/store"
)

// OutboxOptions tune the outbox; zero values take the defaults.
type OutboxOptions struct {
	// Backoff is the wait after the first failed try; it doubles with every
	// further failure (with jitter) up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// GiveUpAfter is how long after acceptance (or an agent's "Send again") a
	// message that could not be handed to the provider fails visibly instead
	// of being retried again.
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
	// CheckAfter is the wait between an uncertain try and the first lookup at
	// the provider; it doubles with every further lookup, up to 5 minutes.
	CheckAfter time.Duration
	// MaxChecks bounds the lookups of an unconfirmed message; after the last
	// one that could not tell, it waits for an agent.
	MaxChecks int
	// Settle is how long after an uncertain try the provider's "I do not have
	// it" is believed (a message it took may take a moment to be listed). Only
	// then is the message sent again.
	Settle time.Duration
	// Metrics counts the sends, their latency and the statuses they lead to;
	// nil counts nothing.
	Metrics *metrics.Metrics
}

// maxCheckInterval caps the wait between two lookups of one message.
const maxCheckInterval = 5 * time.Minute

// recordTries is how often the outbox tries to record a successful send
// before it leaves the try open (to be settled by the next pass or a lookup).
const recordTries = 3

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
	if o.CheckAfter <= 0 {
		o.CheckAfter = 15 * time.Second
	}
	if o.MaxChecks <= 0 {
		o.MaxChecks = 6
	}
	if o.Settle <= 0 {
		o.Settle = time.Minute
	}
}

// Outbox sends queued business messages through a Sender.
//
// A message goes out again only when its previous try is known to have failed
// (an error before the request was written, a refusal that says "not now") or
// a lookup at the provider shows it does not have it. After an uncertain try
// (see UncertainError), or one whose outcome was not recorded, it is
// unconfirmed: looked up with the sender's Checker, and left to an agent when
// the lookups cannot tell.
type Outbox struct {
	store   *store.Store
	sender  Sender
	checker Checker // nil: the sender cannot look messages up
	log     *slog.Logger
	opts    OutboxOptions

	// unrecorded holds the provider's ids of sends that succeeded but could
	// not be recorded, by message id, so the next pass records them instead
	// of looking them up. Lost on restart: the open try then leads to a lookup.
	mu         sync.Mutex
	unrecorded map[int64]string
}

// NewOutbox returns an outbox that sends the store's queue through sender. When
// sender also implements Checker, uncertain tries are looked up with it.
func NewOutbox(st *store.Store, sender Sender, log *slog.Logger, opts OutboxOptions) *Outbox {
	opts.defaults()
	checker, _ := sender.(Checker)
	return &Outbox{store: st, sender: sender, checker: checker, log: log, opts: opts, unrecorded: make(map[int64]string)}
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

// sendOne hands one message to the provider and records the outcome, or
// settles an earlier try whose outcome is unknown.
func (o *Outbox) sendOne(ctx context.Context, msg store.Outgoing, now time.Time) {
	log := o.log.With("message", msg.ID, "conversation", msg.ConversationID)
	if a := msg.Attachment; a != nil && o.opts.MediaURL != nil {
		msg.MediaURL, msg.FileName = o.opts.MediaURL(a.Token), a.Name
	}
	if msg.Status == store.StatusUnconfirmed || !msg.TriedAt.IsZero() {
		o.settle(ctx, log, msg, now)
		return
	}
	// The give-up time runs from when the message was queued: its acceptance,
	// or an agent's "Send again" of an unconfirmed one (status_at).
	queuedAt := msg.CreatedAt
	if msg.StatusAt.After(queuedAt) {
		queuedAt = msg.StatusAt
	}
	if now.Sub(queuedAt) >= o.opts.GiveUpAfter {
		reason := fmt.Sprintf("Not sent: the provider could not be reached for %s", o.opts.GiveUpAfter)
		if msg.LastError != "" {
			reason += " (last error: " + msg.LastError + ")"
		}
		log.Warn("giving up on message", "attempts", msg.Attempts, "reason", reason)
		// Every try is known to have failed, so no session was billed for it: release it (S6).
		if err := o.store.RejectMessage(ctx, store.MessageRef{ID: msg.ID}, reason); err != nil {
			log.Error("record give-up", "err", err)
		} else {
			o.opts.Metrics.MessageOut(store.StatusFailed)
		}
		return
	}
	// The open try is recorded before the request goes out: should the outcome
	// be lost, the next pass looks the message up instead of sending it again.
	if err := o.store.BeginTry(ctx, msg.ID); err != nil {
		log.Error("begin try; not sent", "err", err)
		return
	}
	// The latency is the wall clock's, whatever clock the rules run on.
	start := time.Now()
	providerID, err := o.sender.Send(ctx, msg)
	took := time.Since(start)
	if rej, ok := IsRejected(err); ok {
		o.opts.Metrics.SendDone(metrics.SendRejected, took)
		log.Info("provider rejected message", "reason", rej.Reason)
		if err := o.store.RejectMessage(ctx, store.MessageRef{ID: msg.ID}, rej.Reason); err != nil {
			log.Error("record rejection", "err", err)
		} else {
			o.opts.Metrics.MessageOut(store.StatusFailed)
		}
		return
	}
	if IsUncertain(err) {
		o.opts.Metrics.SendDone(metrics.SendUncertain, took)
		o.uncertain(ctx, log, msg, "Sent, but Routee's answer was lost: "+err.Error(), now)
		return
	}
	if err != nil {
		o.opts.Metrics.SendDone(metrics.SendError, took)
		retryAt := o.opts.Now().Add(o.backoff(msg.Attempts))
		log.Warn("send failed, will retry", "attempt", msg.Attempts+1, "retry_at", retryAt, "err", err)
		if err := o.store.SendFailed(ctx, msg.ID, err.Error(), retryAt); err != nil {
			log.Error("record failed send", "err", err)
		}
		return
	}
	o.opts.Metrics.SendDone(metrics.SendOK, took)
	o.recordSent(ctx, log, msg.ID, providerID)
}

// recordSent records a send the provider accepted. When that fails even after
// a few tries, the id is kept in memory and the try stays open: the next pass
// records it, or, after a restart, finds it by a lookup. It is never resent.
func (o *Outbox) recordSent(ctx context.Context, log *slog.Logger, id int64, providerID string) bool {
	var (
		err     error
		changed bool
	)
	for try := range recordTries {
		if try > 0 {
			time.Sleep(time.Duration(try) * 100 * time.Millisecond) // a busy database may be free again
		}
		changed, err = o.store.ApplyStatus(ctx, store.StatusUpdate{
			Ref: store.MessageRef{ID: id}, Status: store.StatusSent, ProviderID: providerID,
		})
		if err == nil || errors.Is(err, store.ErrNotFound) {
			break
		}
	}
	if err == nil && changed {
		o.opts.Metrics.MessageOut(store.StatusSent)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		log.Error("record message as sent; it will not be sent again", "tracking_id", providerID, "err", err)
		o.unrecorded[id] = providerID
		return false
	}
	if err != nil {
		log.Warn("record message as sent", "tracking_id", providerID, "err", err)
	}
	delete(o.unrecorded, id)
	return true
}

// uncertain records a try that may have reached the provider: unconfirmed,
// to be looked up after CheckAfter, or left to an agent when the sender
// cannot look messages up.
func (o *Outbox) uncertain(ctx context.Context, log *slog.Logger, msg store.Outgoing, reason string, now time.Time) {
	var checkAt time.Time
	if o.checker != nil {
		checkAt = now.Add(o.opts.CheckAfter)
	}
	log.Warn("message unconfirmed: the provider may have it", "reason", reason, "check_at", checkAt)
	if err := o.store.MarkUnconfirmed(ctx, msg.ID, reason, checkAt); err != nil {
		// The try stays open: the next pass settles it.
		log.Error("record unconfirmed message", "err", err)
	} else {
		o.opts.Metrics.MessageOut(store.StatusUnconfirmed)
	}
}

// settle finds out what became of an earlier try: one the provider accepted
// but we could not record, one whose outcome was lost (queued with an open
// try), or an unconfirmed one.
func (o *Outbox) settle(ctx context.Context, log *slog.Logger, msg store.Outgoing, now time.Time) {
	o.mu.Lock()
	known, ok := o.unrecorded[msg.ID]
	o.mu.Unlock()
	if ok && o.recordSent(ctx, log, msg.ID, known) {
		return
	}
	if o.checker == nil {
		if msg.Status == store.StatusQueued {
			o.uncertain(ctx, log, msg, "A try to send it was interrupted; whether Routee has it is unknown", now)
		}
		return
	}
	triedAt := msg.TriedAt
	if triedAt.IsZero() {
		triedAt = msg.CreatedAt
	}
	found, candidates, err := o.checker.Check(ctx, msg, triedAt, known)
	if found == Found {
		// A message matched by its content may be another of ours, already recorded.
		if taken, kerr := o.store.KnownProviderIDs(ctx, candidates); kerr != nil {
			found, err = Unknown, kerr
		} else if candidates = slices.DeleteFunc(candidates, func(id string) bool { return taken[id] }); len(candidates) == 0 {
			found = Absent
		}
	}
	switch {
	case found == Found:
		log.Info("lookup: the provider has the message", "tracking_id", candidates[0])
		o.recordSent(ctx, log, msg.ID, candidates[0])
		return
	case found == Absent && now.Sub(triedAt) >= o.opts.Settle:
		log.Info("lookup: the provider does not have the message; sending it again")
		if err := o.store.NotAtProvider(ctx, msg.ID, "Routee did not take the earlier try"); err != nil {
			log.Error("requeue message", "err", err)
		}
		return
	}
	reason := "Routee's answer to the send was lost and it does not list the message yet"
	if found == Unknown {
		reason = "Routee's answer to the send was lost, and looking it up failed"
		if err != nil {
			reason += ": " + err.Error()
		}
	}
	if msg.Status == store.StatusQueued {
		o.uncertain(ctx, log, msg, reason, now)
		return
	}
	var next time.Time
	if msg.Checks+1 < o.opts.MaxChecks {
		next = now.Add(min(o.opts.CheckAfter<<min(msg.Checks+1, 20), maxCheckInterval))
	} else {
		reason = "Could not confirm with Routee whether it arrived: " + reason
	}
	log.Warn("lookup could not tell whether the provider has the message", "check", msg.Checks+1, "next", next, "err", err)
	if err := o.store.CheckUnknown(ctx, msg.ID, reason, next); err != nil {
		log.Error("record lookup", "err", err)
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

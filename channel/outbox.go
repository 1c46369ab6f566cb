package channel

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"sessiondesk/store"
)

// Outbox sends queued business messages through a Sender.
type Outbox struct {
	store  *store.Store
	sender Sender
	log    *slog.Logger
	// Retry is how long to wait before trying again after a failed send.
	Retry time.Duration
	// Batch is how many queued messages one pass takes.
	Batch int
}

// NewOutbox returns an outbox that sends the store's queue through sender.
func NewOutbox(st *store.Store, sender Sender, log *slog.Logger) *Outbox {
	return &Outbox{store: st, sender: sender, log: log, Retry: 2 * time.Second, Batch: 100}
}

// Run sends what is queued, then again whenever wake fires (the live broker's
// subscription: every committed write) or Retry passes, until ctx ends.
func (o *Outbox) Run(ctx context.Context, wake <-chan struct{}) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-timer.C:
		}
		more, err := o.Pass(ctx)
		if err != nil && ctx.Err() == nil {
			o.log.Error("outbox pass failed", "err", err)
		}
		next := o.Retry
		if more {
			next = 0
		}
		timer.Reset(next)
	}
}

// Pass sends one batch of queued messages. A client whose message fails to go
// out is skipped for the rest of the pass, so its later messages never overtake
// it. more reports that the batch was full and more may be waiting.
func (o *Outbox) Pass(ctx context.Context) (more bool, err error) {
	queued, err := o.store.Queued(ctx, o.Batch)
	if err != nil {
		return false, fmt.Errorf("outbox: %w", err)
	}
	held := make(map[int64]bool) // conversations with a message that did not go
	sentAny := false
	for _, msg := range queued {
		if ctx.Err() != nil {
			return false, nil
		}
		if held[msg.ConversationID] {
			continue
		}
		if err := o.sendOne(ctx, msg); err != nil {
			held[msg.ConversationID] = true
			o.log.Warn("send failed, will retry", "message", msg.ID, "conversation", msg.ConversationID, "err", err)
			continue
		}
		sentAny = true
	}
	return sentAny && len(queued) == o.Batch, nil
}

func (o *Outbox) sendOne(ctx context.Context, msg store.Outgoing) error {
	providerID, err := o.sender.Send(ctx, msg)
	if rej, ok := IsRejected(err); ok {
		o.log.Info("provider rejected message", "message", msg.ID, "reason", rej.Reason)
		if err := o.store.RejectMessage(ctx, store.MessageRef{ID: msg.ID}, rej.Reason); err != nil {
			return fmt.Errorf("record rejection of message %d: %w", msg.ID, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	_, err = o.store.ApplyStatus(ctx, store.StatusUpdate{
		Ref: store.MessageRef{ID: msg.ID}, Status: store.StatusSent, ProviderID: providerID,
	})
	if err != nil {
		return fmt.Errorf("record message %d as sent: %w", msg.ID, err)
	}
	return nil
}

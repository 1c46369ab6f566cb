// Package channel delivers business messages to clients through a provider.
//
// A provider implements Sender; the Outbox takes accepted messages from the
// store's queue and hands them to it, one client's messages in the order they
// were accepted. The queue is the messages table itself (status queued, no
// provider id yet), so a message accepted before a crash is still sent after
// the restart.
package channel

import (
	"context"
	"errors"

	"sessiondesk/store"
)

// Sender sends one business message through a provider.
type Sender interface {
	// Send hands the message to the provider and returns the provider's id for
	// it. A *RejectedError means the provider refused it for good; any other
	// error is worth a retry.
	Send(ctx context.Context, msg store.Outgoing) (providerID string, err error)
}

// RejectedError is a synchronous, final refusal by the provider (a validation
// error, a number that is not a Viber user): the message fails and its slot is
// released (S6).
type RejectedError struct {
	Reason string
}

func (e *RejectedError) Error() string { return "rejected by the provider: " + e.Reason }

// IsRejected reports whether err is a final refusal by the provider.
func IsRejected(err error) (*RejectedError, bool) {
	var r *RejectedError
	ok := errors.As(err, &r)
	return r, ok
}

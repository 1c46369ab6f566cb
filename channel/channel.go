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
	"time"

	"sessiondesk/store"
)

// Sender sends one business message through a provider.
type Sender interface {
	// Send hands the message to the provider and returns the provider's id for
	// it. A *RejectedError means the provider refused it for good; an
	// *UncertainError that it may have taken it; any other error that it
	// certainly did not, so it is worth a retry.
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

// UncertainError is a failed try after which the provider may have the message
// anyway: the request was written and then the answer did not come (a timeout,
// a connection reset) or was a server error. Sending again could deliver it
// twice, so the outbox looks it up first (Checker) and otherwise leaves it
// unconfirmed for an agent.
type UncertainError struct {
	Err error
}

func (e *UncertainError) Error() string {
	return "the provider may have the message: " + e.Err.Error()
}

// Unwrap returns the failure itself.
func (e *UncertainError) Unwrap() error { return e.Err }

// IsUncertain reports whether err leaves open whether the provider took the message.
func IsUncertain(err error) bool {
	var u *UncertainError
	return errors.As(err, &u)
}

// Lookup is what a provider knows of a message that an uncertain try may have
// handed over.
type Lookup int

// The answers of a Checker.
const (
	// Unknown: the lookup could not tell (it failed, or is not possible).
	Unknown Lookup = iota
	// Found: the provider has it; Checker returns the ids it may have.
	Found
	// Absent: the provider answered and does not have it.
	Absent
)

// Checker looks a message up at the provider after an uncertain try. A Sender
// that implements it lets the outbox settle most uncertain tries by itself.
type Checker interface {
	// Check reports whether the provider has msg, handed over by a try that
	// began at triedAt, and if so the provider's ids of the messages that may
	// be it, best first (the outbox takes the first one not recorded for
	// another message). providerID, when known (the send answered but
	// recording it failed), is the id to check first. An error means Unknown.
	Check(ctx context.Context, msg store.Outgoing, triedAt time.Time, providerID string) (Lookup, []string, error)
}

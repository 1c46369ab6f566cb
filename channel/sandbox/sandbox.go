// Package sandbox is the built-in channel used when no provider is configured:
// a simulated Viber phone in the browser plays the clients.
//
// Business messages go through the same queued → sent → delivered → seen path
// as with a real provider: the outbox sends them here (sent); the sandbox phone
// page receives them (delivered) and shows them (seen).
package sandbox

import (
	"context"
	"strconv"

	"sessiondesk/channel"
	"sessiondesk/store"
)

// Sender accepts every well-formed business message for the sandbox phone.
type Sender struct{}

// Send implements channel.Sender. The phone fetches messages from the store, so
// sending is only handing out an id.
func (Sender) Send(_ context.Context, msg store.Outgoing) (string, error) {
	if msg.Phone == "" {
		return "", &channel.RejectedError{Reason: "no phone number"}
	}
	return "sandbox-" + strconv.FormatInt(msg.ID, 10), nil
}

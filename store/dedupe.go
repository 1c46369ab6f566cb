package store

import (
	"context"
	"errors"
)

// findDelivery finds the message stored for a delivery under its key or any
// of its other keys; found is false when there is none.
func findDelivery(ctx context.Context, q queryer, in ClientMessage) (m Message, found bool, err error) {
	if in.DedupeKey == "" {
		return Message{}, false, nil
	}
	for _, key := range append([]string{in.DedupeKey}, in.DedupeAlso...) {
		m, err := messageByDedupeKey(ctx, q, key)
		if err == nil {
			return m, true, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Message{}, false, err
		}
	}
	return Message{}, false, nil
}

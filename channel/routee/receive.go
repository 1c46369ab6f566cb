package routee

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"sessiondesk/phone"
	"sessiondesk/store"
)

// Webhooks keeps what Routee posts to the two webhooks: the HTTP handler reads
// the body, calls Inbound or Status, and answers.
type Webhooks struct {
	Store *store.Store
}

// PayloadError is a webhook body that cannot be kept as it is: answered 400,
// since posting it again would not help. Message is safe to show.
type PayloadError struct {
	Message string
}

func (e *PayloadError) Error() string { return e.Message }

// Inbound stores a client's message from the JSON Routee posted to the
// inboundUrl. A redelivery is stored once (see Inbound.DedupeKey); the
// receipt time is the store's clock. A body that cannot be kept is a
// *PayloadError.
func (w Webhooks) Inbound(ctx context.Context, body []byte) (store.Received, error) {
	in, err := ParseInbound(body, w.Store.Now())
	if err != nil {
		return store.Received{}, &PayloadError{Message: err.Error()}
	}
	num, err := phone.Parse(in.From)
	if err != nil {
		return store.Received{}, &PayloadError{Message: "from: " + err.Error()}
	}
	rec, err := w.Store.ReceiveClientMessage(ctx, store.ClientMessage{
		Phone: num.E164, Country: num.Region, Kind: in.Kind(), Text: in.Text,
		MediaURL: in.MediaURL, FileName: in.FileName, SentAt: in.SentAt,
		DedupeKey: in.DedupeKey, DedupeAlso: in.DedupeAlso, ReplyToProviderID: in.ReferenceTrackingID,
	})
	var invalid *store.InvalidError
	if errors.As(err, &invalid) {
		return store.Received{}, &PayloadError{Message: invalid.Message}
	}
	return rec, err
}

// StatusResult is what a status report changed.
type StatusResult struct {
	Report StatusReport
	// Known is false for a report about a message we do not know (logged and
	// answered 200: retrying would not help).
	Known   bool
	Changed bool // the message's status moved forward, or its price was recorded
}

// Status applies a delivery report Routee posted to a message's callbackUrl.
// It is matched by Routee's tracking id; when that is not recorded yet (the
// report can overtake our own record of the send, or the send's answer was
// lost and the message is unconfirmed), by the label, which carries our
// message id, and the tracking id is recorded with it. Statuses never move
// backwards, so repeated and out-of-order reports are harmless. A body that
// cannot be read is a *PayloadError.
func (w Webhooks) Status(ctx context.Context, body []byte) (StatusResult, error) {
	rep, err := ParseStatus(body)
	if err != nil {
		return StatusResult{}, &PayloadError{Message: err.Error()}
	}
	res := StatusResult{Report: rep}
	update := store.StatusUpdate{Status: rep.Status, Reason: rep.Reason, At: rep.At, Price: rep.Price}
	err = store.ErrNotFound
	if rep.TrackingID != "" {
		update.Ref = store.MessageRef{ProviderID: rep.TrackingID}
		res.Changed, err = w.Store.ApplyStatus(ctx, update)
	}
	if id, perr := strconv.ParseInt(rep.Label, 10, 64); errors.Is(err, store.ErrNotFound) && perr == nil && id > 0 {
		update.Ref, update.ProviderID = store.MessageRef{ID: id}, rep.TrackingID
		res.Changed, err = w.Store.ApplyStatus(ctx, update)
	}
	if errors.Is(err, store.ErrNotFound) {
		return res, nil
	}
	if err != nil {
		return StatusResult{}, fmt.Errorf("routee status %s for %s: %w", rep.Status, rep.ref(), err)
	}
	res.Known = true
	if err := w.applyPaid(ctx, update.Ref, body, rep); err != nil {
		return StatusResult{}, err
	}
	return res, nil
}

// applyPaid records what a report says beyond the status (paid.go): a paid
// message's final channel and price, and the flags its reasons set on the
// contact (for any business message).
func (w Webhooks) applyPaid(ctx context.Context, ref store.MessageRef, body []byte, rep StatusReport) error {
	d, err := ParsePaid(body)
	if err != nil {
		return &PayloadError{Message: err.Error()}
	}
	if _, err := w.Store.ApplyPaidReport(ctx, store.PaidReport{Ref: ref, FinalChannel: d.FinalChannel, Price: d.Price}); err != nil {
		return fmt.Errorf("routee report %s: price: %w", rep.ref(), err)
	}
	if _, err := w.Store.FlagFromReport(ctx, ref, append(d.Reasons, rep.Reason)...); err != nil {
		return fmt.Errorf("routee report %s: contact flags: %w", rep.ref(), err)
	}
	return nil
}

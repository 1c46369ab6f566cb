package routee

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"sessiondesk/store"
)

// Reconciler compares what the inbox holds with what Routee knows ("Check
// with Routee"): for each business message without a final status it asks
// the tracking lookup, and applies a status whose callback never arrived;
// it also lists the client's sessions at Routee, to show a session Routee
// counts differently. Every lookup waits for the limiter, so neither an agent
// pressing the button nor the background job can flood Routee.
type Reconciler struct {
	Client  *Client
	Store   *store.Store
	Limiter *rate.Limiter // nil: no limit
	Log     *slog.Logger
}

// maxReconcile bounds the messages one "Check with Routee" (or one round
// of the job) asks about, and checkTimeout how long an agent's check may
// take: the limiter spaces the lookups out.
const (
	maxReconcile = 20
	checkTimeout = 30 * time.Second
)

// Change is one difference found and applied.
type Change struct {
	MessageID  int64    `json:"message_id"`
	TrackingID string   `json:"tracking_id"`
	From       string   `json:"from"`
	To         string   `json:"to"`
	Reason     string   `json:"reason,omitempty"`
	Price      float64  `json:"price,omitempty"`
	Flags      []string `json:"flags,omitempty"`
}

// Reconciliation is what a check found.
type Reconciliation struct {
	Checked int      `json:"checked"` // messages looked up
	Changes []Change `json:"changes"` // statuses applied
	// Missing are messages Routee does not know (404).
	Missing []int64 `json:"missing,omitempty"`
	// Skipped are paid SMS and failover messages: the Viber tracking lookup
	// does not cover them.
	Skipped []int64 `json:"skipped,omitempty"`
	// RouteeSessions is how many sessions Routee lists for the client, and
	// OurSessions how many the inbox has; UnknownAtRoutee lists tracking ids
	// of business messages Routee lists that the inbox does not hold.
	RouteeSessions  int      `json:"routee_sessions"`
	OurSessions     int      `json:"our_sessions"`
	UnknownAtRoutee []string `json:"unknown_at_routee,omitempty"`
	Errors          []string `json:"errors,omitempty"`
}

func (r *Reconciler) wait(ctx context.Context) error {
	if r.Limiter == nil {
		return nil
	}
	if err := r.Limiter.Wait(ctx); err != nil {
		return fmt.Errorf("reconcile: rate limit: %w", err)
	}
	return nil
}

// Conversation checks one conversation's unsettled business messages and
// its sessions at Routee.
func (r *Reconciler) Conversation(ctx context.Context, conversationID int64) (Reconciliation, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	var (
		todo  []store.Unsettled
		phone string
		ours  int
	)
	err := r.Store.Read(ctx, func(rd *store.Reader) error {
		cv, err := rd.Conversation(ctx, conversationID)
		if err != nil {
			return err
		}
		phone = cv.Contact.Phone
		if cv.State.Current != nil {
			ours = cv.State.Current.Number
		}
		todo, err = rd.Unsettled(ctx, conversationID, maxReconcile)
		return err
	})
	if err != nil {
		return Reconciliation{}, err
	}
	out := Reconciliation{Changes: []Change{}, OurSessions: ours}
	for _, u := range todo {
		if err := r.one(ctx, u, &out); err != nil {
			if ctx.Err() != nil {
				return out, err
			}
			out.Errors = append(out.Errors, err.Error())
		}
	}
	if err := r.wait(ctx); err != nil {
		return out, err
	}
	sessions, err := r.Client.Sessions(ctx, phone)
	if err != nil {
		out.Errors = append(out.Errors, err.Error())
		return out, nil
	}
	out.RouteeSessions = len(sessions)
	var ids []string
	for _, s := range sessions {
		ids = append(ids, s.TrackingIDs...)
	}
	if len(ids) > 0 {
		known, err := r.Store.KnownProviderIDs(ctx, ids)
		if err != nil {
			return out, err
		}
		for _, id := range ids {
			if !known[id] {
				out.UnknownAtRoutee = append(out.UnknownAtRoutee, id)
			}
		}
	}
	return out, nil
}

// one looks one message up and applies what Routee knows.
func (r *Reconciler) one(ctx context.Context, u store.Unsettled, out *Reconciliation) error {
	if u.Route == store.RouteSMS || u.Route == store.RouteFailover {
		out.Skipped = append(out.Skipped, u.ID)
		return nil
	}
	if err := r.wait(ctx); err != nil {
		return err
	}
	out.Checked++
	tr, found, err := r.Client.Track(ctx, u.ProviderID)
	if err != nil {
		return fmt.Errorf("message %d: %w", u.ID, err)
	}
	if !found {
		out.Missing = append(out.Missing, u.ID)
		return nil
	}
	ref := store.MessageRef{ProviderID: u.ProviderID}
	changed, err := r.Store.ApplyStatus(ctx, store.StatusUpdate{Ref: ref, Status: tr.Report.Status,
		Reason: tr.Report.Reason, At: tr.Report.At})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("message %d: apply %s: %w", u.ID, tr.Report.Status, err)
	}
	if _, err := r.Store.ApplyPaidReport(ctx, store.PaidReport{Ref: ref, FinalChannel: tr.Paid.FinalChannel, Price: tr.Paid.Price}); err != nil {
		return fmt.Errorf("message %d: price: %w", u.ID, err)
	}
	flags, err := r.Store.FlagFromReport(ctx, ref, append(tr.Paid.Reasons, tr.Report.Reason)...)
	if err != nil {
		return fmt.Errorf("message %d: flags: %w", u.ID, err)
	}
	if changed || len(flags) > 0 {
		c := Change{MessageID: u.ID, TrackingID: u.ProviderID, From: u.Status, To: tr.Report.Status,
			Reason: tr.Report.Reason, Flags: flags}
		if tr.Paid.Price != nil {
			c.Price = *tr.Paid.Price
		}
		out.Changes = append(out.Changes, c)
	}
	return nil
}

// Stuck checks up to limit messages that have been sent for longer than ttl
// (but less than twice the ttl and a day: Routee has settled anything older,
// or never will) without a report, oldest first; it returns how many changed.
func (r *Reconciler) Stuck(ctx context.Context, ttl time.Duration, limit int) (int, error) {
	now := r.Store.Now()
	todo, err := r.Store.StuckSent(ctx, now.Add(-2*ttl-24*time.Hour), now.Add(-ttl), limit)
	if err != nil {
		return 0, err
	}
	var out Reconciliation
	for _, u := range todo {
		if err := r.one(ctx, u, &out); err != nil {
			if ctx.Err() != nil {
				return len(out.Changes), err
			}
			r.Log.Warn("reconcile: lookup failed", "message", u.ID, "err", err)
		}
	}
	return len(out.Changes), nil
}

// Run repeats Stuck every interval until ctx ends.
func (r *Reconciler) Run(ctx context.Context, every, ttl time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := r.Stuck(ctx, ttl, maxReconcile)
		switch {
		case err != nil && ctx.Err() == nil:
			r.Log.Error("reconcile: stuck messages", "err", err)
		case n > 0:
			r.Log.Info("reconcile: applied statuses Routee knew", "changed", n)
		}
	}
}

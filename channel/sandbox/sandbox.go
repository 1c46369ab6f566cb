// Package sandbox is the built-in provider used when none is configured: a
// fake Routee (package fakeroutee) served in-process, and the actions of the
// simulated Viber phone that plays the clients.
//
// Nothing here shortcuts the real path. The outbox sends business messages with
// the real Routee client, over HTTP, to the fake; a client writing on the phone
// makes the fake post Routee's inbound JSON to the inbound webhook; the phone
// receiving and showing a message makes the fake post Delivered and Seen to
// the status webhook. So the default mode runs the same code as production.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"sessiondesk/channel/routee"
	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/store"
)

// MountPath is where the fake Routee is served on the inbox's own server.
const MountPath = "/sandbox/routee"

// SenderID is the sandbox's senderInfoTrackingId.
const SenderID = "sessiondesk-sandbox"

// Provider is the in-process fake Routee and the phone's link to it.
type Provider struct {
	fake       *fakeroutee.Server
	store      *store.Store
	log        *slog.Logger
	inboundURL string
	appID      string
	appSecret  string
}

// Config tells the sandbox where the inbox's webhooks are.
type Config struct {
	InboundURL string // the Routee inbound webhook of this inbox
	Now        func() time.Time
	// HTTPClient makes the fake's callbacks; nil means a 10 s timeout client.
	HTTPClient *http.Client
	// Prices are what the fake reports each message costs, by the client's
	// ISO country, "" for the rest (fakeroutee.Options.Prices); nil: none.
	Prices map[string]float64
}

// New returns a sandbox provider with fresh random credentials.
func New(cfg Config, st *store.Store, log *slog.Logger) (*Provider, error) {
	id, err := RandomSecret(8)
	if err != nil {
		return nil, err
	}
	secret, err := RandomSecret(24)
	if err != nil {
		return nil, err
	}
	return &Provider{
		fake: fakeroutee.New(fakeroutee.Options{AppID: id, AppSecret: secret, Now: cfg.Now, HTTPClient: cfg.HTTPClient,
			Prices: cfg.Prices}),
		store:      st,
		log:        log,
		inboundURL: cfg.InboundURL,
		appID:      id,
		appSecret:  secret,
	}, nil
}

// Handler serves the fake Routee; mount it at MountPath with the prefix stripped.
func (p *Provider) Handler() http.Handler {
	return http.StripPrefix(MountPath, p.fake.Handler())
}

// ClientConfig is the Routee client configuration that talks to this sandbox,
// served at baseURL+MountPath. The caller adds the callback URLs and the TTL.
func (p *Provider) ClientConfig(baseURL string) routee.Config {
	return routee.Config{
		AppID:     p.appID,
		AppSecret: p.appSecret,
		SenderID:  SenderID,
		APIURL:    baseURL + MountPath,
		AuthURL:   baseURL + MountPath,
	}
}

// Write is a message a client writes on the phone.
type Write struct {
	Phone   string // E.164
	Name    string
	Country string
	Text    string
	// MediaURL is where the fake tells the inbox to fetch a photo or file from;
	// FileName names a file (Routee sends none for a photo).
	MediaURL, FileName string
	// ReferenceTrackingID names the paid message this one answers, as
	// Routee's referenceTrackingId; "" for none.
	ReferenceTrackingID string
}

// ClientWrites delivers a client's message the way Routee does: the fake posts
// the inbound JSON to the inbound webhook. It returns the stored message.
func (p *Provider) ClientWrites(ctx context.Context, w Write) (store.Message, error) {
	if w.Name != "" {
		// Routee's inbound messages carry no name; the phone knows it.
		if err := p.store.SaveContact(ctx, w.Phone, w.Name, w.Country); err != nil {
			return store.Message{}, err
		}
	}
	in := fakeroutee.Inbound{From: w.Phone, To: SenderID, Text: w.Text, MediaURL: w.MediaURL, FileName: w.FileName,
		SentAt: p.store.Now(), ReferenceTrackingID: w.ReferenceTrackingID}
	payload := p.fake.InboundPayload(in)
	parsed, err := routee.ParseInbound(payload, p.store.Now()) // sentDate is set: the key does not depend on the time
	if err != nil {
		return store.Message{}, fmt.Errorf("sandbox inbound: %w", err)
	}
	if err := p.fake.SendInbound(ctx, p.inboundURL, in); err != nil {
		return store.Message{}, fmt.Errorf("sandbox inbound: %w", err)
	}
	var m store.Message
	err = p.store.Read(ctx, func(r *store.Reader) error {
		m, err = r.MessageByDedupeKey(ctx, parsed.DedupeKey)
		return err
	})
	return m, err
}

// Report tells the inbox what the phone did with a business message (status
// Delivered or Seen), through the fake's status callback. A message the fake
// does not know, sent before a restart of the process or seeded as demo
// history, is recorded directly: the fake keeps no memory across restarts.
func (p *Provider) Report(ctx context.Context, m store.Message, status string) error {
	name := map[string]string{store.StatusDelivered: "Delivered", store.StatusSeen: "Seen"}[status]
	if name == "" {
		return fmt.Errorf("sandbox: the phone cannot report %q", status)
	}
	if m.ProviderID != "" {
		err := p.fake.ReportStatus(ctx, m.ProviderID, name, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, fakeroutee.ErrUnknownTrackingID) {
			return fmt.Errorf("sandbox status callback: %w", err)
		}
	}
	p.log.Debug("sandbox: recording status directly", "message", m.ID, "status", status)
	_, err := p.store.ApplyStatus(ctx, store.StatusUpdate{Ref: store.MessageRef{ID: m.ID}, Status: status})
	return err
}

// RandomSecret returns n random bytes, hex-encoded.
func RandomSecret(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// NotViberUser makes the phone play a number without Viber (on), or with it
// again: its business messages then fail with Routee's "Not Viber User", and
// a failover goes on to SMS (see Settle).
func (p *Provider) NotViberUser(phone string, on bool) { p.fake.NotViberUser(phone, on) }

// IsNotViberUser reports whether the phone plays phone as a number without Viber.
func (p *Provider) IsNotViberUser(phone string) bool { return p.fake.IsNotViberUser(phone) }

// Settle has the fake report what becomes of a business message to a number
// without Viber: failed "Not Viber User", or a failover's SMS step delivered.
// A message the fake does not know (sent before a restart) is failed directly.
func (p *Provider) Settle(ctx context.Context, m store.Message) error {
	if m.ProviderID != "" {
		err := p.fake.Settle(ctx, m.ProviderID)
		if err == nil || !errors.Is(err, fakeroutee.ErrUnknownTrackingID) {
			return err
		}
	}
	_, err := p.store.ApplyStatus(ctx, store.StatusUpdate{Ref: store.MessageRef{ID: m.ID}, Status: store.StatusFailed,
		Reason: "Not Viber User"})
	return err
}

package routee_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"sessiondesk/channel"
	"sessiondesk/channel/routee"
	"sessiondesk/channel/routee/fakeroutee"
)

// Which failed sends leave open whether Routee took the message.
func TestSendFailuresUncertainOrNot(t *testing.T) {
	e := setup(t, func(c *routee.Config) { c.HTTPClient = &http.Client{Timeout: 300 * time.Millisecond} })
	e.send(t, text(1, "warm up the token"))
	for _, tc := range []struct {
		name      string
		arrange   func()
		uncertain bool
	}{
		{"500 before recording", func() { e.fake.FailNext(1, 500) }, true},
		{"502 before recording", func() { e.fake.FailNext(1, 502) }, true},
		{"503", func() { e.fake.FailNext(1, 503) }, false},
		{"429", func() { e.fake.FailNext(1, 429) }, false},
		{"408", func() { e.fake.FailNext(1, 408) }, false},
		{"500 after recording", func() { e.fake.AcceptThen(1, fakeroutee.ServerError, 500) }, true},
		{"hang after recording", func() { e.fake.AcceptThen(1, fakeroutee.Hang, 0) }, true},
		{"dropped after recording", func() { e.fake.AcceptThen(1, fakeroutee.Drop, 0) }, true},
		{"dropped unread", func() { e.fake.DropNext(1) }, true},
	} {
		tc.arrange()
		_, err := e.client.Send(context.Background(), text(2, "b"))
		if err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		if got := channel.IsUncertain(err); got != tc.uncertain {
			t.Errorf("%s: uncertain=%v (%v), want %v", tc.name, got, err, tc.uncertain)
		}
		if _, rejected := channel.IsRejected(err); rejected {
			t.Errorf("%s: %v is a rejection", tc.name, err)
		}
	}
	// Nothing listens: the request was never written.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := routee.New(routee.Config{AppID: appID, AppSecret: appSecret, SenderID: sender,
		APIURL: "http://" + addr, AuthURL: e.srv.URL, CallbackURL: e.cfg.CallbackURL, InboundURL: e.cfg.InboundURL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), text(3, "c")); err == nil || channel.IsUncertain(err) {
		t.Errorf("connection refused: %v, want a certain failure", err)
	}
}

// Check finds a message by tracking id, by label, or by content and time; it
// says absent when Routee lists nothing that fits, and unknown when the
// lookup fails.
func TestCheck(t *testing.T) {
	e := setup(t, nil)
	tried := e.clock.Now()
	id := e.send(t, text(7, "Your parcel is on its way"))
	ctx := context.Background()
	check := func(msgID int64, body, providerID string, triedAt time.Time) (channel.Lookup, []string, error) {
		t.Helper()
		return e.client.Check(ctx, text(msgID, body), triedAt, providerID)
	}
	if got, ids, err := check(7, "Your parcel is on its way", id, tried); got != channel.Found || len(ids) != 1 || ids[0] != id || err != nil {
		t.Errorf("by tracking id: %v %v %v", got, ids, err)
	}
	if got, ids, err := check(7, "Your parcel is on its way", "", tried); got != channel.Found || ids[0] != id || err != nil {
		t.Errorf("by content: %v %v %v", got, ids, err)
	}
	// An unknown tracking id falls back to the session lookup.
	if got, ids, err := check(7, "Your parcel is on its way", "no-such-id", tried); got != channel.Found || ids[0] != id || err != nil {
		t.Errorf("unknown tracking id: %v %v %v", got, ids, err)
	}
	if got, _, err := check(8, "Another text", "", tried); got != channel.Absent || err != nil {
		t.Errorf("another text: %v %v", got, err)
	}
	// Dated well before the try: not this try's message.
	if got, _, _ := check(7, "Your parcel is on its way", "", tried.Add(time.Hour)); got != channel.Absent {
		t.Errorf("a try an hour later: %v, want absent", got)
	}
	// With labels listed, the label decides, whatever the text.
	e.fake.ListLabels(true)
	if got, ids, _ := check(7, "edited", "", tried.Add(time.Hour)); got != channel.Found || ids[0] != id {
		t.Errorf("by label: %v %v", got, ids)
	}
	if got, _, _ := check(9, "Your parcel is on its way", "", tried); got != channel.Absent {
		t.Errorf("another label, same text: %v, want absent", got)
	}
	e.fake.FailLookups(1, http.StatusBadGateway)
	if got, _, err := check(7, "Your parcel is on its way", "", tried); got != channel.Unknown || err == nil {
		t.Errorf("failing lookup: %v %v, want unknown with an error", got, err)
	}
	// A revoked token is renewed, as for sends.
	e.fake.RevokeTokens()
	if got, _, err := check(7, "Your parcel is on its way", "", tried); got != channel.Found || err != nil {
		t.Errorf("after the token was revoked: %v %v", got, err)
	}
}

package routee_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sessiondesk/channel/routee"
	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/clock"
	"sessiondesk/session"
	"sessiondesk/store"
)

func webhookStore(t *testing.T, start time.Time) (routee.Webhooks, *clock.Manual) {
	t.Helper()
	clk := clock.NewManual(start)
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hooks.db"), store.Options{Rules: session.Defaults(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return routee.Webhooks{Store: st}, clk
}

func inbound(t *testing.T, w routee.Webhooks, body string) store.Received {
	t.Helper()
	rec, err := w.Inbound(context.Background(), []byte(body))
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return rec
}

func unanswered(t *testing.T, w routee.Webhooks, convID int64) int {
	t.Helper()
	var n int
	err := w.Store.Read(context.Background(), func(r *store.Reader) error {
		cv, err := r.Conversation(context.Background(), convID)
		n = session.StatusAt(cv.State, w.Store.Rules(), r.Now()).Unanswered
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Spec case 22: the client writes "ok" twice, a minute apart, with no
// provider timestamp: both are stored, and the second resets the unanswered
// count. A redelivery of one webhook is still stored once.
func TestRepeatedClientTextIsKept(t *testing.T) {
	w, clk := webhookStore(t, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	const ok = `{"from":"+375298603938","to":"sender-1","message":"ok","direction":"Inbound"}`
	first := inbound(t, w, ok)
	if first.Duplicate {
		t.Fatal("the first ok was taken for a duplicate")
	}
	clk.Add(5 * time.Second)
	if again := inbound(t, w, ok); !again.Duplicate || again.Message.ID != first.Message.ID {
		t.Errorf("the redelivery 5 s later: duplicate=%v id %d, want the first (%d)", again.Duplicate, again.Message.ID, first.Message.ID)
	}
	if _, err := w.Store.AcceptBusinessMessages(context.Background(), store.BusinessSend{
		ConversationID: first.Message.ConversationID, Parts: []session.Part{{Kind: session.Text, Text: "Thanks, shipping now"}},
	}); err != nil {
		t.Fatal(err)
	}
	if n := unanswered(t, w, first.Message.ConversationID); n != 1 {
		t.Fatalf("unanswered after the agent's reply: %d", n)
	}
	clk.Add(55 * time.Second) // a minute after the first ok
	second := inbound(t, w, ok)
	if second.Duplicate || second.Message.ID == first.Message.ID {
		t.Fatalf("the second ok a minute later was dropped as a duplicate of %d", first.Message.ID)
	}
	if n := unanswered(t, w, first.Message.ConversationID); n != 0 {
		t.Errorf("unanswered after the client's second ok: %d, want 0", n)
	}
	var msgs []store.Message
	_ = w.Store.Read(context.Background(), func(r *store.Reader) error {
		var err error
		msgs, err = r.Messages(context.Background(), first.Message.ConversationID, 10)
		return err
	})
	if len(msgs) != 3 {
		t.Errorf("%d messages stored, want ok, reply, ok", len(msgs))
	}
}

// A redelivery that straddles the edge of a receipt-time bucket is still
// stored once: the bucket before is checked too.
func TestRedeliveryAcrossTheBucketEdge(t *testing.T) {
	window := routee.DedupeWindow
	edge := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).Truncate(window).Add(window)
	for _, gap := range []time.Duration{time.Millisecond, window / 2, window - time.Millisecond} {
		t.Run(gap.String(), func(t *testing.T) {
			w, clk := webhookStore(t, edge.Add(-time.Millisecond))
			body := `{"from":"+375298603938","to":"s","message":"where is my parcel?"}`
			first := inbound(t, w, body)
			clk.Add(gap) // the next bucket
			if again := inbound(t, w, body); !again.Duplicate || again.Message.ID != first.Message.ID {
				t.Errorf("redelivered %s later across the edge: stored again as %d", gap, again.Message.ID)
			}
		})
	}
	// Two buckets on, it is a new message.
	w, clk := webhookStore(t, edge)
	body := `{"from":"+375298603938","to":"s","message":"ok"}`
	first := inbound(t, w, body)
	clk.Add(2 * window)
	if again := inbound(t, w, body); again.Duplicate {
		t.Errorf("the same text %s later was dropped as %d", 2*window, first.Message.ID)
	}
}

// With a usable sentDate it keys the delivery whenever it arrives; the
// reference ids tell two replies with the same text apart.
func TestDedupeWithSentDateAndReferences(t *testing.T) {
	w, clk := webhookStore(t, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	body := func(sent, ref string) string {
		return fmt.Sprintf(`{"from":"+375298603938","to":"s","message":"ok","sentDate":%q,"referenceTrackingId":%q}`, sent, ref)
	}
	a := inbound(t, w, body("2026-03-01T09:59:58.000Z", "trk-1"))
	clk.Add(10 * time.Minute)
	if again := inbound(t, w, body("2026-03-01T09:59:58.000Z", "trk-1")); !again.Duplicate {
		t.Error("a redelivery 10 min later with the same sentDate was stored again")
	}
	if b := inbound(t, w, body("2026-03-01T10:09:58.000Z", "trk-1")); b.Duplicate {
		t.Error("a new ok with a later sentDate was dropped")
	}
	if c := inbound(t, w, body("2026-03-01T09:59:58.000Z", "trk-2")); c.Duplicate || c.Message.ID == a.Message.ID {
		t.Error("an ok answering another message was dropped")
	}
}

// The README and docs/routee.md say how a delivery without a usable sentDate
// is keyed, with the figures of the code: receipt-time buckets of
// DedupeWindow, so a redelivery within one window is stored once and the same
// text two windows apart is stored twice (case 22). A reader who is told the
// key is the text alone expects a client's second "ok" to be dropped.
func TestDocsStateTheRepeatedTextRule(t *testing.T) {
	window := int(routee.DedupeWindow / time.Second)
	for _, f := range []string{"../../README.md", "../../docs/routee.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc := strings.Join(strings.Fields(string(b)), " ")
		for _, want := range []string{
			"Without a usable `sentDate` it is the receipt time in " + strconv.Itoa(window) + "-second buckets",
			"within " + strconv.Itoa(window) + " s of the first",
			"at least " + strconv.Itoa(2*window) + " s later",
		} {
			if !strings.Contains(doc, want) {
				t.Errorf("%s does not say %q", f, want)
			}
		}
	}
}

// The kind of an inbound message is decided in the channel: file when named,
// image when media only, text otherwise.
func TestInboundKind(t *testing.T) {
	w, _ := webhookStore(t, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	for body, want := range map[string]session.Kind{
		`{"from":"+375298603938","message":"hi there"}`:                                             session.Text,
		`{"from":"+375298603938","media":"https://m.example/p.jpg"}`:                                session.Image,
		`{"from":"+375298603938","media":"https://m.example/f","fileName":"invoice.pdf"}`:           session.File,
		`{"from":"+375298603938","message":"see","media":"https://m.example/f","filename":"a.pdf"}`: session.File,
	} {
		if rec := inbound(t, w, body); rec.Message.Kind != want {
			t.Errorf("%s: %s, want %s", body, rec.Message.Kind, want)
		}
	}
	for _, body := range []string{`{"from":"not a number","message":"hi"}`, `{"from":"+375298603938"}`, `[]`} {
		var bad *routee.PayloadError
		if _, err := w.Inbound(context.Background(), []byte(body)); !errorsAs(err, &bad) {
			t.Errorf("%s: %v, want a PayloadError", body, err)
		}
	}
}

// A status report whose label names an unconfirmed message settles it: Routee
// had it. The tracking id is recorded with it.
func TestStatusReportSettlesAnUnconfirmedMessage(t *testing.T) {
	e := newSendEnv(t)
	e.fake.AcceptThen(1, fakeroutee.ServerError, http.StatusInternalServerError)
	id := e.accept(t, "Your order ships today")
	e.pass(t)
	if m := e.message(t, id); m.Status != store.StatusUnconfirmed {
		t.Fatalf("%s, want unconfirmed", m.Status)
	}
	tracking := e.fake.Messages()[0].TrackingID
	payload, err := e.fake.StatusPayload(tracking, "Delivered", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := routee.Webhooks{Store: e.store}.Status(context.Background(), payload)
	if err != nil || !res.Known || !res.Changed {
		t.Fatalf("status report: %+v, %v", res, err)
	}
	if m := e.message(t, id); m.Status != store.StatusDelivered || m.ProviderID != tracking {
		t.Errorf("after Delivered: %s as %q, want delivered as %q", m.Status, m.ProviderID, tracking)
	}
	e.clock.Add(time.Hour)
	e.pass(t)
	if n := e.fake.Count(label(id)); n != 1 {
		t.Errorf("Routee got it %d times", n)
	}
}

package store

import (
	"context"
	"reflect"
	"testing"
	"time"

	"sessiondesk/session"
)

// The message ReceiveClientMessage returns is built from what it wrote, not
// read back: it must be exactly what a read returns, in every shape a client
// message takes, through the session cases a client message meets (6, 7, 20,
// 22 of the session rules).
func TestReceivedMessageIsWhatAReadReturns(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	const phone = "+375298603938"
	check := func(what string, in ClientMessage) Received {
		t.Helper()
		if in.Phone == "" {
			in.Phone = phone
		}
		rec, err := s.ReceiveClientMessage(ctx, in)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var read Message
		if err := s.Read(ctx, func(r *Reader) error {
			read, err = r.Message(ctx, rec.Message.ID)
			return err
		}); err != nil {
			t.Fatalf("%s: read it back: %v", what, err)
		}
		if !reflect.DeepEqual(rec.Message, read) {
			t.Errorf("%s: returned\n%+v\nread back\n%+v", what, rec.Message, read)
			if rec.Message.Attachment != nil && read.Attachment != nil {
				t.Errorf("attachments: returned %+v, read %+v", *rec.Message.Attachment, *read.Attachment)
			}
		}
		return rec
	}

	first := check("the first message, which opens a session", ClientMessage{Name: "Olga", Kind: session.Text,
		Text: "Hello, my order #1182 is late"})
	if !first.SessionOpened || !first.Message.FirstOfSession {
		t.Errorf("the first message: %+v", first)
	}
	clk.Add(time.Minute)
	if rec := check("case 6: a second message in the same session", ClientMessage{Kind: session.Text, Text: "Any news?"}); rec.SessionOpened || rec.Message.FirstOfSession {
		t.Errorf("the second message opened a session: %+v", rec)
	}
	image := ClientMessage{Kind: session.Image, Text: "the box", MediaURL: "https://media.example/box.jpg", DedupeKey: "img-1"}
	stored := check("an image with a caption", image)
	// Case 22: a redelivery of the webhook is stored once and answered with
	// the message first stored, as returned then.
	image.Phone = phone
	again, err := s.ReceiveClientMessage(ctx, image)
	if err != nil || !again.Duplicate || !reflect.DeepEqual(again.Message, stored.Message) {
		t.Errorf("case 22: the redelivery: %+v, %v; first returned %+v", again, err, stored.Message)
	}
	check("a file", ClientMessage{Kind: session.File, MediaURL: "https://media.example/invoice.pdf", FileName: "invoice.pdf"})
	check("case 20: a message whose clock runs ahead", ClientMessage{Kind: session.Text, Text: "ahead",
		SentAt: clk.Now().Add(20 * time.Second)})
	check("a message sent a minute before it arrived", ClientMessage{Kind: session.Text, Text: "late",
		SentAt: clk.Now().Add(-time.Minute)})

	// A reply to a business message the provider tracks.
	sent, err := sendText(s, first.Message.ConversationID, "It ships today", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyStatus(ctx, StatusUpdate{Ref: MessageRef{ID: sent[0].ID}, Status: StatusSent, ProviderID: "trk-9"}); err != nil {
		t.Fatal(err)
	}
	if rec := check("a reply to a business message", ClientMessage{Kind: session.Text, Text: "Thanks",
		ReplyToProviderID: "trk-9"}); rec.Message.ReplyTo != sent[0].ID {
		t.Errorf("the reply names %d, want %d", rec.Message.ReplyTo, sent[0].ID)
	}

	// After the window, the next message opens session 2.
	clk.Add(25 * time.Hour)
	if rec := check("case 7: a message after the window", ClientMessage{Kind: session.Text, Text: "Hello again"}); !rec.SessionOpened || rec.Message.SessionNumber != 2 || !rec.Message.FirstOfSession {
		t.Errorf("after the window: %+v", rec)
	}
	check("another client's first message", ClientMessage{Phone: "+375298600000", Kind: session.Text, Text: "Hi"})
}

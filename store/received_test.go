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

// A client's message reads its client in one query (clientByPhone); each
// shape of client it may meet ends as the same stored state: a new phone, a
// contact saved before it wrote (no conversation yet), a known client with an
// open session, and one whose consent flag the message clears. The session
// rules it reads the state for: a first message opens session 1 (case 1), a
// client's message resets the unanswered run (case 3) and, inside the
// session, does not move its end (case 6).
func TestReceiveMeetsEveryShapeOfClient(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	ctx := context.Background()
	stateOf := func(convID int64) (Conversation, []string) {
		t.Helper()
		var c Conversation
		var flags []string
		err := s.Read(ctx, func(r *Reader) (err error) {
			if c, err = r.Conversation(ctx, convID); err != nil {
				return err
			}
			flags = c.Contact.Flags
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return c, flags
	}

	// New: contact, conversation and session 1 are made.
	first := receive(t, s, "+375298600101", "hello")
	c, _ := stateOf(first.Message.ConversationID)
	if !first.SessionOpened || c.State.Current == nil || c.State.Current.Number != 1 || c.Contact.Name != "Olga" {
		t.Errorf("a new client: opened %v, state %+v, contact %+v", first.SessionOpened, c.State, c.Contact)
	}

	// Saved before writing (the sandbox names its clients): the contact is
	// kept, with its name, and the conversation is made now.
	if err := s.SaveContact(ctx, "+375298600102", "Ivan", "BY"); err != nil {
		t.Fatal(err)
	}
	rec, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: "+375298600102", Kind: session.Text, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	c, _ = stateOf(rec.Message.ConversationID)
	if !rec.SessionOpened || c.Contact.Name != "Ivan" || c.Contact.Country != "BY" || c.State.Current == nil {
		t.Errorf("a saved contact's first message: opened %v, contact %+v, state %+v", rec.SessionOpened, c.Contact, c.State)
	}

	// Known, session open, one reply sent: the message stays in the session,
	// resets the run (case 3) and leaves the end where it was (case 6).
	if _, err := sendText(s, first.Message.ConversationID, "answer", false); err != nil {
		t.Fatal(err)
	}
	c, _ = stateOf(first.Message.ConversationID)
	end := c.State.Current.EndsAt
	clk.Add(time.Minute)
	again := receive(t, s, "+375298600101", "thanks")
	c, _ = stateOf(first.Message.ConversationID)
	if again.SessionOpened || again.Message.ConversationID != first.Message.ConversationID || again.Message.SessionNumber != 1 ||
		c.State.Unanswered != 0 || c.State.Current.Used != 1 {
		t.Errorf("a known client: %+v, state %+v", again, c.State)
	}
	if !c.State.Current.EndsAt.Equal(end) {
		t.Errorf("case 6: the session's end moved from %v to %v", end, c.State.Current.EndsAt)
	}
	// The client's message is the conversation's newest and its activity,
	// after the agent's reply was (the list's order and preview).
	var row []ListRow
	if err := s.Read(ctx, func(r *Reader) (err error) {
		row, err = r.ListRowsByID(ctx, []int64{first.Message.ConversationID})
		return err
	}); err != nil || len(row) != 1 {
		t.Fatalf("list row: %v %v", row, err)
	}
	if row[0].Last == nil || row[0].Last.ID != again.Message.ID || !row[0].LastActivityAt.Equal(clk.Now().Truncate(time.Millisecond)) {
		t.Errorf("after the client's message the row's last message is %+v at %v, want %d at %v",
			row[0].Last, row[0].LastActivityAt, again.Message.ID, clk.Now())
	}

	// Flagged: the message clears the consent flag, and only then is there
	// anything to clear.
	conv := first.Message.ConversationID
	sent, err := sendText(s, conv, "one more", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.FlagFromReport(ctx, MessageRef{ID: sent[0].ID}, "Opted Out"); err != nil {
		t.Fatal(err)
	}
	if _, flags := stateOf(conv); len(flags) != 1 {
		t.Fatalf("the flag was not set: %v", flags)
	}
	receive(t, s, "+375298600101", "I do want your messages")
	if _, flags := stateOf(conv); len(flags) != 0 {
		t.Errorf("the client wrote, the consent flag stays: %v", flags)
	}
}

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"sessiondesk/session"
)

func ptr[T any](v T) *T { return &v }

func contactOf(t testing.TB, s *Store, id int64) Contact {
	t.Helper()
	var ct Contact
	if err := s.Read(context.Background(), func(r *Reader) (err error) {
		ct, err = r.Contact(context.Background(), id)
		return err
	}); err != nil {
		t.Fatalf("read contact %d: %v", id, err)
	}
	return ct
}

func eventKinds(t testing.TB, s *Store, after int64) []string {
	t.Helper()
	var kinds []string
	if err := s.Read(context.Background(), func(r *Reader) error {
		evs, err := r.EventsAfter(context.Background(), after, 100)
		for _, e := range evs {
			kinds = append(kinds, e.Kind)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return kinds
}

// An agent's edit is stored, audited field by field and announced as a
// contact event on the conversation; the same edit again writes nothing.
func TestEditContactStoresAuditsAndAnnounces(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	olga := mustAgent(t, s, "olga", "agent")
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	var contactID int64
	_ = s.Read(ctx, func(r *Reader) error {
		c, err := r.Conversation(ctx, conv)
		contactID = c.Contact.ID
		return err
	})
	before := lastEvent(t, s)

	got, err := s.EditContact(ctx, olga.ID, contactID, ContactChange{
		Name: ptr("  Olga Petrova "), Email: ptr("olga@example.com"), ExternalID: ptr("ORD-1182"),
		Tags: ptr([]string{" vip ", "wholesale", "vip"}), Note: ptr("Prefers mornings.\r\nCall first."),
	})
	if err != nil {
		t.Fatal(err)
	}
	d := got.Details
	if got.Name != "Olga Petrova" || d.Email != "olga@example.com" || d.ExternalID != "ORD-1182" ||
		!slices.Equal(d.Tags, []string{"vip", "wholesale"}) || d.Note != "Prefers mornings.\nCall first." || !d.NameSetByAgent {
		t.Errorf("edit returned %+v %+v", got, d)
	}
	stored := contactOf(t, s, contactID)
	if stored.Name != got.Name || !slices.Equal(stored.Details.Tags, d.Tags) || stored.Details.ConversationID != conv ||
		stored.Details.UpdatedAt.IsZero() {
		t.Errorf("stored %+v %+v, want what the edit returned", stored, stored.Details)
	}
	if k := eventKinds(t, s, before); !slices.Equal(k, []string{EventContact}) {
		t.Errorf("events %v, want one contact event", k)
	}
	entries := audit(t, s, AuditFilter{Action: AuditContactEdit})
	if len(entries) != 1 || entries[0].AgentID != olga.ID || entries[0].ConversationID != conv {
		t.Fatalf("audit %+v, want one contact edit by olga on the conversation", entries)
	}
	var detail contactDetail
	if err := json.Unmarshal([]byte(entries[0].Detail), &detail); err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, c := range detail.Changes {
		fields = append(fields, c.Field)
	}
	if !slices.Equal(fields, []string{"name", "email", "external_id", "note", "tags"}) {
		t.Errorf("audited fields %v", fields)
	}
	sum := entries[0].Summary()
	if !strings.Contains(sum, "name: Olga → Olga Petrova") || !strings.Contains(sum, "tags: none → vip, wholesale") ||
		!strings.Contains(sum, "note changed") {
		t.Errorf("summary %q", sum)
	}

	// The same values again (a form saved twice) change nothing.
	mark := lastEvent(t, s)
	if _, err := s.EditContact(ctx, olga.ID, contactID, ContactChange{Name: ptr("Olga Petrova"), Tags: ptr([]string{"vip", "wholesale"})}); err != nil {
		t.Fatal(err)
	}
	if k := eventKinds(t, s, mark); len(k) != 0 {
		t.Errorf("a no-op edit appended events %v", k)
	}
	if n := len(audit(t, s, AuditFilter{Action: AuditContactEdit})); n != 1 {
		t.Errorf("a no-op edit was audited: %d entries", n)
	}
	// Fields left out stay; "" clears.
	if _, err := s.EditContact(ctx, olga.ID, contactID, ContactChange{Email: ptr("")}); err != nil {
		t.Fatal(err)
	}
	if c := contactOf(t, s, contactID); c.Details.Email != "" || c.Details.ExternalID != "ORD-1182" || c.Name != "Olga Petrova" {
		t.Errorf("after clearing the email: %+v %+v", c, c.Details)
	}
}

// Bad input is refused naming the field, and nothing stored changes.
func TestEditContactRefusesBadInput(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	contactID := int64(1)
	if _, err := s.EditContact(ctx, 0, contactID, ContactChange{Note: ptr("kept"), Tags: ptr([]string{"a"})}); err != nil {
		t.Fatal(err)
	}
	mark := lastEvent(t, s)
	tooMany := make([]string, 21)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("t%d", i)
	}
	for _, tc := range []struct {
		name  string
		ch    ContactChange
		field string
	}{
		{"blank name", ContactChange{Name: ptr("   ")}, "name"},
		{"long name", ContactChange{Name: ptr(strings.Repeat("я", 101))}, "name"},
		{"name with a newline", ContactChange{Name: ptr("Olga\nDrop")}, "name"},
		{"email without @", ContactChange{Email: ptr("olga.example.com")}, "email"},
		{"email with a display name", ContactChange{Email: ptr("Olga <olga@example.com>")}, "email"},
		{"two emails", ContactChange{Email: ptr("a@b.c, d@e.f")}, "email"},
		{"hostile email", ContactChange{Email: ptr(`"><script>alert(1)</script>@x.y`)}, "email"},
		{"long external id", ContactChange{ExternalID: ptr(strings.Repeat("x", 101))}, "external_id"},
		{"long note", ContactChange{Note: ptr(strings.Repeat("n", 2001))}, "note"},
		{"21 tags", ContactChange{Tags: &tooMany}, "tags"},
		{"blank tag", ContactChange{Tags: ptr([]string{"ok", " "})}, "tags"},
		{"long tag", ContactChange{Tags: ptr([]string{strings.Repeat("t", 33)})}, "tags"},
		{"tag with a comma", ContactChange{Tags: ptr([]string{"a,b"})}, "tags"},
		{"invalid UTF-8", ContactChange{Name: ptr("Ol\xffga")}, "name"},
		// A valid field beside a bad one is not half-applied.
		{"good and bad together", ContactChange{Note: ptr("replaced"), Email: ptr("nope")}, "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.EditContact(ctx, 0, contactID, tc.ch)
			if got := invalidField(err); got != tc.field {
				t.Fatalf("error %v names field %q, want %q", err, got, tc.field)
			}
		})
	}
	// At the limits is fine.
	if _, err := s.EditContact(ctx, 0, contactID, ContactChange{Tags: ptr(tooMany[:20]), Note: ptr(strings.Repeat("n", 2000)),
		Name: ptr(strings.Repeat("я", 100)), ExternalID: ptr(strings.Repeat("x", 100))}); err != nil {
		t.Fatalf("at the limits: %v", err)
	}
	c := contactOf(t, s, contactID)
	if len(c.Details.Tags) != 20 || len([]rune(c.Details.Note)) != 2000 {
		t.Errorf("at the limits stored %d tags and a note of %d", len(c.Details.Tags), len([]rune(c.Details.Note)))
	}
	if k := eventKinds(t, s, mark); len(k) != 1 {
		t.Errorf("refused edits appended events: %v", k)
	}
	if _, err := s.EditContact(ctx, 0, 999, ContactChange{Name: ptr("x")}); !isNotFound(err) {
		t.Errorf("unknown contact: %v, want ErrNotFound", err)
	}
	_ = conv
}

func isNotFound(err error) bool {
	return err != nil && strings.Contains(err.Error(), ErrNotFound.Error())
}

// The display name Viber sends replaces the stored one until an agent names
// the client; from then on the agent's name stays.
func TestProviderNameDoesNotOverwriteAgentsName(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	in := func(name string) {
		if _, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: "+375298603938", Name: name, Kind: session.Text, Text: "hi"}); err != nil {
			t.Fatal(err)
		}
	}
	in("olga_p")
	in("Olga P.") // Viber users change their names: followed
	if c := contactOf(t, s, 1); c.Name != "Olga P." || c.Details.NameSetByAgent {
		t.Fatalf("before any edit the name is %q (set by agent %v), want Viber's latest", c.Name, c.Details.NameSetByAgent)
	}
	// An edit of another field does not claim the name.
	if _, err := s.EditContact(ctx, 0, 1, ContactChange{Note: ptr("x"), Name: ptr("Olga P.")}); err != nil {
		t.Fatal(err)
	}
	in("olga 2")
	if c := contactOf(t, s, 1); c.Name != "olga 2" {
		t.Fatalf("an edit that left the name as it was stopped Viber's names: %q", c.Name)
	}
	if _, err := s.EditContact(ctx, 0, 1, ContactChange{Name: ptr("Olga Petrova (wholesale)")}); err != nil {
		t.Fatal(err)
	}
	in("🌸 olga")
	if c := contactOf(t, s, 1); c.Name != "Olga Petrova (wholesale)" || !c.Details.NameSetByAgent {
		t.Errorf("after the agent named her, Viber's name replaced it: %q", c.Name)
	}
}

// A client's country follows the newest message that knows it, and a message
// without one (a number the library could not place) keeps it; the number's
// display form is worked out when the client is new.
func TestContactCountryFollowsAndDisplayIsKept(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	in := func(country, text string) {
		if _, err := s.ReceiveClientMessage(ctx, ClientMessage{Phone: "+375298603938", Name: "Olga", Country: country,
			Kind: session.Text, Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	in("", "first")
	if c := contactOf(t, s, 1); c.Country != "" || c.PhoneDisplay != "+375 29 860-39-38" {
		t.Fatalf("new contact: country %q, display %q", c.Country, c.PhoneDisplay)
	}
	in("BY", "second")
	if c := contactOf(t, s, 1); c.Country != "BY" {
		t.Errorf("after a message that knows it: country %q, want BY", c.Country)
	}
	in("", "third")
	if c := contactOf(t, s, 1); c.Country != "BY" || c.PhoneDisplay != "+375 29 860-39-38" {
		t.Errorf("after a message without one: country %q, display %q; want BY kept", c.Country, c.PhoneDisplay)
	}
}

// Two agents editing different fields at once both keep their change, and
// each change has its own audit row.
func TestConcurrentContactEditsKeepBoth(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	receive(t, s, "+375298603938", "Hello")
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { _, err := s.EditContact(ctx, 0, 1, ContactChange{Note: ptr("from A")}); errs <- err })
	wg.Go(func() { _, err := s.EditContact(ctx, 0, 1, ContactChange{Tags: ptr([]string{"from-b"})}); errs <- err })
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c := contactOf(t, s, 1)
	if c.Details.Note != "from A" || !slices.Equal(c.Details.Tags, []string{"from-b"}) {
		t.Errorf("after two concurrent edits: note %q tags %v", c.Details.Note, c.Details.Tags)
	}
	if n := len(audit(t, s, AuditFilter{Action: AuditContactEdit})); n != 2 {
		t.Errorf("%d audit rows, want 2", n)
	}
}

// Admins cannot save a canned reply with a placeholder the composer does not
// fill: it would reach the client as typed.
func TestCannedPlaceholdersChecked(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	base := s.Settings()
	base.Rates.Currency = "EUR"
	save := func(text string) error {
		next := base
		next.CannedReplies = []CannedReply{{Title: "Order", Text: text}}
		return s.SaveSettings(ctx, 0, next)
	}
	for _, ok := range []string{
		"Hello {{contact.name}}, {{agent.name}} here. Your order {{ask:Order number}} ships today.",
		"No placeholders, {single braces} fine.",
	} {
		if err := save(ok); err != nil {
			t.Errorf("save %q: %v", ok, err)
		}
	}
	for text, want := range map[string]string{
		"Hi {{contact.first_name}}":                     "{{contact.first_name}}",
		"Order {{ask:}}":                                "question is missing",
		"Order {{ask:" + strings.Repeat("q", 51) + "}}": "at most 50",
		"Hi {{ Contact.Name }}":                         "{{ Contact.Name }}",
	} {
		err := save(text)
		if invalidField(err) != "canned_replies" || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "{{ask:Question}}") {
			t.Errorf("save %q: %v, want a refusal naming %q and the known placeholders", text, err, want)
		}
	}
	if got := s.Settings().CannedReplies; len(got) != 1 || !strings.Contains(got[0].Text, "single braces") {
		t.Errorf("the refused saves changed the replies: %+v", got)
	}
}

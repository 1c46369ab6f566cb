package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sessiondesk/session"
)

func receiveFrom(t testing.TB, s *Store, phone, name, text string) Received {
	t.Helper()
	r, err := s.ReceiveClientMessage(context.Background(), ClientMessage{Phone: phone, Name: name, Kind: session.Text, Text: text})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return r
}

func search(t testing.TB, s *Store, text string, limit int) []SearchResult {
	t.Helper()
	q, err := ParseSearch(text)
	if err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	var out []SearchResult
	if err := s.Read(context.Background(), func(r *Reader) error {
		var err error
		out, err = r.Search(context.Background(), q, limit)
		return err
	}); err != nil {
		t.Fatalf("search %q: %v", text, err)
	}
	return out
}

// matchedIDs lists the message ids of the results, in order.
func matchedIDs(res []SearchResult) []int64 {
	var ids []int64
	for _, r := range res {
		for _, m := range r.Matches {
			ids = append(ids, m.MessageID)
		}
	}
	return ids
}

// marked is the text of a snippet's marked parts, joined by "|".
func marked(s Snippet) string {
	var parts []string
	for _, p := range s {
		if p.Match {
			parts = append(parts, p.Text)
		}
	}
	return strings.Join(parts, "|")
}

// TestSearchFullTextWorksWithoutBuildTags proves the full-text index is there
// in a plain build (FTS4 is compiled into mattn/go-sqlite3 by default) and
// folds what people type: a Cyrillic prefix, and Latin without accents.
func TestSearchFullTextWorksWithoutBuildTags(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ru := receiveFrom(t, s, "+375298603938", "Ольга", "Привет, где мой заказ?").Message
	fr := receiveFrom(t, s, "+33612345678", "Zoé", "Un café crème, s'il vous plaît").Message
	receiveFrom(t, s, "+442079460958", "Ann", "Nothing to see here")
	yo := receiveFrom(t, s, "+375291112233", "Пётр", "Купил ёлку и счет").Message

	for _, tc := range []struct {
		q    string
		want int64
		mark string
	}{
		{"прив", ru.ID, "Привет"},
		{"ЗАКА", ru.ID, "заказ"},
		{"cafe", fr.ID, "café"},
		{"CAFÉ creme", fr.ID, "café|crème"},
		{"plait", fr.ID, "plaît"},
		{"елку", yo.ID, "ёлку"}, // ё typed as е
		{"счёт", yo.ID, "счет"}, // and the other way round
	} {
		res := search(t, s, tc.q, 20)
		if got := matchedIDs(res); len(got) != 1 || got[0] != tc.want {
			t.Errorf("%q found messages %v, want [%d]", tc.q, got, tc.want)
			continue
		}
		if got := marked(res[0].Matches[0].Snippet); got != tc.mark {
			t.Errorf("%q marked %q, want %q", tc.q, got, tc.mark)
		}
	}
	if res := search(t, s, "zakaz", 20); len(res) != 0 {
		t.Errorf("a word in neither text found %d results", len(res))
	}
}

// TestSearchHostileInputNeverErrors: FTS query syntax typed into the box is
// searched for as words (or is nothing to search for), never parsed.
func TestSearchHostileInputNeverErrors(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	m := receiveFrom(t, s, "+375298603938", "Olga", `The order NEAR the door said "AND" OR not`).Message
	for _, q := range []string{`"`, `""`, `*`, `AND OR NEAR(`, `NEAR/2`, `body:x`, `name:`, `-`, `^a`,
		`(((`, `')`, `a" OR "b`, `%`, `_`, `\`, "\x00", `digits:1*`, `{near}`, `"AND"`, `;DROP TABLE messages;--`} {
		sq, err := ParseSearch(q)
		if err != nil {
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Errorf("%q: %v, want an InvalidError or a search", q, err)
			}
			continue
		}
		if err := s.Read(context.Background(), func(r *Reader) error {
			_, err := r.Search(context.Background(), sq, 20)
			return err
		}); err != nil {
			t.Errorf("%q: %v", q, err)
		}
	}
	// Operators are words like any other.
	if got := matchedIDs(search(t, s, `AND OR NEAR(`, 20)); len(got) != 1 || got[0] != m.ID {
		t.Errorf(`"AND OR NEAR(" found %v, want the message that has those words`, got)
	}
	if got := matchedIDs(search(t, s, `"and" -door`, 20)); len(got) != 1 {
		t.Errorf(`quoted and minus found %v, want the message (both are words in it)`, got)
	}
	// The messages table is intact.
	if got := matchedIDs(search(t, s, "order", 20)); len(got) != 1 {
		t.Errorf("after the hostile searches, order found %v", got)
	}
}

func TestParseSearchRefusesBlankAndHuge(t *testing.T) {
	for _, q := range []string{"", "   \t\n", strings.Repeat("é", MaxSearchLen+1),
		strings.Repeat("ab ", maxSearchWords+1), "caf\xff"} {
		_, err := ParseSearch(q)
		var inv *InvalidError
		if !errors.As(err, &inv) || inv.Field != "q" {
			t.Errorf("ParseSearch(%.20q) = %v, want an InvalidError on q", q, err)
		}
	}
	if _, err := ParseSearch(strings.Repeat("é", MaxSearchLen)); err != nil {
		t.Errorf("a search of exactly %d characters: %v", MaxSearchLen, err)
	}
	q, err := ParseSearch(`" * ( )`)
	if err != nil || !q.Empty() {
		t.Errorf("punctuation only: %v, empty %v; want a search that finds nothing", err, q.Empty())
	}
}

func TestSearchGroupsByConversation(t *testing.T) {
	s, clk := newStore(t, session.Defaults())
	var a, b []int64
	for i := range 5 {
		clk.Add(time.Second)
		a = append(a, receiveFrom(t, s, "+375298603938", "Olga", fmt.Sprintf("parcel number %d late", i)).Message.ID)
		if i == 1 {
			clk.Add(time.Second)
			b = append(b, receiveFrom(t, s, "+375291112233", "Ivan", "where is my parcel?").Message.ID)
		}
	}
	receiveFrom(t, s, "+375293334455", "Petr", "thanks")
	res := search(t, s, "parc", 20)
	if len(res) != 2 {
		t.Fatalf("got %d results, want 2 (Olga's and Ivan's conversations)", len(res))
	}
	// Olga's newest match is newer than Ivan's: she comes first, with her three newest.
	if res[0].Conversation.Contact.Name != "Olga" || res[1].Conversation.Contact.Name != "Ivan" {
		t.Fatalf("order %q, %q; want Olga then Ivan", res[0].Conversation.Contact.Name, res[1].Conversation.Contact.Name)
	}
	want := []int64{a[4], a[3], a[2]}
	for i, m := range res[0].Matches {
		if i >= len(want) || m.MessageID != want[i] {
			t.Fatalf("Olga's matches %v, want %v", matchedIDs(res[:1]), want)
		}
	}
	if len(res[0].Matches) != 3 {
		t.Errorf("Olga's matches %v, want 3", matchedIDs(res[:1]))
	}
	if got := matchedIDs(res[1:]); len(got) != 1 || got[0] != b[0] {
		t.Errorf("Ivan's matches %v, want [%d]", got, b[0])
	}
	if res[0].ContactMatch || res[1].ContactMatch {
		t.Errorf("a word of the text matched a contact")
	}
	// The limit counts conversations.
	if res := search(t, s, "parcel", 1); len(res) != 1 || res[0].Conversation.Contact.Name != "Olga" {
		t.Errorf("limit 1: %d results", len(res))
	}
}

func TestSearchFindsContactsByNameAndPhoneInAnyFormat(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	olga := receiveFrom(t, s, "+375298603938", "Olga Kovalenko", "hi").Message.ConversationID
	receiveFrom(t, s, "+375291112233", "Ivan", "hello")
	andre := receiveFrom(t, s, "+33612345678", "André", "bonjour").Message.ConversationID
	for _, tc := range []struct {
		q    string
		want int64
	}{
		{"+375 29 860-39-38", olga},
		{"375298603938", olga},
		{"+375298603938", olga},
		{"(029) 860-39-38", olga}, // national, with the trunk 0
		{"860-39-38", olga},       // the last digits
		{"29 860 39 38", olga},
		{"8603", olga},
		{"olg", olga},
		{"KOVAL olga", olga},
		{"andre", andre}, // diacritics folded in names too
	} {
		res := search(t, s, tc.q, 20)
		if len(res) != 1 || res[0].Conversation.ID != tc.want || !res[0].ContactMatch {
			var got []string
			for _, r := range res {
				got = append(got, r.Conversation.Contact.Name)
			}
			t.Errorf("%q found %v, want only conversation %d by its contact", tc.q, got, tc.want)
		}
	}
	// Two digits are too few to look at phone numbers.
	if res := search(t, s, "29", 20); len(res) != 0 {
		t.Errorf("29 found %d results", len(res))
	}
	// A renamed contact is found by the new name only.
	receiveFrom(t, s, "+375291112233", "Ivan Petrov", "again")
	if res := search(t, s, "petrov", 20); len(res) != 1 {
		t.Errorf("petrov after the rename: %d results", len(res))
	}
}

// TestSearchIndexFollowsChanges: the index follows a message whose text
// changes or that goes (no code path does either today; the index must not
// be what breaks when one does), and stays whole.
func TestSearchIndexFollowsChanges(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	m := receiveFrom(t, s, "+375298603938", "Olga", "apple pie").Message
	other := receiveFrom(t, s, "+375298603938", "Olga", "apple juice").Message
	ctx := context.Background()
	if _, err := s.write.ExecContext(ctx, `UPDATE messages SET body = 'banana split' WHERE id = ?`, m.ID); err != nil {
		t.Fatal(err)
	}
	if got := matchedIDs(search(t, s, "banana", 20)); len(got) != 1 || got[0] != m.ID {
		t.Errorf("banana after the edit: %v", got)
	}
	if got := matchedIDs(search(t, s, "apple", 20)); len(got) != 1 || got[0] != other.ID {
		t.Errorf("apple after the edit: %v, want only %d", got, other.ID)
	}
	if _, err := s.write.ExecContext(ctx, `DELETE FROM events`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(ctx, `DELETE FROM messages WHERE id = ?`, other.ID); err != nil {
		t.Fatal(err)
	}
	if got := matchedIDs(search(t, s, "apple", 20)); len(got) != 0 {
		t.Errorf("apple after the delete: %v", got)
	}
	var bad int
	if err := s.search.db.QueryRowContext(ctx, `SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'juice'`).Scan(&bad); err != nil || bad != 0 {
		t.Errorf("index entries of the deleted message: %d, %v", bad, err)
	}
	if _, err := s.search.db.ExecContext(ctx, `INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')`); err != nil {
		t.Errorf("integrity check: %v", err)
	}
}

// TestSearchMigrationIndexesExistingData: messages and contacts stored before
// migration 00012 are found after it.
func TestSearchMigrationIndexesExistingData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	ctx := context.Background()
	db, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	p, err := migrationProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 11); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO contacts (id, phone, name, created_at) VALUES (1, '+375298603938', 'Ольга', 1)`,
		`INSERT INTO conversations (id, contact_id, created_at) VALUES (1, 1, 1)`,
		`INSERT INTO sessions (id, conversation_id, number, started_at, ends_at, opened_by) VALUES (1, 1, 1, 1, 2, 'client')`,
		`INSERT INTO messages (id, conversation_id, session_id, direction, kind, body, status, status_at, sent_at, created_at)
		 VALUES (7, 1, 1, 'in', 'text', 'Пришлите счёт, пожалуйста', 'received', 1, 1, 1)`,
		`UPDATE conversations SET last_message_id = 7, last_activity_at = 1`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := Open(ctx, path, Options{Rules: session.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := matchedIDs(search(t, s, "счет", 20)); len(got) != 1 || got[0] != 7 {
		t.Errorf("a message from before the migration: %v, want [7]", got)
	}
	if res := search(t, s, "860 39 38", 20); len(res) != 1 || !res[0].ContactMatch {
		t.Errorf("a contact from before the migration: %d results", len(res))
	}
}

func TestSearchLimitBounds(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	q, _ := ParseSearch("x")
	for _, limit := range []int{0, -1, MaxSearchResults + 1} {
		err := s.Read(context.Background(), func(r *Reader) error {
			_, err := r.Search(context.Background(), q, limit)
			return err
		})
		if err == nil {
			t.Errorf("limit %d accepted", limit)
		}
	}
}

func TestMakeSnippet(t *testing.T) {
	long := strings.Repeat("слово ", 30) + "<script>alert(1)</script> найдено\nздесь " + strings.Repeat("хвост ", 40)
	start := strings.Index(long, "найдено")
	s := makeSnippet(long, []span{{start, start + len("найдено")}})
	if marked(s) != "найдено" {
		t.Fatalf("marked %q", marked(s))
	}
	text := s.String()
	if !strings.HasPrefix(text, "…") || !strings.HasSuffix(text, "…") {
		t.Errorf("a cut snippet shows no ellipsis: %q", text)
	}
	if strings.Contains(text, "\n") {
		t.Errorf("line break kept: %q", text)
	}
	if !strings.Contains(text, "<script>alert(1)</script>") {
		t.Errorf("the snippet is not the stored text (escaping is the view's job): %q", text)
	}
	if n := len([]rune(text)); n > snippetLen+2 {
		t.Errorf("snippet of %d characters", n)
	}
	// Whole words at the cut.
	if strings.HasPrefix(text, "…ово") || strings.HasPrefix(text, "…лово") {
		t.Errorf("cut inside a word: %q", text)
	}
}

func TestSearchMarksTheMatchingWords(t *testing.T) {
	q, err := ParseSearch("cafe ПРИВ елк i")
	if err != nil {
		t.Fatal(err)
	}
	text := "Un Café, привет! cafeteria précafé Ёлка I il"
	var got []string
	for _, sp := range q.marks(text) {
		got = append(got, text[sp.start:sp.end])
	}
	want := "Café|привет|cafeteria|Ёлка|I"
	if strings.Join(got, "|") != want {
		t.Errorf("marked %q, want %q", strings.Join(got, "|"), want)
	}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Search: clients by name and phone number, and message text, through the
// full-text tables of migration 00012 (FTS4: see the migration for why not
// FTS5). The person's text is never handed to MATCH as it is: ParseSearch
// keeps only its words and quotes each one, so quotes, operators (AND, OR,
// NEAR), stars and brackets are searched for as words, or dropped, and never
// parsed as query syntax.

// Search bounds.
const (
	// MaxSearchLen is the longest search text, in characters.
	MaxSearchLen = 200
	// maxSearchWords bounds the words of one search: each one is a lookup.
	maxSearchWords = 10
	// MaxSearchResults is the most conversations one search returns.
	MaxSearchResults = 50
	// matchesPerConversation is how many matching messages a result shows.
	matchesPerConversation = 3
	// searchScan bounds how many matching messages, newest first, a search
	// reads to group them by conversation, so a word in every other message
	// costs what a rare one does.
	searchScan = 1000
	// minPhoneDigits is how many digits a search needs to look at phone
	// numbers: fewer would match most of them.
	minPhoneDigits = 3
)

// SearchQuery is a parsed search: see ParseSearch.
type SearchQuery struct {
	text   string
	words  []string
	digits string // the digits of a search that looks like a phone number, else ""
}

// Text is the search as typed, trimmed.
func (q SearchQuery) Text() string { return q.text }

// Empty reports a search with no word to look for (only punctuation, say):
// it finds nothing.
func (q SearchQuery) Empty() bool { return len(q.words) == 0 && q.digits == "" }

// ParseSearch reads what a person typed into the search box. Words are runs
// of letters, digits and combining marks; each matches the start of a word
// (a prefix), in any case and with or without diacritics, and a message or
// name must hold every word. Text made only of digits and the signs people
// write phone numbers with ("+375 29 860-39-38", "(029) 860 39 38") is also
// looked up among phone numbers by its digits. Blank or too long text is an
// *InvalidError.
func ParseSearch(text string) (SearchQuery, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return SearchQuery{}, &InvalidError{Field: "q", Message: "type something to search for"}
	}
	if !utf8.ValidString(text) {
		return SearchQuery{}, &InvalidError{Field: "q", Message: "the search text is not valid UTF-8"}
	}
	if n := utf8.RuneCountInString(text); n > MaxSearchLen {
		return SearchQuery{}, &InvalidError{Field: "q",
			Message: fmt.Sprintf("the search text is %d characters long; at most %d are searched", n, MaxSearchLen)}
	}
	q := SearchQuery{text: text, words: searchWords(text)}
	if len(q.words) > maxSearchWords {
		return SearchQuery{}, &InvalidError{Field: "q",
			Message: fmt.Sprintf("the search has %d words; at most %d are searched", len(q.words), maxSearchWords)}
	}
	if d, ok := phoneDigits(text); ok && len(d) >= minPhoneDigits {
		q.digits = d
	}
	return q, nil
}

// searchWords splits text into words the way the unicode61 tokenizer does:
// everything that is not a letter, digit or mark separates words.
func searchWords(text string) []string {
	return strings.FieldsFunc(text, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
	})
}

// phoneDigits returns the digits of text when it is written like a phone
// number: digits, spaces and + - ( ) . only.
func phoneDigits(text string) (string, bool) {
	var b strings.Builder
	for _, r := range text {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '+' || r == '-' || r == '(' || r == ')' || r == '.':
		default:
			return "", false
		}
	}
	return b.String(), b.Len() > 0
}

// ftsWord is one word as FTS4 phrases that match it as a prefix. The word
// holds no quote (searchWords splits on them), so a phrase cannot end early
// and nothing in it is query syntax. A one-letter word matches only itself:
// as a prefix it would match a large part of every index.
//
// unicode61 folds Latin diacritics but keeps Cyrillic ё apart from е, while
// Russian is mostly typed with е for both: a word with е or ё matches either
// (its first three such letters), as an OR of the spellings.
func ftsWord(w string) string {
	star := ""
	if utf8.RuneCountInString(w) > 1 {
		star = "*"
	}
	spellings := yoSpellings(strings.ToLower(w))
	for i, v := range spellings {
		spellings[i] = `"` + v + star + `"`
	}
	if len(spellings) == 1 {
		return spellings[0]
	}
	return "(" + strings.Join(spellings, " OR ") + ")"
}

// maxYo is how many е/ё letters of a word get both spellings (2^maxYo phrases).
const maxYo = 3

// yoSpellings returns w with each of its first maxYo letters е or ё spelled
// both ways (w first).
func yoSpellings(w string) []string {
	out := []string{w}
	r := []rune(w)
	n := 0
	for i, c := range r {
		if c != 'е' && c != 'ё' {
			continue
		}
		if n++; n > maxYo {
			break
		}
		for _, v := range out {
			vr := []rune(v)
			if vr[i] == 'е' {
				vr[i] = 'ё'
			} else {
				vr[i] = 'е'
			}
			out = append(out, string(vr))
		}
	}
	return out
}

// match is the MATCH expression for text (message bodies, names): every word,
// as a prefix.
func (q SearchQuery) match() string {
	parts := make([]string, len(q.words))
	for i, w := range q.words {
		parts[i] = ftsWord(w)
	}
	return strings.Join(parts, " ")
}

// digitsMatch is the MATCH expression for the phone digits of contacts_fts,
// which holds every suffix of each number's digits, so that a prefix of one
// of them is the digits typed anywhere in the number. A national number's
// leading zeros (a trunk prefix such as the 0 of "029 860-39-38") are also
// tried without them.
func (q SearchQuery) digitsMatch() string {
	expr := ftsWord(q.digits)
	if t := strings.TrimLeft(q.digits, "0"); t != q.digits && len(t) >= minPhoneDigits {
		expr += " OR " + ftsWord(t)
	}
	return expr
}

// SearchResult is one conversation that a search found.
type SearchResult struct {
	Conversation Conversation
	// ContactMatch: the client's name or phone number matched.
	ContactMatch bool
	// Matches are its newest matching messages, newest first (at most 3).
	Matches []SearchMatch
}

// SearchMatch is a message that matched a search.
type SearchMatch struct {
	MessageID int64
	Direction string
	At        time.Time // when it was stored
	Snippet   Snippet
}

// Snippet is a piece of a message's text around the first match, in parts;
// the parts marked Match are the words that matched. The text is as stored:
// whoever shows it escapes it.
type Snippet []SnippetPart

// SnippetPart is a run of a snippet's text.
type SnippetPart struct {
	Text  string
	Match bool
}

// String is the snippet's plain text.
func (s Snippet) String() string {
	var b strings.Builder
	for _, p := range s {
		b.WriteString(p.Text)
	}
	return b.String()
}

// SearchIncomplete reports that the last Search ran while the search index
// was still being built (after an upgrade or a restore, for a large
// database): it may have missed older messages.
func (r *Reader) SearchIncomplete() bool { return r.searchIncomplete }

// Search returns up to limit conversations that match q: first those whose
// client's name or number matches (the most recently active first), then
// those with matching messages, by their newest match. Each result carries
// its newest matching messages with a snippet.
func (r *Reader) Search(ctx context.Context, q SearchQuery, limit int) ([]SearchResult, error) {
	if limit <= 0 || limit > MaxSearchResults {
		return nil, fmt.Errorf("search: limit %d: want 1 to %d", limit, MaxSearchResults)
	}
	if q.Empty() {
		return nil, nil
	}
	if r.search == nil {
		return nil, errors.New("search: not available inside a batch of writes")
	}
	// What the indexer has not reached yet is indexed now, from this
	// snapshot, before the index is first read in it (each attached file's
	// snapshot begins at its first read): a message stored a moment ago is
	// found. Only while the index is built for a large database are some
	// left (SearchIncomplete).
	more, err := r.search.step(ctx, r.q, r.search.catchUp)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	r.searchIncomplete = more
	var order []int64 // conversation ids, in result order
	byConv := map[int64]*SearchResult{}
	contactConvs, err := r.searchContacts(ctx, q, limit)
	if err != nil {
		return nil, err
	}
	for _, id := range contactConvs {
		order = append(order, id)
		byConv[id] = &SearchResult{ContactMatch: true}
	}
	hits := 0 // matching messages taken
	if len(q.words) > 0 {
		err := r.searchMessages(ctx, q, func(m messageHit) bool {
			res := byConv[m.conv]
			if res == nil {
				if len(order) == limit {
					// Full: stop, unless the results so far came from contacts
					// and may still gain their matching messages.
					return hits < len(order)*matchesPerConversation && len(contactConvs) > 0
				}
				res = &SearchResult{}
				byConv[m.conv] = res
				order = append(order, m.conv)
			}
			if len(res.Matches) < matchesPerConversation {
				res.Matches = append(res.Matches, SearchMatch{MessageID: m.id, Direction: m.direction, At: fromMS(m.at),
					Snippet: makeSnippet(m.body, q.marks(m.body))})
				hits++
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	if len(order) == 0 {
		return nil, nil
	}
	rows, err := r.ListRowsByID(ctx, order)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	for _, row := range rows {
		byConv[row.ID].Conversation = row.Conversation
	}
	out := make([]SearchResult, 0, len(order))
	for _, id := range order {
		res := byConv[id]
		if res.Conversation.ID == 0 {
			continue // gone meanwhile: not possible in one snapshot, but never show an empty row
		}
		out = append(out, *res)
	}
	return out, nil
}

// searchContacts returns the conversations of up to limit contacts whose
// number (for a search that looks like one) or name matches, the most
// recently active first. A MATCH on a column of an FTS4 table searches that
// column only.
func (r *Reader) searchContacts(ctx context.Context, q SearchQuery, limit int) ([]int64, error) {
	query, match := `
		SELECT c.id FROM contacts_fts f
		CROSS JOIN conversations c ON c.contact_id = f.docid
		WHERE f.name MATCH ?
		ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?`, q.match()
	if q.digits != "" {
		query, match = `
		SELECT c.id FROM contacts_fts f
		CROSS JOIN conversations c ON c.contact_id = f.docid
		WHERE f.digits MATCH ?
		ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?`, q.digitsMatch()
	}
	rows, err := r.q.QueryContext(ctx, query, match, limit)
	if err != nil {
		return nil, fmt.Errorf("search contacts: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("search contacts: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search contacts: %w", err)
	}
	return out, nil
}

// messageHit is a matching message as searchMessages reads it.
type messageHit struct {
	id, conv, at    int64
	direction, body string
}

// searchMessages hands each matching message to take, newest first, until
// take returns false or searchScan were read. The full-text table hands them
// out newest first (order=DESC) and reads a word's list of messages only as
// far as asked (when the word is exact or as long as a prefix index), so a
// common word costs no more than a rare one.
//
// The words to mark are found in Go (SearchQuery.marks), not by SQLite's
// offsets() or snippet(): those make FTS4 read the whole list of messages of
// every word first, 25 ms for a word in half of a million messages.
func (r *Reader) searchMessages(ctx context.Context, q SearchQuery, take func(messageHit) bool) error {
	rows, err := r.q.QueryContext(ctx, `
		SELECT m.id, m.conversation_id, m.created_at, m.direction, m.body
		FROM search.messages_fts f
		CROSS JOIN messages m ON m.id = f.docid
		WHERE f.body MATCH ?
		ORDER BY f.docid DESC LIMIT ?`, q.match(), searchScan)
	if err != nil {
		return fmt.Errorf("search messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h messageHit
		if err := rows.Scan(&h.id, &h.conv, &h.at, &h.direction, &h.body); err != nil {
			return fmt.Errorf("search messages: %w", err)
		}
		if !take(h) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("search messages: %w", err)
	}
	return nil
}

// span is a byte range [start, end) of a text.
type span struct{ start, end int }

// marks returns where text holds a word that the search matched: a word
// whose folded form begins with a folded search word (or is it, for a
// one-letter word). Words and folding are unicode61's: see fold.
func (q SearchQuery) marks(text string) []span {
	words := make([]string, len(q.words))
	for i, w := range q.words {
		words[i] = fold(w)
	}
	var out []span
	start := -1
	check := func(end int) {
		t := fold(text[start:end])
		for i, w := range words {
			if t == w || (utf8.RuneCountInString(q.words[i]) > 1 && strings.HasPrefix(t, w)) {
				out = append(out, span{start, end})
				return
			}
		}
	}
	for i, r := range text {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			check(i)
			start = -1
		}
	}
	if start >= 0 {
		check(len(text))
	}
	return out
}

// fold is what unicode61 with remove_diacritics=2 compares: lower case, and
// Latin letters without their diacritics (é is e); Cyrillic letters keep
// theirs (й is not и), but ё is е, as the search spells it both ways.
func fold(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r == 'ё':
			b.WriteRune('е')
		case r < 0x250 || (r >= 0x1E00 && r <= 0x1EFF): // Latin, and Latin Extended Additional
			for _, d := range norm.NFD.String(string(r)) {
				if !unicode.Is(unicode.Mn, d) {
					b.WriteRune(d)
				}
			}
		case unicode.Is(unicode.Mn, r):
			// a combining mark typed apart is dropped, as unicode61 does
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Snippet size, in characters: the context shown before the first match, and
// the whole snippet's length.
const (
	snippetBefore = 40
	snippetLen    = 160
)

// makeSnippet cuts text to about snippetLen characters starting a little
// before the first match, marks the matches, and puts line breaks and other
// white space on one line. "…" shows where text was cut.
func makeSnippet(text string, marks []span) Snippet {
	start := 0
	if len(marks) > 0 {
		start = backRunes(text, marks[0].start, snippetBefore)
	}
	// Begin at a word when cutting: back up to the space after which the word starts.
	if start > 0 {
		if i := strings.IndexFunc(text[start:], unicode.IsSpace); i >= 0 && start+i < firstMark(marks, len(text)) {
			start += i + 1
		}
	}
	end := forwardRunes(text, start, snippetLen)
	var s Snippet
	if start > 0 {
		s = append(s, SnippetPart{Text: "…"})
	}
	pos := start
	for _, m := range marks {
		if m.end <= start || m.start >= end {
			continue
		}
		ms, me := max(m.start, start), min(m.end, end)
		if ms > pos {
			s = append(s, SnippetPart{Text: oneLine(text[pos:ms])})
		}
		s = append(s, SnippetPart{Text: oneLine(text[ms:me]), Match: true})
		pos = me
	}
	if end > pos {
		s = append(s, SnippetPart{Text: oneLine(text[pos:end])})
	}
	if end < len(text) {
		s = append(s, SnippetPart{Text: "…"})
	}
	return s
}

func firstMark(marks []span, n int) int {
	if len(marks) == 0 {
		return n
	}
	return marks[0].start
}

// backRunes is the byte offset n characters before i in text (at least 0).
func backRunes(text string, i, n int) int {
	for ; n > 0 && i > 0; n-- {
		_, size := utf8.DecodeLastRuneInString(text[:i])
		i -= size
	}
	return i
}

// forwardRunes is the byte offset n characters after i in text (at most its end).
func forwardRunes(text string, i, n int) int {
	for ; n > 0 && i < len(text); n-- {
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
	}
	return i
}

// oneLine replaces line breaks and tabs by spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
}

// ThreadDepth returns how many messages of the conversation are message id or
// newer: how many the thread must show to include it. ErrNotFound when the
// conversation has no such message.
func (r *Reader) ThreadDepth(ctx context.Context, conversationID, id int64) (int, error) {
	var n int
	var found bool
	err := r.q.QueryRowContext(ctx, `
		SELECT (SELECT count(*) FROM messages WHERE conversation_id = ?1 AND id >= ?2),
		       EXISTS (SELECT 1 FROM messages WHERE id = ?2 AND conversation_id = ?1)`,
		conversationID, id).Scan(&n, &found)
	if err != nil {
		return 0, fmt.Errorf("thread depth of message %d: %w", id, err)
	}
	if !found {
		return 0, fmt.Errorf("message %d of conversation %d: %w", id, conversationID, ErrNotFound)
	}
	return n, nil
}

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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
	var hits []int64 // message ids to snippet
	if len(q.words) > 0 {
		err := r.searchMessages(ctx, q, func(m messageHit) bool {
			res := byConv[m.conv]
			if res == nil {
				if len(order) == limit {
					// Full: stop, unless the results so far came from contacts
					// and may still gain their matching messages.
					return len(hits) < len(order)*matchesPerConversation && len(contactConvs) > 0
				}
				res = &SearchResult{}
				byConv[m.conv] = res
				order = append(order, m.conv)
			}
			if len(res.Matches) < matchesPerConversation {
				res.Matches = append(res.Matches, SearchMatch{MessageID: m.id, Direction: m.direction, At: fromMS(m.at)})
				hits = append(hits, m.id)
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
	snippets, err := r.snippets(ctx, q, hits)
	if err != nil {
		return nil, err
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
		for i := range res.Matches {
			res.Matches[i].Snippet = snippets[res.Matches[i].MessageID]
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

type messageHit struct {
	id, conv, at int64
	direction    string
}

// searchMessages hands each matching message to take, newest first, until
// take returns false or searchScan were read. The full-text table hands them
// out newest first (order=DESC), so a common word costs no more than a rare
// one: only the messages read are looked at.
func (r *Reader) searchMessages(ctx context.Context, q SearchQuery, take func(messageHit) bool) error {
	rows, err := r.q.QueryContext(ctx, `
		SELECT m.id, m.conversation_id, m.created_at, m.direction FROM messages_fts f
		CROSS JOIN messages m ON m.id = f.docid
		WHERE messages_fts MATCH ?
		ORDER BY f.docid DESC LIMIT ?`, q.match(), searchScan)
	if err != nil {
		return fmt.Errorf("search messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h messageHit
		if err := rows.Scan(&h.id, &h.conv, &h.at, &h.direction); err != nil {
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

// snippets returns the snippet of each of these matching messages. SQLite's
// offsets() says where each matching word is in the text, in bytes; the
// snippet is cut and marked here, from the text as stored, so no marker
// characters are put into the text (a message could contain them) and no
// markup comes out of SQL. The docid range keeps the full-text scan to the
// messages asked for.
func (r *Reader) snippets(ctx context.Context, q SearchQuery, ids []int64) (map[int64]Snippet, error) {
	out := make(map[int64]Snippet, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	lo, hi := ids[0], ids[0]
	for _, id := range ids {
		lo, hi = min(lo, id), max(hi, id)
	}
	arg, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("search snippets: %w", err)
	}
	rows, err := r.q.QueryContext(ctx, `
		SELECT docid, offsets(messages_fts), body FROM messages_fts
		WHERE messages_fts MATCH ? AND docid >= ? AND docid <= ?
		  AND docid IN (SELECT value FROM json_each(?))`, q.match(), lo, hi, string(arg))
	if err != nil {
		return nil, fmt.Errorf("search snippets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id         int64
			offs, body string
		)
		if err := rows.Scan(&id, &offs, &body); err != nil {
			return nil, fmt.Errorf("search snippets: %w", err)
		}
		out[id] = makeSnippet(body, parseOffsets(offs, len(body)))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search snippets: %w", err)
	}
	return out, nil
}

// span is a byte range [start, end) of a text.
type span struct{ start, end int }

// parseOffsets reads the output of FTS4's offsets(): four integers per
// matching word (column, term, byte offset, byte size). Ranges outside a text
// of n bytes are dropped; the result is sorted and without overlaps.
func parseOffsets(s string, n int) []span {
	f := strings.Fields(s)
	var out []span
	for i := 0; i+3 < len(f); i += 4 {
		off, err1 := strconv.Atoi(f[i+2])
		size, err2 := strconv.Atoi(f[i+3])
		if err1 != nil || err2 != nil || off < 0 || size <= 0 || off+size > n {
			continue
		}
		out = append(out, span{off, off + size})
	}
	// offsets() lists by term, then by position: sort by position, merge overlaps.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].start < out[j-1].start; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	merged := out[:0]
	for _, sp := range out {
		if k := len(merged) - 1; k >= 0 && sp.start <= merged[k].end {
			merged[k].end = max(merged[k].end, sp.end)
			continue
		}
		merged = append(merged, sp)
	}
	return merged
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

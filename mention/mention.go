// Package mention finds @login mentions in the text of an internal note and
// matches them to the agents' logins. It knows nothing of the store: the
// store hands it the logins there are, in the transaction that keeps the note.
package mention

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Token is one "@name" in a text.
type Token struct {
	// Start and End are the byte offsets of "@name" in the text.
	Start, End int
	// Name is what follows the @, as written.
	Name string
}

// nameRune reports the runes a login may hold: logins are user names or
// e-mail addresses (oauth2-proxy signs agents in by their e-mail).
func nameRune(r rune) bool {
	if unicode.IsLetter(r) || unicode.IsDigit(r) {
		return true
	}
	switch r {
	case '.', '_', '-', '+', '@':
		return true
	}
	return false
}

// Find returns the @names of text, in order. An @ right after a letter, a
// digit or one of a login's marks is not a mention but part of a word, such
// as an e-mail address (olga@example.com); a name starts with a letter or a
// digit, and the punctuation that ends a sentence is not part of it.
func Find(text string) []Token {
	var out []Token
	prev := ' '
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if r != '@' || nameRune(prev) {
			prev = r
			i += size
			continue
		}
		j := i + size
		for j < len(text) {
			r2, s2 := utf8.DecodeRuneInString(text[j:])
			if !nameRune(r2) {
				break
			}
			j += s2
		}
		name := strings.TrimRight(text[i+size:j], ".-+@")
		first, _ := utf8.DecodeRuneInString(name)
		if name != "" && (unicode.IsLetter(first) || unicode.IsDigit(first)) {
			end := i + size + len(name)
			out = append(out, Token{Start: i, End: end, Name: name})
			// Whatever was trimmed off (a full stop) starts again after the name.
			i, prev = end, 'x'
			continue
		}
		prev = r
		i += size
	}
	return out
}

// Match returns the login among logins that name designates, or "" when it
// designates none: the login itself, in any case; or, for a name without an
// @, the one login whose e-mail's local part it is ("@olga" for
// olga@example.com), so that a team signed in by e-mail can write short names.
func Match(name string, logins []string) string {
	for _, l := range logins {
		if strings.EqualFold(l, name) {
			return l
		}
	}
	if strings.Contains(name, "@") {
		return ""
	}
	found := ""
	for _, l := range logins {
		local, _, ok := strings.Cut(l, "@")
		if ok && strings.EqualFold(local, name) {
			if found != "" {
				return "" // two agents share it: say nothing rather than guess
			}
			found = l
		}
	}
	return found
}

// Segment is a run of a note's text: plain text, or a mention to highlight.
type Segment struct {
	Text    string
	Mention bool
}

// Split cuts text into segments, the @names that designate one of mentioned
// (the logins the note mentions) being the mentions. Other @names stay text.
func Split(text string, mentioned []string) []Segment {
	var out []Segment
	at := 0
	for _, t := range Find(text) {
		if Match(t.Name, mentioned) == "" {
			continue
		}
		if t.Start > at {
			out = append(out, Segment{Text: text[at:t.Start]})
		}
		out = append(out, Segment{Text: text[t.Start:t.End], Mention: true})
		at = t.End
	}
	if at < len(text) || len(out) == 0 {
		out = append(out, Segment{Text: text[at:]})
	}
	return out
}

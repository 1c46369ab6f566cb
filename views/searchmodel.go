package views

import (
	"net/url"
	"time"
)

// SearchView is what a search shows: the results page and the list's live
// results alike.
type SearchView struct {
	Query string
	// Error says why the text cannot be searched (too long); "" otherwise.
	Error   string
	Results []SearchResult
	// Incomplete: the search index was still being built (after an upgrade
	// or a restore of a large database), so older messages may be missing.
	Incomplete bool
}

// SearchResult is one conversation a search found.
type SearchResult struct {
	ConversationID int64
	Name, Phone    string
	// ContactMatch: the client's name or number matched.
	ContactMatch bool
	Matches      []SearchMatch
}

// SearchMatch is one matching message, linked to its place in the thread.
type SearchMatch struct {
	MessageID int64
	Out       bool // an agent's message
	At        time.Time
	// Parts is the snippet; Mark parts are the words that matched. They are
	// rendered as text inside <mark>, escaped like everything else.
	Parts []SnippetPart
}

// SnippetPart is a run of a snippet.
type SnippetPart struct {
	Text string
	Mark bool
}

// messageURL opens a conversation at one of its messages: around asks the
// thread to reach back to it, the fragment scrolls to it (app.js marks it).
func messageURL(c Chrome, conversationID, messageID int64) string {
	return conversationURL(c, conversationID, "?around="+i64(messageID)+"#msg-"+i64(messageID))
}

// queryEscape escapes a search for a URL's query.
func queryEscape(q string) string { return url.QueryEscape(q) }

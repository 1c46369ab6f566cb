package views

import (
	"time"

	"sessiondesk/session"
)

// Note is an internal note in the thread.
type Note struct {
	ID             int64
	ConversationID int64
	Author         string // the agent's name
	At             time.Time
	// Segments are the text, the mentions of agents apart so they stand out.
	Segments []NoteSegment
}

// NoteSegment is a run of a note's text: plain, or an @mention of an agent.
type NoteSegment struct {
	Text    string
	Mention bool
}

// NoteComposer is the Note tab's form; Text and Error survive a refused note.
type NoteComposer struct {
	ConversationID int64
	MaxLen         int // the counter's limit; the server checks it again
	Text           string
	Error          *session.Refusal
}

// MentionBadge is the header's link to the agent's mentions. The live badge
// also names the newest note that mentions the agent, for notifications.
type MentionBadge struct {
	Unseen         int
	NoteID         int64 // 0 on a page render
	ConversationID int64
	Author         string
}

// MentionRow is one mention in the agent's list of mentions.
type MentionRow struct {
	Note
	ContactName string
	Seen        bool
}

// MentionsPage lists the notes that mention the signed-in agent.
type MentionsPage struct {
	Chrome
	Rows []MentionRow
	// UpTo is the newest note listed: "Mark all as seen" marks up to it, so
	// that a mention arriving meanwhile stays unseen.
	UpTo int64
}

// threadItem is a message or a note, in the order the thread shows them.
type threadItem struct {
	Message *Message
	Note    *Note
}

// threadItems interleaves messages and notes by time, each list being in
// order already; a message and a note of the same millisecond keep the
// message first.
func threadItems(msgs []Message, notes []Note) []threadItem {
	out := make([]threadItem, 0, len(msgs)+len(notes))
	i, j := 0, 0
	for i < len(msgs) || j < len(notes) {
		if j == len(notes) || (i < len(msgs) && !notes[j].At.Before(msgs[i].At)) {
			out = append(out, threadItem{Message: &msgs[i]})
			i++
		} else {
			out = append(out, threadItem{Note: &notes[j]})
			j++
		}
	}
	return out
}

// noteURL links to a note in its conversation's thread.
func noteURL(c Chrome, n Note) string {
	return c.URL("/c/"+i64(n.ConversationID)) + "#note-" + i64(n.ID)
}

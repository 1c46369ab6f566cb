package views

import "slices"

// ContactView is the contact card of the session panel: what agents keep
// about the client, and the form that edits it.
type ContactView struct {
	ID      int64
	Phone   string // for display
	Country string
	// Name is the stored name, shown as the card's title.
	Name string
	Tags []string
	// Values are what the form shows: the stored values, or what the agent
	// typed when the save was refused.
	Values    ContactValues
	FormURL   string // where the form posts
	SearchURL string // the search of the client's messages
	// Error is the refusal of the last save, nil when there is none.
	Error *FieldError
	// Sent names the fields of a refused save: the script sends them again
	// with the next save even if the agent does not touch them.
	Sent []string
}

func (v ContactView) sent(field string) bool { return slices.Contains(v.Sent, field) }

// ContactValues are the contact form's fields, tags comma-separated.
type ContactValues struct {
	Name, Email, ExternalID, Tags, Note string
}

// FieldError is a refused form field.
type FieldError struct {
	Field, Message string
}

// KeyHelp is one line of the keyboard help: the keys and what they do.
type KeyHelp struct {
	Keys   []string
	Action string
}

// Keys are every key the inbox answers, for the help overlay (?).
func Keys() []KeyHelp {
	return []KeyHelp{
		{[]string{"j"}, "Next conversation"},
		{[]string{"k"}, "Previous conversation"},
		{[]string{"r"}, "Reply: go to the composer"},
		{[]string{"Ctrl", "Enter"}, "Send the reply (a new billed session needs its button)"},
		{[]string{"Escape"}, "Leave the composer, close a dialog or picker"},
		{[]string{"/"}, "In an empty composer: canned replies; elsewhere: search"},
		{[]string{"n"}, "Write an internal note"},
		{[]string{"e"}, "Resolve the conversation"},
		{[]string{"s"}, "Snooze the conversation"},
		{[]string{"p"}, "Mark the conversation pending (waiting on the client)"},
		{[]string{"a"}, "Assign the conversation to me"},
		{[]string{"u"}, "Mark the conversation unread (for me only) and go back to the list"},
		{[]string{"g", "m"}, "Views: Mine (g u Unassigned, g a All, g w Waiting on us, g x Expiring, g l Locked, g c Closed unanswered)"},
		{[]string{"c"}, "Edit the contact"},
		{[]string{"?"}, "Show this help"},
	}
}

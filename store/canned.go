package store

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Canned replies may hold placeholders that the composer fills in the
// browser before inserting the reply: {{contact.name}}, {{agent.name}}, and
// {{ask:Question}}, for which the agent is asked the value. Anything else
// between double braces would reach the client as typed, so an admin's save
// refuses it.

// MaxAskLabel is the longest question of an {{ask:…}} placeholder.
const MaxAskLabel = 50

// placeholder matches one {{…}} (no braces inside), as the composer's script does.
var placeholder = regexp.MustCompile(`\{\{([^{}]*)\}\}`)

// KnownPlaceholders are the placeholders a canned reply may hold.
func KnownPlaceholders() []string {
	return []string{"{{contact.name}}", "{{agent.name}}", "{{ask:Question}}"}
}

// checkPlaceholders refuses a canned reply with an unknown or malformed
// placeholder, naming the reply and the placeholder.
func checkPlaceholders(replies []CannedReply) error {
	for i, c := range replies {
		for _, m := range placeholder.FindAllStringSubmatch(c.Text, -1) {
			if msg := placeholderProblem(m[1]); msg != "" {
				return &InvalidError{Field: "canned_replies", Message: fmt.Sprintf(
					"Canned reply %d (%q) has the placeholder %s: %s. Use %s.",
					i+1, c.Title, m[0], msg, strings.Join(KnownPlaceholders(), ", "))}
			}
		}
	}
	return nil
}

// placeholderProblem says what is wrong with the inside of a placeholder, ""
// when it is known.
func placeholderProblem(inner string) string {
	switch inner {
	case "contact.name", "agent.name":
		return ""
	}
	label, ok := strings.CutPrefix(inner, "ask:")
	if !ok {
		return "it is unknown"
	}
	label = strings.TrimSpace(label)
	if label == "" {
		return "the question is missing"
	}
	if n := utf8.RuneCountInString(label); n > MaxAskLabel {
		return fmt.Sprintf("the question has %d characters; at most %d", n, MaxAskLabel)
	}
	return ""
}

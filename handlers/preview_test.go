package handlers

import (
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	"sessiondesk/session"
	"sessiondesk/store"
)

func TestPreviewIsOneBoundedLine(t *testing.T) {
	long := strings.Repeat("ж", previewRunes+50)
	for _, c := range []struct {
		name string
		m    store.Message
		want string
	}{
		{"plain", store.Message{Body: "Where is my invoice?", Kind: session.Text}, "Where is my invoice?"},
		{"white space collapsed", store.Message{Body: "  Where\tis \n\n my\u00a0invoice?  ", Kind: session.Text}, "Where is my invoice?"},
		{"blank text", store.Message{Body: " \n\t ", Kind: session.Text}, ""},
		{"image without caption", store.Message{Body: "", Kind: session.Image}, "[image]"},
		{"our reply", store.Message{Body: "Sent\nit", Kind: session.Text, Direction: store.Outbound}, "You: Sent it"},
		{"long text cut", store.Message{Body: long, Kind: session.Text}, strings.Repeat("ж", previewRunes) + "…"},
		{"cut at a space", store.Message{Body: strings.Repeat("a", previewRunes-1) + "   b", Kind: session.Text}, strings.Repeat("a", previewRunes-1) + "…"},
		{"exactly the bound", store.Message{Body: strings.Repeat("a", previewRunes-2) + " b", Kind: session.Text}, strings.Repeat("a", previewRunes-2) + " b"},
		{"markup kept as text", store.Message{Body: "<script>x</script>", Kind: session.Text}, "<script>x</script>"},
	} {
		got := preview(c.m)
		if got != c.want {
			t.Errorf("%s: preview = %q, want %q", c.name, got, c.want)
		}
		if n := utf8.RuneCountInString(strings.TrimPrefix(strings.TrimSuffix(got, "…"), "You: ")); n > previewRunes {
			t.Errorf("%s: preview has %d characters, more than %d", c.name, n, previewRunes)
		}
	}
}

// A text that is one line already is returned as it is, not copied: most
// are, and every list row draws one.
func TestOneLineKeepsALineWithoutCopying(t *testing.T) {
	s := strings.Repeat("word ", 20) + "end"
	if got := oneLine(s, previewRunes); got != s || unsafe.StringData(got) != unsafe.StringData(s) {
		t.Fatalf("oneLine returned %q, a copy or a change of %q", got, s)
	}
	if allocs := testing.AllocsPerRun(100, func() { oneLine(s, previewRunes) }); allocs != 0 {
		t.Errorf("oneLine of a clean line allocates %v times", allocs)
	}
	for _, s := range []string{" lead", "trail ", "two  spaces", "tab\there", "line\nbreak", strings.Repeat("a", previewRunes+1)} {
		if isOneLine(s, previewRunes) {
			t.Errorf("isOneLine(%q) = true", s)
		}
	}
}

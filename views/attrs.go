package views

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/a-h/templ"
)

// Rendering the list's rows and the thread's messages without fmt. templ
// writes every { expr } through templ.JoinStringErrs, which is fmt.Sprint:
// the value boxed, formatted by reflection and copied into a new string, even
// when it is a string already. A list page draws about twenty of them for each
// of its 50 rows, and the live hub draws the rows of every change: on the
// inbox page at 100k conversations that was a tenth of the CPU and a sixth of
// the garbage. The row's parts, and a message's in the thread, use these two
// instead, and templ still escapes everything they write.

// escapedText is text written HTML-escaped: @escapedText(s) in place of { s }.
// templ calls its Render directly, so it is neither boxed nor formatted.
type escapedText string

// Render implements templ.Component.
func (t escapedText) Render(_ context.Context, w io.Writer) error {
	_, err := io.WriteString(w, templ.EscapeString(string(t)))
	return err
}

// attrList is a run of string attributes spread into an element
// (<li { a... }>). templ.RenderAttributes escapes each key and value; the values
// are handed over as pointers into the list, which its *string case reads,
// so that a value costs no boxing, only its formatting when it is a number.
// Its slices start on arrays of the struct that holds it (attrs8,
// attrPair), so that a list is one allocation.
type attrList struct {
	vals  []string
	items []templ.KeyValue[string, any]
}

// add appends an attribute. Past the arrays' capacity append moves on to a
// new array, and the earlier pointers keep the old one, values and all.
func (a *attrList) add(key, val string) {
	a.vals = append(a.vals, val)
	a.items = append(a.items, templ.KeyValue[string, any]{Key: key, Value: &a.vals[len(a.vals)-1]})
}

// addInt appends an attribute with a decimal value.
func (a *attrList) addInt(key string, v int64) { a.add(key, strconv.FormatInt(v, 10)) }

// Items implements templ.Attributer, in the order the attributes were added.
func (a *attrList) Items() []templ.KeyValue[string, any] { return a.items }

// attrs8 holds up to eight attributes in one allocation.
type attrs8 struct {
	attrList
	valsBuf  [8]string
	itemsBuf [8]templ.KeyValue[string, any]
}

// newAttrs8 returns an empty attrs8 whose list starts on its arrays.
func newAttrs8() *attrs8 {
	a := &attrs8{}
	a.attrList = attrList{vals: a.valsBuf[:0], items: a.itemsBuf[:0]}
	return a
}

// attrPair holds two attributes.
type attrPair struct {
	attrList
	valsBuf  [2]string
	itemsBuf [2]templ.KeyValue[string, any]
}

// newAttrPair returns an empty attrPair whose list starts on its arrays.
func newAttrPair() *attrPair {
	a := &attrPair{}
	a.attrList = attrList{vals: a.valsBuf[:0], items: a.itemsBuf[:0]}
	return a
}

// rowAttrs are what the script reads on a list row to place it in the list
// and the views (see ConversationRow): its id, sort key, status, newest client
// message, the page's read mark (only when set), assignee, unanswered run and
// session end.
func rowAttrs(r ConversationRow) *attrs8 {
	a := newAttrs8()
	a.addInt("data-conversation-id", r.ID)
	a.addInt("data-activity", r.ActivityMS)
	a.add("data-status", r.Status)
	a.addInt("data-last-in", r.LastInID)
	if r.ReadMark >= 0 {
		a.addInt("data-read", r.ReadMark)
	}
	a.addInt("data-assignee-id", r.AssigneeID)
	a.addInt("data-unanswered", int64(r.Unanswered))
	a.addInt("data-ends", r.EndsMS)
	return a
}

// badgeAttrs are an open session's badge title (with the instant the script
// rewrites it from, in the reader's zone).
func badgeAttrs(b SessionBadge) *attrPair {
	a := newAttrPair()
	a.add("title", "Session ends "+dayTime(b.EndsAt))
	a.add("data-title-at", isoTime(b.EndsAt))
	return a
}

// countdownAttrs are what the countdown script counts from: the session's end
// and the server's clock when the row was drawn, both Unix ms.
func countdownAttrs(b SessionBadge) *attrPair {
	a := newAttrPair()
	a.addInt("data-ends-at", b.EndsAt.UnixMilli())
	a.addInt("data-server-now", b.NowUnix)
	return a
}

// bubbleAttrs are a thread message's: its id (what a live frame replaces),
// classes, and what the script and the tests read.
func bubbleAttrs(m Message) *attrs8 {
	class := "msg msg-" + direction(m)
	if m.Out && failedStatus(m.Status) {
		class += " is-failed"
	}
	if m.Paid != nil {
		class += " msg-paid"
	}
	a := newAttrs8()
	id := strconv.FormatInt(m.ID, 10)
	a.add("id", "msg-"+id)
	a.add("class", class)
	a.add("data-testid", "message")
	a.add("data-message-id", id)
	a.add("data-direction", direction(m))
	a.add("data-status", m.Status)
	return a
}

// timeAttrs are a <time>'s: the instant for machines and the script (which
// rewrites it in the reader's zone and format), and the full time on hover.
func timeAttrs(t time.Time, format, testid string) *attrs8 {
	a := newAttrs8()
	a.add("datetime", isoTime(t))
	a.add("data-format", format)
	a.add("title", fullTime(t))
	if testid != "" {
		a.add("data-testid", testid)
	}
	return a
}

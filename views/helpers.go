package views

// Pure formatting helpers for the templ components: no I/O, no clock. Every time
// shown is formatted in the location of the time.Time the handler passed in, and
// every "now" comes from the model (S10).

import (
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"sessiondesk/session"
)

// textLimit is the composer's character limit, the seed's when not given.
func textLimit(comp Composer) int {
	if comp.MaxTextLen > 0 {
		return comp.MaxTextLen
	}
	return session.Defaults().MaxTextLen
}

// itoa formats an int for attributes and text.
func itoa(n int) string { return strconv.Itoa(n) }

// i64 formats an int64 for attributes and text.
func i64(n int64) string { return strconv.FormatInt(n, 10) }

// unixMs formats t as Unix milliseconds, the unit the countdown script reads.
func unixMs(t time.Time) string { return i64(t.UnixMilli()) }

// conversationURL is the inbox with conversation id selected, plus an optional suffix
// such as "/messages" or "/state".
func conversationURL(c Chrome, id int64, suffix string) string {
	return c.URL("/c/" + i64(id) + suffix)
}

// inboxWSURL is the inbox's websocket; conversation 0 means none is selected.
func inboxWSURL(c Chrome, conversationID, after int64) string {
	return c.URL("/ws?conversation=" + i64(conversationID) + "&after=" + i64(after))
}

// sandboxURL is the sandbox phone with the given client selected ("" for none).
func sandboxURL(c Chrome, phone string) string {
	if phone == "" {
		return c.URL("/sandbox")
	}
	return c.URL("/sandbox?phone=" + url.QueryEscape(phone))
}

// sandboxWSURL is the sandbox phone's websocket.
func sandboxWSURL(c Chrome, phone string, after int64) string {
	return c.URL("/sandbox/ws?phone=" + url.QueryEscape(phone) + "&after=" + i64(after))
}

// clockText formats the H:MM:SS the countdown script also writes, or "closed".
func clockText(left time.Duration) string {
	if left <= 0 {
		return "closed"
	}
	s := int64(left / time.Second)
	// Appended, not Sprintf'd: every open session's row draws one.
	b := make([]byte, 0, len("000:00:00"))
	b = strconv.AppendInt(b, s/3600, 10)
	b = append(b, ':', byte('0'+s/600%6), byte('0'+s/60%10), ':', byte('0'+s/10%6), byte('0'+s%10))
	return string(b)
}

// countdownText is the time left from nowMs (the server's clock, Unix ms) to end.
func countdownText(end time.Time, nowMs int64) string {
	return clockText(time.Duration(end.UnixMilli()-nowMs) * time.Millisecond)
}

// countdownAmber reports the last hour of a session, shown in amber.
func countdownAmber(end time.Time, nowMs int64) bool {
	left := end.UnixMilli() - nowMs
	return left > 0 && left < int64(time.Hour/time.Millisecond)
}

// hhmm formats a message time as 15:04.
func hhmm(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("15:04")
}

// dayTime formats a session boundary as "24 Nov 10:02".
func dayTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Format("2 Jan 15:04")
}

// isoTime is the machine-readable datetime attribute of a <time>: the instant in UTC.
func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// fullTime is the hover title of a time.
func fullTime(t time.Time) string { return t.Format("Mon 2 Jan 2006 15:04:05 MST") }

// costText is what a session costs so far: "0.045 EUR", or "not billed yet".
func costText(cost float64, currency string) string {
	if cost <= 0 {
		return "not billed yet"
	}
	s := strconv.FormatFloat(cost, 'f', -1, 64)
	if dot := strings.IndexByte(s, '.'); dot < 0 {
		s += ".00"
	} else if len(s)-dot-1 < 2 {
		s += strings.Repeat("0", 2-(len(s)-dot-1))
	}
	return strings.TrimSpace(s + " " + currency)
}

// pastCostText is what an ended session cost: "not billed" when nothing was sent in it.
func pastCostText(cost float64, currency string) string {
	if cost <= 0 {
		return "not billed"
	}
	return costText(cost, currency)
}

// plural returns "1 message" or "N messages".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return itoa(n) + " " + many
}

// failedStatus reports a business message the provider did not deliver.
func failedStatus(status string) bool {
	switch status {
	case "failed", "undelivered", "expired":
		return true
	}
	return false
}

// statusTicks is the delivery marker of a business message.
func statusTicks(status string) string {
	switch status {
	case "queued", "unconfirmed":
		return "◷"
	case "sent":
		return "✓"
	case "delivered", "seen":
		return "✓✓"
	}
	return ""
}

// statusLabel is the accessible name of a delivery marker.
func statusLabel(status string) string {
	switch status {
	case "queued":
		return "Queued"
	case "unconfirmed":
		return "Unconfirmed: Routee may or may not have it"
	case "sent":
		return "Sent"
	case "delivered":
		return "Delivered"
	case "seen":
		return "Seen"
	}
	return status
}

// failedText is the red line under a message the provider did not deliver.
func failedText(m Message) string {
	label := "failed"
	if m.Status == "expired" {
		label = "expired"
	} else if m.Status == "undelivered" {
		label = "undelivered"
	}
	if m.Reason == "" {
		return label
	}
	return label + ": " + m.Reason
}

// kindLabel names an attachment in a bubble.
func kindLabel(kind string) string {
	switch kind {
	case "image":
		return "Image"
	case "file":
		return "File"
	}
	return ""
}

// direction is the data-direction of a bubble.
func direction(m Message) string {
	if m.Out {
		return "out"
	}
	return "in"
}

// initials are the one or two letters of an avatar.
// It reads the first letter of each of the first words in place: every
// list row draws one, and splitting the name into words first was a twentieth
// of a list page's garbage.
func initials(name string) string {
	var out [2]rune
	n := 0
	inWord := false
	for _, r := range name {
		if unicode.IsSpace(r) {
			inWord = false
			continue
		}
		if inWord {
			continue
		}
		inWord = true
		if unicode.IsLetter(r) {
			out[n] = unicode.ToUpper(r)
			if n++; n == len(out) {
				break
			}
		}
	}
	if n == 0 {
		return "#"
	}
	return string(out[:n])
}

// displayName falls back to the phone number when a contact has no name.
func displayName(name, phone string) string {
	if strings.TrimSpace(name) != "" {
		return name
	}
	if phone != "" {
		return phone
	}
	return "Unknown"
}

// runeCount is the composer counter's initial value, in Unicode code points like the server.
func runeCount(s string) int { return utf8.RuneCountInString(s) }

// refusalCode is the code of a status's refusal, "" when sending is allowed.
func refusalCode(s session.Status) session.Code {
	if s.Refusal == nil {
		return ""
	}
	return s.Refusal.Code
}

// refusalMessage is the sentence of a status's refusal.
func refusalMessage(s session.Status) string {
	if s.Refusal == nil {
		return ""
	}
	return s.Refusal.Message
}

// needsConfirmation reports that the next send would begin a new billed session.
func needsConfirmation(s session.Status) bool { return refusalCode(s) == session.NeedsConfirmation }

// pageTitle is the document title.
func pageTitle(c Chrome) string {
	title := "Sessiondesk"
	if c.Title != "" {
		title = c.Title + " · Sessiondesk"
	}
	if c.Unread > 0 {
		title = "(" + itoa(c.Unread) + ") " + title
	}
	return title
}

// meterLow is where the session meter turns to its warning colour: a sixth of the cap.
func meterLow(limit int) string { return itoa(max(limit/6, 1)) }

// statusTitle is the heading of an error page.
func statusTitle(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Something went wrong"
}

// selectedID is the open conversation's id, 0 when none is selected.
func selectedID(p InboxPage) int64 {
	if p.Selected == nil {
		return 0
	}
	return p.Selected.ID
}

// unansweredDots is the row of dots under "N more before the client must reply":
// one per allowed unanswered message, true for those already sent.
func (p Panel) unansweredDots() []bool {
	n := min(max(p.MaxUnanswered, 0), 20)
	dots := make([]bool, n)
	for i := range dots {
		dots[i] = i < p.Status.Unanswered
	}
	return dots
}

// sessionStateClass is the session card's state: none, open, amber or closed.
func sessionStateClass(p Panel) string {
	switch {
	case p.Status.Number == 0:
		return "is-none"
	case !p.Status.Open:
		return "is-closed"
	case countdownAmber(p.Status.EndsAt, p.NowUnix):
		return "is-amber"
	}
	return "is-open"
}

// composerReason is why the send button is disabled, in plain words.
func composerReason(s session.Status) string {
	if m := refusalMessage(s); m != "" {
		return m
	}
	return "Sending is not possible right now."
}

// sandboxSelected reports the client being played.
func sandboxSelected(p SandboxPage, cl SandboxClient) bool {
	return cl.Selected || (p.Selected != nil && p.Selected.Phone == cl.Phone)
}

// sandboxSide puts the client's own messages on the right of the phone ("mine")
// and the business's on the left ("theirs").
func sandboxSide(m Message) string {
	if m.Out {
		return "sbx-theirs"
	}
	return "sbx-mine"
}

// sandboxMarkSeen reports a business message the phone should mark seen when shown:
// not yet seen, and not one the provider failed to deliver.
func sandboxMarkSeen(m Message) bool {
	return m.Out && m.Status != "seen" && !failedStatus(m.Status)
}

// attachmentNoun names what a pending or failed attachment is.
func attachmentNoun(a Attachment) string {
	if a.Image {
		return "image"
	}
	if a.Name != "" {
		return a.Name
	}
	return "attachment"
}

// thumbWidth and thumbHeight are the preview's size in the thread: the image's
// proportions within a 240×240 box, so the layout does not jump while it loads.
func thumbWidth(a Attachment) int {
	w, _ := thumbBox(a)
	return w
}

func thumbHeight(a Attachment) int {
	_, h := thumbBox(a)
	return h
}

func thumbBox(a Attachment) (int, int) {
	const box = 240
	if a.Width <= 0 || a.Height <= 0 {
		return box, box
	}
	if a.Width >= a.Height {
		return box, max(1, a.Height*box/a.Width)
	}
	return max(1, a.Width*box/a.Height), box
}

// sizeText is a byte count for people, in the decimal units of the limits.
func sizeText(n int64) string {
	switch {
	case n >= 1_000_000:
		return strconv.FormatFloat(float64(n)/1_000_000, 'f', 1, 64) + " MB"
	case n >= 1_000:
		return strconv.FormatInt((n+500)/1_000, 10) + " KB"
	default:
		return strconv.FormatInt(n, 10) + " bytes"
	}
}

// attachAccept lists what the composer's file picker offers: the server's
// image and file types. It only steers the picker; the script and the server
// refuse the rest.
func attachAccept(l AttachLimits) string {
	var exts []string
	for _, e := range append(slices.Clone(l.ImageTypes), l.FileTypes...) {
		exts = append(exts, "."+e)
	}
	return strings.Join(exts, ",")
}

func boolAttr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// convStatusLabel names a conversation status in the header and the list.
func convStatusLabel(status string) string {
	switch status {
	case "pending":
		return "Pending"
	case "snoozed":
		return "Snoozed"
	case "resolved":
		return "Resolved"
	}
	return "Open"
}

// viewLabel is the list's heading: the current view's name.
func viewLabel(n ViewNav, view string) string {
	for _, v := range n.Items {
		if v.Name == view {
			return v.Label
		}
	}
	return "Conversations"
}

// reportedText is what the provider reported a session cost: "not priced
// yet" until it priced any message, then the sum, "(2 of 3 priced)" while
// some are not.
func reportedText(r ReportedCost) string {
	if r.Priced == 0 {
		if r.Foreign > 0 {
			return "priced in another currency only"
		}
		return "not priced yet"
	}
	s := moneyText(r.Amount, r.Currency)
	if r.Priced < r.Used {
		s += " (" + itoa(r.Priced) + " of " + itoa(r.Used) + " priced)"
	}
	return s
}

// diffText is the reported cost minus the estimate, signed: "+0.01 EUR".
func diffText(r ReportedCost) string {
	sign := "+"
	if r.Diff < 0 {
		sign = "−"
	}
	return sign + moneyText(math.Abs(r.Diff), r.Currency)
}

// moneyText writes an amount with at least two decimals, even when 0.
func moneyText(v float64, currency string) string {
	if v <= 0 {
		return strings.TrimSpace("0.00 " + currency)
	}
	return costText(math.Round(v*1e6)/1e6, currency)
}

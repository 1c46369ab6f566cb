// Package views holds the templ components of the inbox and the sandbox phone, and
// the plain view models they render. Handlers build the models; components only
// present them, so nothing here touches the store or the clock.
package views

import (
	"time"

	"sessiondesk/session"
)

// Chrome is what every page's frame needs.
type Chrome struct {
	Title     string
	AgentName string
	LocalMode bool   // the local dev login is in use: show the banner
	Sandbox   bool   // the sandbox channel is active: link to the phone
	IsAdmin   bool   // the agent is an admin: link to the admin pages
	CanReport bool   // the agent is a lead or an admin: link to the reports
	BasePath  string // prefix for every link, "" at the root
	LogoutURL string // the proxy's sign-out; "" hides the link
	// Unread is how many conversations have unread messages: the inbox's tab
	// title starts with it, "(3) Sessiondesk".
	Unread int
	// AgentID is the signed-in agent; Prefs their notification settings
	// (nil: no settings menu on this page); Path the page's own path, where
	// saving the settings comes back to.
	AgentID int64
	Prefs   *NotifyPrefs
	Path    string
	// Mentions is how many notes mention the agent unseen: the header's badge.
	Mentions int
	// Budget is the month's spend against the monthly budget, shown to
	// admins; nil for agents and when no budget is set.
	Budget *BudgetLine
}

// BudgetLine is the month's spend against the monthly budget.
type BudgetLine struct {
	Month    string // YYYY-MM
	Spend    float64
	Budget   float64
	Currency string
	Percent  float64
	// Reached is the highest warning threshold reached (80, 100), 0 for none.
	Reached int
}

// URL prefixes p with the base path.
func (c Chrome) URL(p string) string { return c.BasePath + p }

// ConversationRow is one line of the conversation list.
type ConversationRow struct {
	ID       int64
	Name     string
	Phone    string
	Preview  string // one line: the latest message's text, or its kind
	LastAt   time.Time
	Unread   int
	Selected bool
	Badge    SessionBadge
	// ActivityMS is the row's place in the list (last activity, Unix ms); with
	// the id it orders rows the same way the server does.
	ActivityMS int64
	// Status is open, pending, snoozed or resolved; Assignee the assignee's
	// name, "" when unassigned (the row shows the initials).
	Status   string
	Assignee string
	// LastInID is the client's newest message's id, 0 when none: the
	// script notifies when it grows, and the row is unread for an agent whose
	// mark (ReadMark, set on the agent's own page only) is below it.
	LastInID int64
	ReadMark int64
	// What places the row in the views: the assignee's id (0 none), the
	// unanswered run, and the latest session's end (Unix ms, 0 none).
	AssigneeID int64
	Unanswered int
	EndsMS     int64
	// Flags are what delivery reports said about the client (paid.go).
	Flags []ContactFlag
}

// ListLink is the list's next page: Cursor is "" on the last page.
type ListLink struct {
	Cursor string
	Href   string // the page without JS
	HX     string // the rows only, appended by htmx
}

// SessionBadge is the list's summary of a conversation's session.
type SessionBadge struct {
	Open    bool      // a session is open: show the time left
	EndsAt  time.Time // when the open session ends
	Locked  bool      // open, but waiting for the client's reply
	Never   bool      // the client never wrote (cannot happen for listed rows, kept for safety)
	NowUnix int64     // the server's time at render, in ms, for the countdown
}

// Message is one bubble of the thread.
type Message struct {
	ID         int64
	Out        bool   // sent by the business; false for the client's messages
	Kind       string // text, image or file
	Text       string
	At         time.Time
	Status     string // queued, sent, delivered, seen, failed, undelivered, expired; "" for inbound
	Reason     string // why it failed, when it did
	AgentName  string
	SessionNum int  // the session it counts in
	NewSession bool // the first message of its session: show a divider
	// Retrying says why a queued message has not gone out yet, after a failed try.
	Retrying string
	// RetryURL is where "Send again" posts for a failed message; "" hides it.
	RetryURL string
	// ArrivedURL and ResendURL are where "It arrived" and "Send again" post
	// for an unconfirmed message (Routee may or may not have it); "" hides them.
	ArrivedURL, ResendURL string
	// Attachment is the message's image or file; nil for text.
	Attachment *Attachment
	// Paid marks a paid message (outside a session); ReplyTo is the paid
	// message a client's message answers, 0 for none.
	Paid    *PaidBadge
	ReplyTo int64
}

// Attachment is an image or file in a bubble.
type Attachment struct {
	URL      string // the bytes; images open in the lightbox, files download
	ThumbURL string // a JPEG preview, for images
	Name     string
	Size     int64
	Type     string // e.g. PDF, PNG: for the file card
	Image    bool   // shown inline with its thumbnail
	Width    int
	Height   int
	// State is "pending" while a client's media downloads, "failed" when it
	// could not be; "" once stored.
	State string
	Error string
}

// Panel is the session panel on the right.
type Panel struct {
	ConversationID int64
	Status         session.Status
	MaxPerSession  int
	MaxUnanswered  int
	NowUnix        int64 // the server's time at render, in ms: the countdown runs from it (S10)
	Cost           float64
	Currency       string
	// Contact is the contact card, with its form.
	Contact ContactView
	// EndedUnanswered: the current session is over and the client's last
	// message in it went unanswered (case 9).
	EndedUnanswered bool
	// History is the sessions before the current one, the latest first.
	History []PastSession
	// Reported is what the provider reported the current session cost
	// (Cost is the estimate at the configured rates); nil without a session.
	Reported *ReportedCost
	// Paid is what reports said about the client and their last consent;
	// nil hides it.
	Paid *PaidPanel
}

// ReportedCost is what the provider reported a session cost, beside the
// estimate at the rates frozen when it was billed.
type ReportedCost struct {
	Amount   float64
	Currency string
	Priced   int // business messages the provider priced
	Used     int // business messages counted in the session
	Foreign  int // priced in another currency, not in Amount
	// Diff is Amount minus the estimate; Differs when by more than a rounding.
	Diff    float64
	Differs bool
	// PerMessage: the session is billed per message (an international client).
	PerMessage bool
}

// PastSession is one line of the panel's session history.
type PastSession struct {
	Number            int
	StartedAt, EndsAt time.Time
	Used              int
	Media             bool
	Cost              float64 // at the rates frozen when it was billed
	Currency          string
	Unanswered        bool // the client's last message went unanswered (case 9)
	Reported          *ReportedCost
}

// Composer is the reply form's state; Text and Error survive a refused send.
type Composer struct {
	ConversationID int64
	Status         session.Status
	MaxUnanswered  int
	MaxTextLen     int // the counter's limit; the server checks it again
	Text           string
	Error          *session.Refusal // the refusal of the last attempt, if any
	// OOB marks the form as an out-of-band swap, for answers aimed elsewhere
	// (a refused "Send again" shows its reason in the composer).
	OOB bool
	// Canned are the admins' canned replies, inserted into the draft on a click.
	Canned []Canned
	// Limits are what the server accepts in an attachment: the form carries
	// them so that the script refuses before uploading what would be refused.
	Limits AttachLimits
	// ContactName fills {{contact.name}} in canned replies (in the browser).
	ContactName string
}

// AttachLimits are the attachment rules the composer checks before sending;
// the server checks them again, by the bytes.
type AttachLimits struct {
	ImageMax, FileMax   int64    // bytes
	ImageWarn, FileWarn int64    // bytes above which the provider recommends less
	ImageTypes          []string // extensions sent as images, lower case without the dot
	FileTypes           []string // extensions a file may have
	NameMax             int      // the longest file name, in characters
}

// Canned is one canned reply.
type Canned struct {
	Title, Text string
}

// ThreadStatus is what the thread header says of a conversation's status and
// assignee. It is the same for every agent: live frames carry it to every
// page that shows the conversation.
type ThreadStatus struct {
	ConversationID int64
	Status         string    // open, pending, snoozed or resolved
	SnoozedUntil   time.Time // when a snoozed conversation reopens
	AssigneeLogin  string    // "" when unassigned
	AssigneeName   string
	AssigneeID     int64 // 0 when unassigned: the composer asks before sending into a colleague's
}

// ThreadActions are the header's forms: the status buttons, the snooze
// picker and the assignment. They post without JS; keys e, s, p and a press them.
type ThreadActions struct {
	StatusURL   string // POST: status (and the snooze time)
	AssigneeURL string // POST: assignee (a login, "" for nobody)
	MeLogin     string // the signed-in agent: "Assign to me"
	Agents      []Option
	UnreadURL   string // POST: mark as unread for the signed-in agent, back to the list
}

// ConversationView is the selected conversation: header, thread, panel and composer.
type ConversationView struct {
	ID       int64
	Name     string
	Phone    string
	Header   ThreadStatus
	Actions  ThreadActions
	Messages []Message
	Notes    []Note // the internal notes of the time the messages cover
	Panel    Panel
	Composer Composer
	Note     NoteComposer
	// Paid is the composer's paid message mode; nil hides it.
	Paid *PaidComposer
}

// InboxPage is the three-pane inbox.
type InboxPage struct {
	Chrome
	Rows        []ConversationRow
	ListBefore  string            // the list starts after this cursor; "" from the top
	ListMore    ListLink          // the next page of the list
	Selected    *ConversationView // nil when no conversation is open
	LastEventID int64             // the live stream resumes after this event
	// MaxMessageID is the newest message when the page was drawn: client
	// messages after it are news (the script notifies of them).
	MaxMessageID int64
	// Pane is what a phone (under 900 px) shows of the open conversation:
	// "contact" for the session panel, "" for the thread.
	Pane string
	// Nav is the sidebar of views with their counts; List what the list
	// shows, for the script that places live rows.
	Nav  ViewNav
	List ListScope
}

// ViewNav is the list's views with their live counts.
type ViewNav struct {
	Items []ViewItem
}

// ViewItem is one view of the sidebar.
type ViewItem struct {
	Name    string // mine, unassigned, all, waiting, expiring, locked, lost
	Label   string
	Count   int
	Href    string
	Current bool
	Key     string // the keyboard shortcut after "g", "" for none
}

// ListScope is what the list shows, so the script can tell whether a live
// row belongs in it, and where: the same rules as the server's query.
type ListScope struct {
	View          string
	Status        string // a status, or "any"
	Agent         int64  // the signed-in agent (Mine)
	ExpiringMS    int64  // Expiring's window
	MaxUnanswered int    // the S4 limit (Locked)
	Query         string // the view's query string, for "Load more" ("?view=...&status=...")
}

// SandboxClient is one simulated Viber user on the sandbox phone.
type SandboxClient struct {
	Name     string
	Phone    string
	Selected bool
}

// SandboxPage is the simulated Viber phone.
type SandboxPage struct {
	Chrome
	Clients     []SandboxClient
	Selected    *SandboxClient // the client being played; nil when none is picked
	Messages    []Message      // the selected client's chat
	LastEventID int64
	Error       string // a refused form, shown above it
	FormName    string // the values of a refused form
	FormPhone   string
	// NotViber: the phone plays the selected number as one without Viber.
	NotViber bool
}

// AdminTab names the admin page being shown, for the admin navigation.
type AdminTab string

// The admin pages.
const (
	AdminTabOverview AdminTab = "overview"
	AdminTabAudit    AdminTab = "audit"
	AdminTabSettings AdminTab = "settings"
	AdminTabTokens   AdminTab = "tokens"
	AdminTabPaid     AdminTab = "paid" // paid messages and SMS (paid_admin.templ)
)

// AuditRow is one line of the audit log.
type AuditRow struct {
	ID             int64
	At             time.Time
	Agent          string // "" for the system
	Token          string // the API token that acted, "" when none did
	Action         string
	ConversationID int64 // 0 when none; links to the conversation
	MessageID      int64
	Summary        string // one sentence of what changed
}

// Option is one choice of a filter's <select>.
type Option struct {
	Value    string
	Label    string
	Selected bool
}

// AdminHomePage is the admin overview.
type AdminHomePage struct {
	Chrome
	Rules        session.Settings
	Rates        session.Rates
	CannedCount  int
	ActiveTokens int
	Recent       []AuditRow
}

// AdminAuditPage is the audit log with its filters.
type AdminAuditPage struct {
	Chrome
	Rows     []AuditRow
	Actions  []Option
	Agents   []Option
	From     string // the filter's dates, YYYY-MM-DD as typed
	To       string
	Paged    bool   // this is not the first page
	FirstURL string // the first page with the same filters
	NextURL  string // the next (older) page; "" on the last
	CSVURL   string // the same filters as CSV
	Error    string // a filter that could not be read
}

// CannedReplyForm is one canned reply's fields as typed.
type CannedReplyForm struct {
	Title string
	Text  string
}

// SettingsForm is the settings form's fields as typed, so a refused form comes
// back with what the admin entered.
type SettingsForm struct {
	WindowHours   string
	MaxPerSession string
	MaxUnanswered string
	AfterCap      string // rollover or close
	TextMax       string
	RateText      string
	RateMedia     string
	Currency      string
	Canned        []CannedReplyForm // the saved replies, then empty rows to add more
	// Costs (issue 12): rates per country, one "DE 0.02 0.04" a line; the
	// sender's country; the international per-message rate; the budget.
	CountryRates      string
	SenderCountry     string
	RateInternational string
	MonthlyBudget     string
}

// AdminSettingsPage is the runtime settings form.
type AdminSettingsPage struct {
	Chrome
	Form  SettingsForm
	Saved bool   // the last post saved
	Error string // why the last post was refused
	// AutoAssign is the round-robin auto-assignment's switch.
	AutoAssign bool
}

// TokenRow is one API token in the list.
type TokenRow struct {
	ID         int64
	Name       string
	Prefix     string
	Role       string
	CreatedBy  string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never used
	RevokedAt  time.Time // zero: working
	RevokedBy  string
	RevokeURL  string // where the revoke form posts; "" once revoked
}

// AdminTokensPage lists the API tokens and creates new ones.
type AdminTokensPage struct {
	Chrome
	Tokens []TokenRow
	// NewSecret is a token just created: shown this once, never again.
	NewSecret string
	NewName   string
	FormName  string // the name of a refused form
	Error     string
}

package views

import (
	"strconv"
	"time"
)

// PaidComposer is the composer's "Paid message" mode: a normal (non-session)
// Viber message, billed per message, for when no session can take a reply.
type PaidComposer struct {
	ConversationID int64
	// Offered: no session can take a reply now, so the mode is offered.
	Offered bool
	Country string
	// Prices per route ("" when no price is set for the client's country).
	Currency                            string
	ViberPrice, FailoverPrice, SMSPrice string
	SMS, Promotional, RequireTemplate   bool
	Templates                           []PaidTemplate
	// Blocked says why no paid message can go (the client opted out or
	// blocked the business); NotViber that Routee said they have no Viber.
	Blocked  string
	NotViber bool
	// Warnings are the other flags, for people ("The client has no suitable device").
	Warnings []string
	// The last attempt: kept when the server asks to confirm or refuses.
	Text, ImageURL, ButtonCaption, ButtonURL, Route string
	TemplateID                                      int64
	// Confirm is the price to confirm before the message goes.
	Confirm *PaidQuote
	Error   string
	Sent    bool
	OOB     bool
}

// PaidTemplate is an approved text the agent may pick.
type PaidTemplate struct {
	ID   int64
	Name string
	Body string
}

// PaidQuote is a price the agent must confirm.
type PaidQuote struct {
	Price    string // e.g. "0.031 EUR"
	Amount   string // the number alone, sent back with the confirmation
	Route    string
	RouteTxt string // "a paid Viber message", ...
}

// PaidBadge marks a paid message in the thread.
type PaidBadge struct {
	Label                    string // "Paid Viber message", "Paid · Viber, then SMS", "Paid SMS"
	Carried                  string // "Carried by SMS" once the report says; ""
	Price                    string // Routee's price, or the quoted one until reported
	ImageURL                 string
	ButtonCaption, ButtonURL string
}

// ContactFlag is a delivery report's word about the client.
type ContactFlag struct {
	Flag, Text, Reason string
	SetAt              time.Time
	ClearURL           string // "" unless the agent is an admin
}

// PaidPanel is the contact panel's part about reaching the client outside a
// session: flags, and the last consent with its export.
type PaidPanel struct {
	Flags     []ContactFlag
	ConsentAt time.Time // zero: the client never wrote
	Consent   string    // what they wrote (or its kind)
	ExportURL string
}

// ReconcileResult is what "Check with Routee" found.
type ReconcileResult struct {
	Checked        int
	Changes        []string
	Missing        int
	Skipped        int
	RouteeSessions int
	OurSessions    int
	Unknown        int
	Errors         []string
}

// PriceText writes a price and currency for people.
func PriceText(v float64, currency string) string {
	return strconv.FormatFloat(v, 'f', -1, 64) + " " + currency
}

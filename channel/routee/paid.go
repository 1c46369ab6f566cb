package routee

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"sessiondesk/channel"
	"sessiondesk/store"
)

// Paid messages: sent when no session is open, billed per message
// (spec/routee.md, "Messages outside a session" and "Failover").
//
//   - Viber: POST {api}/viber as a session message but without
//     isSessionMessage; the body may carry text, imageURL and viberAction (one
//     button: caption and targetUrl).
//   - Failover: POST {api}/failover with ordered steps, Viber first and then
//     SMS on UNDELIVERED, EXPIRED or FAILED. The Viber step's ttl is in minutes.
//   - SMS: POST {api}/sms.
//
// All three report to the same callbackUrl; their reports also carry the
// price, and a failover's the channel that finally carried it
// (terminationChannel), its steps (messages[]) and totalPrice. ParsePaid reads
// those; the fake Routee (fakeroutee) speaks the same shapes, kept beside this
// file's so the two cannot drift apart.

// Failover statuses that move a failover on to its next step.
var (
	ViberFailoverOn = []string{"UNDELIVERED", "EXPIRED", "FAILED"}
)

// callbackSpec is the callback object of the SMS and failover APIs.
type callbackSpec struct {
	URL      string `json:"url"`
	Strategy string `json:"strategy"` // OnChange: every status change
}

// paidViberBody is the body of a non-session Viber message.
type paidViberBody struct {
	Text        string       `json:"text"`
	ImageURL    string       `json:"imageURL,omitempty"`
	ViberAction *viberAction `json:"viberAction,omitempty"`
}

type viberAction struct {
	Caption   string `json:"caption"`
	TargetURL string `json:"targetUrl"`
}

// paidViberRequest is POST /viber without isSessionMessage (left out, not
// false: Routee's default is a normal business message).
type paidViberRequest struct {
	SenderInfoTrackingID string        `json:"senderInfoTrackingId"`
	To                   string        `json:"to"`
	Body                 paidViberBody `json:"body"`
	TTL                  int           `json:"ttl"`
	CallbackURL          string        `json:"callbackUrl"`
	InboundURL           string        `json:"inboundUrl"`
	Label                string        `json:"label"`
}

type smsRequest struct {
	Body     string       `json:"body"`
	To       string       `json:"to"`
	From     string       `json:"from"`
	Label    string       `json:"label"`
	Callback callbackSpec `json:"callback"`
}

// failoverStep is one step of POST /failover.
type failoverStep struct {
	Type               string   `json:"type"` // Viber or Sms
	Order              int      `json:"order"`
	From               string   `json:"from"`
	Body               any      `json:"body"` // paidViberBody for Viber, the text for Sms
	TTL                float64  `json:"ttl,omitempty"`
	InboundURL         string   `json:"inboundUrl,omitempty"`
	FailoverOnStatuses []string `json:"failoverOnStatuses,omitempty"`
}

type failoverRequest struct {
	To       string         `json:"to"`
	Label    string         `json:"label"`
	Callback callbackSpec   `json:"callback"`
	Messages []failoverStep `json:"messages"`
}

// failoverTTL is the Viber step's ttl in minutes (0.5 to 1440).
func (c *Client) failoverTTL() float64 {
	return math.Min(math.Max(float64(c.ttl)/60, 0.5), 1440)
}

// paidPayload builds the request of a paid message: its endpoint and body.
func (c *Client) paidPayload(msg store.Outgoing) (string, []byte, error) {
	reject := func(format string, args ...any) error {
		return &channel.RejectedError{Reason: fmt.Sprintf(format, args...)}
	}
	p := msg.Paid
	if !e164.MatchString(msg.Phone) {
		return "", nil, reject("the phone number %q is not in E.164 form", msg.Phone)
	}
	if strings.TrimSpace(msg.Body) == "" {
		return "", nil, reject("the text is empty")
	}
	if n := utf8.RuneCountInString(msg.Body); n > maxTextLen {
		return "", nil, reject("the text has %d characters, more than %d", n, maxTextLen)
	}
	body := paidViberBody{Text: msg.Body}
	if p.ImageURL != "" {
		if err := checkMediaURL(p.ImageURL); err != nil {
			return "", nil, reject("image: %s", err)
		}
		body.ImageURL = p.ImageURL
	}
	if p.ButtonURL != "" {
		if u, err := url.Parse(p.ButtonURL); err != nil || u.Scheme != "https" || u.Host == "" {
			return "", nil, reject("the button link must be an absolute https URL")
		}
		body.ViberAction = &viberAction{Caption: p.ButtonCaption, TargetURL: p.ButtonURL}
	}
	label := strconv.FormatInt(msg.ID, 10)
	cb := callbackSpec{URL: c.callbackURL, Strategy: "OnChange"}
	var target string
	var req any
	switch p.Route {
	case store.RouteViber:
		target = c.viberURL
		req = paidViberRequest{SenderInfoTrackingID: c.senderID, To: msg.Phone, Body: body, TTL: c.ttl,
			CallbackURL: c.callbackURL, InboundURL: c.inboundURL, Label: label}
	case store.RouteSMS:
		if strings.TrimSpace(p.SMSFrom) == "" {
			return "", nil, reject("no SMS sender is set")
		}
		target = c.apiURL + "/sms"
		req = smsRequest{Body: msg.Body, To: msg.Phone, From: p.SMSFrom, Label: label, Callback: cb}
	case store.RouteFailover:
		if strings.TrimSpace(p.SMSFrom) == "" {
			return "", nil, reject("no SMS sender is set")
		}
		target = c.apiURL + "/failover"
		req = failoverRequest{To: msg.Phone, Label: label, Callback: cb, Messages: []failoverStep{
			{Type: "Viber", Order: 1, From: c.senderID, Body: body, TTL: c.failoverTTL(), InboundURL: c.inboundURL,
				FailoverOnStatuses: ViberFailoverOn},
			{Type: "Sms", Order: 2, From: p.SMSFrom, Body: msg.Body},
		}}
	default:
		return "", nil, reject("unknown route %q of a paid message", p.Route)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		return "", nil, fmt.Errorf("routee: encode paid message %d: %w", msg.ID, err)
	}
	return target, buf.Bytes(), nil
}

// Step is one step of a failover as its report lists it.
type Step struct {
	Channel string   // "viber" or "sms"
	Status  string   // a store status; "" when unknown
	Reason  string   // the step's detailed status
	Price   *float64 // nil when not given
}

// PaidDelivery is what a report says beyond the status: the channel that
// finally carried the message, its price (failover: totalPrice), and every
// reason any step gave (for the contact's flags).
type PaidDelivery struct {
	FinalChannel string
	Price        *float64
	Reasons      []string
	Steps        []Step
}

// ParsePaid reads the price and channel parts of a status report or a
// tracking record (spec/routee.md): "price", "totalPrice",
// "terminationChannel", "originatingService" and a failover's "messages"
// (each with its "type", "status", "reason" and "price"). Anything missing
// stays empty; it fails only for a body that is not a JSON object.
func ParsePaid(body []byte) (PaidDelivery, error) {
	f, err := decodeObject(body)
	if err != nil {
		return PaidDelivery{}, fmt.Errorf("routee report: %w", err)
	}
	var d PaidDelivery
	d.FinalChannel = channelName(f.str("terminationChannel"))
	d.Price = number(f.str("totalPrice"))
	if d.Price == nil {
		d.Price = number(f.str("price"))
	}
	if r := reasonOf(f["status"], f["reason"]); r != "" {
		d.Reasons = append(d.Reasons, r)
	}
	if steps, ok := f["messages"].([]any); ok {
		for _, raw := range steps {
			obj, ok := raw.(map[string]any)
			if !ok {
				continue
			}
			sf := fields(obj)
			st := Step{Channel: channelName(firstNonEmpty(sf.str("type"), sf.str("channel"))), Price: number(sf.str("price"))}
			name := sf.str("status")
			if m, ok := obj["status"].(map[string]any); ok {
				name = firstNonEmpty(fields(m).str("name"), fields(m).str("status"))
			}
			st.Status = routeeStatuses[strings.ToLower(strings.TrimSpace(name))]
			st.Reason = reasonOf(obj["status"], obj["reason"])
			if st.Reason != "" {
				d.Reasons = append(d.Reasons, st.Reason)
			}
			d.Steps = append(d.Steps, st)
		}
	}
	if d.FinalChannel == "" && len(d.Steps) == 0 {
		d.FinalChannel = channelName(f.str("originatingService"))
	}
	return d, nil
}

// reasonOf reads a reason, in the status object or beside it.
func reasonOf(status, reason any) string {
	if m, ok := status.(map[string]any); ok && reason == nil {
		reason = m["reason"]
	}
	switch r := reason.(type) {
	case map[string]any:
		rf := fields(r)
		return joinReason(strings.TrimSpace(rf.str("detailedStatus")), strings.TrimSpace(rf.str("description")))
	case string:
		return strings.TrimSpace(r)
	}
	return ""
}

func channelName(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "viber":
		return "viber"
	case "sms":
		return "sms"
	}
	return ""
}

func number(v string) *float64 {
	if v == "" {
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return nil
	}
	return &f
}

// Tracking is one message's record at Routee.
type Tracking struct {
	Report StatusReport
	Paid   PaidDelivery
	// SessionMessage: Routee counts it as a session message.
	SessionMessage bool
}

// Track asks GET /viber/tracking/{trackingId}; found is false on 404.
func (c *Client) Track(ctx context.Context, trackingID string) (Tracking, bool, error) {
	u := c.viberURL + "/tracking/" + url.PathEscape(trackingID)
	status, body, _, err := c.call(ctx, http.MethodGet, u, nil)
	switch {
	case err != nil:
		return Tracking{}, false, fmt.Errorf("routee: tracking of %s: %w", trackingID, err)
	case status == http.StatusNotFound:
		return Tracking{}, false, nil
	case status < 200 || status > 299:
		return Tracking{}, false, fmt.Errorf("routee: tracking of %s: answered %s: %s", trackingID, statusText(status), excerpt(body))
	}
	rep, err := ParseStatus(body)
	if err != nil {
		return Tracking{}, false, fmt.Errorf("routee: tracking of %s: %w", trackingID, err)
	}
	d, _ := ParsePaid(body) // the same object parsed
	f, _ := decodeObject(body)
	return Tracking{Report: rep, Paid: d, SessionMessage: f.str("sessionMessage") == "true"}, true, nil
}

// RouteeSession is one session Routee lists for a number.
type RouteeSession struct {
	ID string
	// TrackingIDs are its outbound messages' tracking ids, in Routee's order.
	TrackingIDs []string
	Messages    int // every message listed, both directions
}

// Sessions lists a number's sessions at Routee (POST /viber/session), newest
// first, up to a few pages.
func (c *Client) Sessions(ctx context.Context, phone string) ([]RouteeSession, error) {
	var out []RouteeSession
	for page := 0; page < lookupPages; page++ {
		ss, last, err := c.sessions(ctx, phone, page)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			rs := RouteeSession{ID: s.SessionID, Messages: len(s.Messages)}
			for _, m := range s.Messages {
				if strings.EqualFold(m.Direction, "outbound") && m.TrackingID != "" {
					rs.TrackingIDs = append(rs.TrackingIDs, m.TrackingID)
				}
			}
			out = append(out, rs)
		}
		if last {
			break
		}
	}
	return out, nil
}

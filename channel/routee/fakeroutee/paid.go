package fakeroutee

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// Paid messages (spec/routee.md, "Messages outside a session" and
// "Failover"): POST /viber without isSessionMessage, POST /failover (Viber,
// then SMS) and POST /sms, with their reports. The shapes match the routee
// client's (channel/routee/paid.go); where Routee's pages did not confirm a
// field, both are kept to the one spelling the client sends, and checked.

// The prices the fake reports unless SetPrices changes them.
const (
	DefaultViberPrice = 0.02
	DefaultSMSPrice   = 0.05
)

// failoverStatuses are the statuses a Viber step may fail over on.
var failoverStatuses = map[string]bool{"EXPIRED": true, "FAILED": true, "UNDELIVERED": true}

// SetPaidPrices sets what a paid Viber message and an SMS cost in reports.
func (s *Server) SetPaidPrices(viber, sms float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.viberPrice, s.smsPrice = viber, sms
}

// NotViberUser makes phone a number without Viber (on) or with it again.
// Settle then reports "Not Viber User" for its Viber messages, and a
// failover's SMS step.
func (s *Server) NotViberUser(phone string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.notViber[phone] = true
	} else {
		delete(s.notViber, phone)
	}
}

// IsNotViberUser reports whether NotViberUser marked phone.
func (s *Server) IsNotViberUser(phone string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notViber[phone]
}

// SetStatus changes what Routee knows of a message (the tracking lookup
// answers it) without posting a callback: a status report that was lost.
// It returns the message as it is now; zero for an unknown tracking id.
func (s *Server) SetStatus(trackingID, status, reason string) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.byTracking[trackingID]
	if !ok {
		return Message{}
	}
	m := &s.messages[i]
	m.Status, m.Reason = status, reason
	m.Price = s.priceLocked(*m, status)
	return *m
}

// billed reports the statuses after which a paid message is charged.
func billed(status string) bool {
	switch strings.ToLower(status) {
	case "sent", "delivered", "seen":
		return true
	}
	return false
}

func (s *Server) priceLocked(m Message, status string) float64 {
	switch {
	case m.Session || !billed(status):
		return 0
	case m.Route == "sms":
		return s.smsPrice
	}
	return s.viberPrice
}

// priceOf is what a report about m with status says it cost.
func (s *Server) priceOf(m Message, status string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.priceLocked(m, status)
}

// statusObject is a message's status as the lookups list it.
func statusObject(m Message) map[string]any {
	st := m.Status
	if st == "" {
		st = "Queued"
	}
	obj := map[string]any{"status": st, "date": formatTime(m.At)}
	if m.Reason != "" {
		obj["reason"] = map[string]string{"detailedStatus": m.Reason, "description": ""}
	}
	return obj
}

// parsePaidBody checks the body of a paid (non-session) Viber message: text,
// optionally with imageURL and one button (viberAction: caption and an https
// targetUrl); or an image or a file alone.
func parsePaidBody(m *Message, body map[string]json.RawMessage, bad func(string, ...any)) {
	for _, k := range sortedKeys(body) {
		switch k {
		case "text", "imageURL", "viberAction":
		default:
			bad("body: unsupported field %q (a paid message here carries text, imageURL and viberAction)", k)
		}
	}
	v, ok := str(body, "text")
	if n := utf8.RuneCountInString(v); !ok || n < 1 || n > 1000 {
		bad("body.text must have 1 to 1000 characters, has %d", n)
	} else {
		m.Text = v
	}
	if _, has := body["imageURL"]; has {
		u, ok := str(body, "imageURL")
		switch {
		case !ok || !absoluteURL(u):
			bad("body.imageURL is not an absolute http(s) URL")
		case utf8.RuneCountInString(u) > 1000:
			bad("body.imageURL has more than 1000 characters")
		default:
			m.ImageURL = u
		}
		if _, btn := body["viberAction"]; !btn {
			bad("Invalid viber message type combination: text and image without a button")
		}
	}
	if raw, has := body["viberAction"]; has {
		action, err := object(raw)
		if err != nil {
			bad("body.viberAction is not an object")
			return
		}
		for _, k := range sortedKeys(action) {
			if k != "caption" && k != "targetUrl" {
				bad("body.viberAction: unknown field %q", k)
			}
		}
		caption, _ := str(action, "caption")
		target, _ := str(action, "targetUrl")
		switch n := utf8.RuneCountInString(caption); {
		case n < 1 || n > 30:
			bad("body.viberAction.caption must have 1 to 30 characters, has %d", n)
		case !strings.HasPrefix(target, "https://") || !absoluteURL(target):
			bad("body.viberAction.targetUrl must be an absolute https URL")
		default:
			m.ButtonCaption, m.ButtonURL = caption, target
		}
	}
}

// readJSON reads an API request's JSON object, or answers 400 and records the
// violation.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, what string) (map[string]json.RawMessage, bool) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if !s.authorized(w, r, what) {
		return nil, false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		s.violation("%s: Content-Type %q, want application/json", what, r.Header.Get("Content-Type"))
		writeError(w, http.StatusBadRequest, "400001", "application/json expected")
		return nil, false
	}
	top, perr := object(raw)
	if err != nil || perr != nil {
		s.violation("%s: the body is not a JSON object", what)
		writeError(w, http.StatusBadRequest, "400001", "the body is not a JSON object")
		return nil, false
	}
	return top, true
}

// checkCallback reads the callback object of the SMS and failover APIs.
func checkCallback(top map[string]json.RawMessage, bad func(string, ...any)) string {
	cb, err := object(top["callback"])
	if err != nil {
		bad("callback is missing or not an object")
		return ""
	}
	u, _ := str(cb, "url")
	strategy, _ := str(cb, "strategy")
	if !absoluteURL(u) {
		bad("callback.url is not an absolute http(s) URL")
	}
	if strategy != "OnChange" && strategy != "OnCompletion" {
		bad("callback.strategy %q is not OnChange or OnCompletion", strategy)
	}
	for _, k := range sortedKeys(cb) {
		if k != "url" && k != "strategy" {
			bad("callback: unknown field %q", k)
		}
	}
	return u
}

// serveSMS is POST /sms: {"body", "to", "from", "label", "callback": {"url", "strategy"}}.
func (s *Server) serveSMS(w http.ResponseWriter, r *http.Request) {
	top, ok := s.readJSON(w, r, "POST /sms")
	if !ok {
		return
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	m := Message{Route: "sms", Carrier: "Sms"}
	for _, k := range sortedKeys(top) {
		switch k {
		case "body", "to", "from", "label", "callback":
		default:
			bad("unknown field %q", k)
		}
	}
	m.Text, _ = str(top, "body")
	if n := utf8.RuneCountInString(m.Text); n < 1 || n > 1000 {
		bad("body must have 1 to 1000 characters, has %d", n)
	}
	if m.To, _ = str(top, "to"); !e164.MatchString(m.To) {
		bad("to %q is not an E.164 number", m.To)
	}
	if m.SMSFrom, _ = str(top, "from"); strings.TrimSpace(m.SMSFrom) == "" {
		bad("from is missing")
	}
	if m.Label, _ = str(top, "label"); m.Label == "" {
		bad("label is missing")
	}
	m.CallbackURL = checkCallback(top, bad)
	s.accept(w, "POST /sms", m, problems)
}

// serveFailover is POST /failover: {"to", "label", "callback", "messages":
// [{"type": "Viber", "order": 1, "from", "body": {...}, "ttl" (minutes),
// "inboundUrl", "failoverOnStatuses"}, {"type": "Sms", "order": 2, "from",
// "body": "text"}]}.
func (s *Server) serveFailover(w http.ResponseWriter, r *http.Request) {
	top, ok := s.readJSON(w, r, "POST /failover")
	if !ok {
		return
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	m := Message{Route: "failover", Carrier: "Viber"}
	for _, k := range sortedKeys(top) {
		switch k {
		case "to", "label", "callback", "messages":
		default:
			bad("unknown field %q", k)
		}
	}
	if m.To, _ = str(top, "to"); !e164.MatchString(m.To) {
		bad("to %q is not an E.164 number", m.To)
	}
	if m.Label, _ = str(top, "label"); m.Label == "" {
		bad("label is missing")
	}
	m.CallbackURL = checkCallback(top, bad)
	var steps []map[string]json.RawMessage
	if err := json.Unmarshal(top["messages"], &steps); err != nil || len(steps) == 0 {
		bad("messages must be a non-empty list of steps")
	}
	for i, st := range steps {
		var typ string
		var order int
		typ, _ = str(st, "type")
		if err := json.Unmarshal(st["order"], &order); err != nil || order != i+1 {
			bad("messages[%d].order must be %d", i, i+1)
		}
		from, _ := str(st, "from")
		if strings.TrimSpace(from) == "" {
			bad("messages[%d].from is missing", i)
		}
		var on []string
		if raw, has := st["failoverOnStatuses"]; has {
			if err := json.Unmarshal(raw, &on); err != nil {
				bad("messages[%d].failoverOnStatuses must be a list", i)
			}
			for _, v := range on {
				if !failoverStatuses[v] {
					bad("messages[%d].failoverOnStatuses: %q is not EXPIRED, FAILED or UNDELIVERED", i, v)
				}
			}
		}
		switch typ {
		case "Viber":
			if i != 0 {
				bad("messages[%d]: the Viber step must come first", i)
			}
			for _, k := range sortedKeys(st) {
				switch k {
				case "type", "order", "from", "body", "ttl", "inboundUrl", "failoverOnStatuses":
				default:
					bad("messages[%d]: unknown field %q", i, k)
				}
			}
			m.From, m.FailoverOn = from, strings.Join(on, ",")
			body, err := object(st["body"])
			if err != nil {
				bad("messages[%d].body is not an object", i)
				continue
			}
			parsePaidBody(&m, body, bad)
			var ttl float64
			if err := json.Unmarshal(st["ttl"], &ttl); err != nil || ttl < 0.5 || ttl > 1440 {
				bad("messages[%d].ttl must be 0.5 to 1440 minutes", i)
			}
			m.TTL = int(ttl * 60)
			if u, has := str(st, "inboundUrl"); has {
				if !absoluteURL(u) {
					bad("messages[%d].inboundUrl is not an absolute http(s) URL", i)
				}
				m.InboundURL = u
			}
		case "Sms":
			for _, k := range sortedKeys(st) {
				switch k {
				case "type", "order", "from", "body", "failoverOnStatuses":
				default:
					bad("messages[%d]: unknown field %q", i, k)
				}
			}
			text, ok := str(st, "body")
			if n := utf8.RuneCountInString(text); !ok || n < 1 || n > 1000 {
				bad("messages[%d].body must be a text of 1 to 1000 characters", i)
			}
			m.SMSFrom = from
		default:
			bad("messages[%d].type %q is not Viber or Sms", i, typ)
		}
	}
	s.accept(w, "POST /failover", m, problems)
}

// accept records a paid SMS or failover message and answers with its
// trackingId, or answers 400 with the problems.
func (s *Server) accept(w http.ResponseWriter, what string, m Message, problems []string) {
	if len(problems) > 0 {
		s.violation("%s: %s", what, strings.Join(problems, "; "))
		writeError(w, http.StatusBadRequest, "400001", strings.Join(problems, "; "))
		return
	}
	m.TrackingID, m.At, m.Status = newUUID(), s.now().UTC(), "Queued"
	s.mu.Lock()
	s.byTracking[m.TrackingID] = len(s.messages)
	s.messages = append(s.messages, m)
	s.counts[m.Label]++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"trackingId": m.TrackingID, "to": m.To, "label": m.Label, "status": "Queued",
		"createdAt": formatTime(m.At), "country": country(m.To),
	})
}

// FailoverPayload is the report of a failover message: viberStatus (and
// viberReason) for the Viber step and, when it failed over, smsStatus for
// the SMS step ("" when the SMS step was not taken). It carries messages[]
// (one per step taken, each with its price), terminationChannel, the final
// status and totalPrice.
func (s *Server) FailoverPayload(trackingID, viberStatus, viberReason, smsStatus string) ([]byte, error) {
	m, ok := s.message(trackingID)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTrackingID, trackingID)
	}
	s.mu.Lock()
	vp, sp := s.viberPrice, s.smsPrice
	s.mu.Unlock()
	step := func(typ, status, reason string, price float64) map[string]any {
		if !billed(status) {
			price = 0
		}
		return map[string]any{"type": typ, "status": map[string]any{"name": status,
			"reason": map[string]string{"detailedStatus": reason, "description": ""}}, "price": price}
	}
	steps := []map[string]any{step("Viber", viberStatus, viberReason, vp)}
	final, reason, term := viberStatus, viberReason, "Viber"
	if smsStatus != "" {
		if !slices.Contains(strings.Split(m.FailoverOn, ","), strings.ToUpper(viberStatus)) {
			return nil, fmt.Errorf("fakeroutee: a Viber step %s does not fail over (failoverOnStatuses %q)", viberStatus, m.FailoverOn)
		}
		steps = append(steps, step("Sms", smsStatus, "", sp))
		final, reason, term = smsStatus, "", "Sms"
	}
	total := 0.0
	for _, st := range steps {
		total += st["price"].(float64)
	}
	return json.Marshal(map[string]any{
		"trackingId": m.TrackingID, "to": m.To, "label": m.Label, "country": country(m.To),
		"status": map[string]any{"name": final, "reason": map[string]string{"detailedStatus": reason, "description": ""},
			"updatedDate": formatTime(s.now())},
		"terminationChannel": term, "totalPrice": total, "messages": steps,
		"direction": "Outbound", "createdAt": formatTime(m.At),
	})
}

// ReportFailover posts FailoverPayload to the message's callback URL and
// keeps the outcome for the lookups.
func (s *Server) ReportFailover(ctx context.Context, trackingID, viberStatus, viberReason, smsStatus string) error {
	payload, err := s.FailoverPayload(trackingID, viberStatus, viberReason, smsStatus)
	if err != nil {
		return err
	}
	var rep struct {
		TotalPrice float64 `json:"totalPrice"`
		Term       string  `json:"terminationChannel"`
	}
	_ = json.Unmarshal(payload, &rep)
	s.mu.Lock()
	m := &s.messages[s.byTracking[trackingID]]
	m.Status, m.Reason, m.Price, m.Carrier = viberStatus, viberReason, rep.TotalPrice, rep.Term
	if smsStatus != "" {
		m.Status, m.Reason = smsStatus, ""
	}
	url := m.CallbackURL
	s.mu.Unlock()
	return s.post(ctx, url, payload)
}

// smsPayload is Routee's SMS report; it names the message by trackingId and
// messageId (both spellings are seen) and its label.
func (s *Server) smsPayload(m Message, status string) ([]byte, error) {
	return json.Marshal(map[string]any{
		"trackingId": m.TrackingID, "messageId": m.TrackingID, "to": m.To, "from": m.SMSFrom, "label": m.Label,
		"country": country(m.To), "status": map[string]any{"name": status, "updatedDate": formatTime(s.now())},
		"price": m.Price, "originatingService": "Sms", "direction": "Outbound", "createdAt": formatTime(m.At),
	})
}

// Settle plays what Routee does next with a message: delivered, or for a
// number NotViberUser marked, its Viber message fails with "Not Viber User"
// and a failover goes on to the SMS step, which is delivered. An SMS is
// delivered either way. It posts the report to the message's callback URL.
func (s *Server) Settle(ctx context.Context, trackingID string) error {
	m, ok := s.message(trackingID)
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownTrackingID, trackingID)
	}
	notViber := s.IsNotViberUser(m.To)
	switch {
	case m.Route == "failover" && notViber:
		return s.ReportFailover(ctx, trackingID, "Undelivered", "Not Viber User", "Delivered")
	case m.Route == "failover":
		return s.ReportFailover(ctx, trackingID, "Delivered", "", "")
	case m.Route == "sms":
		m = s.SetStatus(trackingID, "Delivered", "")
		payload, err := s.smsPayload(m, "Delivered")
		if err != nil {
			return err
		}
		return s.post(ctx, m.CallbackURL, payload)
	case notViber:
		return s.ReportStatus(ctx, trackingID, "Failed", "Not Viber User")
	}
	return s.ReportStatus(ctx, trackingID, "Delivered", "")
}

// viberRecord tells the messages POST /viber took: only those are Viber
// tracking records and listed in sessions.
func viberRecord(m Message) bool { return m.Route == "" || m.Route == "viber" }

// service is the originatingService of a message's reports.
func service(m Message) string {
	if m.Route == "sms" {
		return "Sms"
	}
	return "Viber"
}

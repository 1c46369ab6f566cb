// Package fakeroutee is a fake Routee that speaks Routee's documented wire
// format (spec/routee.md) over real HTTP: the OAuth token endpoint, the Viber
// session message endpoint, and the two webhooks Routee posts back (status
// reports and the clients' replies).
//
// Tests use it to check the routee client end to end; the product serves it
// in-process as the built-in sandbox provider. It checks every request
// strictly against the documented shape and records what is wrong in
// Violations, so a test can assert that the client never sent anything
// malformed. Knobs simulate misbehaviour: an outage (SetDown), failures
// (FailNext), slowness (SetDelay), revoked tokens (RevokeTokens), numbers
// that are refused (RejectTo), a message taken but its answer lost
// (AcceptThen), a request read and dropped (DropNext) and failing lookups
// (FailLookups). It also answers Routee's two lookups, the session list of a
// number and the tracking record of a message.
//
// A Server is safe for concurrent use: the knobs may be turned while it serves.
package fakeroutee

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Options configure a Server.
type Options struct {
	AppID, AppSecret string           // the only client credentials accepted (none when AppID is "")
	TokenTTL         time.Duration    // life of an access token; default 1 h
	Now              func() time.Time // the clock of token expiry and timestamps; default time.Now
	HTTPClient       *http.Client     // for the callbacks; default a client with a 10 s timeout
	// Prices are what each message costs, by the ISO country of its number,
	// with "" for any other country; reported as "price" in the status
	// callbacks and the tracking record. A country with no price (and no ""
	// entry) gets callbacks without one, as before any price is set.
	Prices map[string]float64
	// Currency, when set, is named as "currency" beside the price (Routee's
	// documented callback names none: the account's currency is implied).
	Currency string
}

// Message is a session message the fake accepted.
type Message struct {
	TrackingID  string
	To          string
	Label       string
	Text        string // set for a text message
	ImageURL    string // set for an image
	FileName    string // FileName, FileType and FileURL are set for a file
	FileType    string
	FileURL     string
	CallbackURL string
	InboundURL  string
	From        string // senderInfoTrackingId
	TTL         int    // seconds (for a failover's Viber step: minutes × 60)
	At          time.Time
	// Session is false for a paid (non-session) message: POST /viber without
	// isSessionMessage, a failover or an SMS.
	Session bool
	// ButtonCaption and ButtonURL are a paid Viber message's viberAction.
	ButtonCaption, ButtonURL string
	// Route is "viber" (POST /viber), "failover" (POST /failover) or "sms"
	// (POST /sms); SMSFrom is the SMS step's or message's sender, and
	// FailoverOn the Viber step's failoverOnStatuses, joined with commas.
	Route      string
	SMSFrom    string
	FailoverOn string
	// Status, Reason and Price are what Routee knows now (what the tracking
	// lookup answers); Carrier is the channel that carried it ("Viber" or "Sms").
	Status, Reason, Carrier string
	Price                   float64
}

// Inbound is a client's message, for SendInbound and InboundPayload.
type Inbound struct {
	From, To, Text, MediaURL, FileName string
	SentAt                             time.Time // zero: Options.Now at the time of the call
	// ReferenceTrackingID names the business message this one answers (a
	// reply to a paid message); "" for none.
	ReferenceTrackingID string
}

// DownMode is how the server behaves while it is down.
type DownMode int

const (
	// Unavailable answers every request 503 with an error JSON (the default).
	Unavailable DownMode = iota
	// Hangup closes the connection without an answer.
	Hangup
)

// AfterAccept is what the server does after it recorded a message, for AcceptThen.
type AfterAccept int

const (
	// Answer answers normally (the default).
	Answer AfterAccept = iota
	// Hang gives no answer until the client gives up (its timeout).
	Hang
	// ServerError answers with the status given to AcceptThen (a 5xx).
	ServerError
	// Drop closes the connection without an answer.
	Drop
)

// ErrUnknownTrackingID is returned for a tracking id the fake never issued.
var ErrUnknownTrackingID = errors.New("fakeroutee: unknown tracking id")

// maxViolations bounds the violations kept (the oldest go first), so the
// in-process sandbox cannot grow without limit.
const maxViolations = 1000

const maxRequestBody = 1 << 20

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// fileTypes are the file extensions a Viber session may carry.
var fileTypes = map[string]bool{
	"doc": true, "docx": true, "rtf": true, "dot": true, "dotx": true, "odt": true, "odf": true, "fodt": true,
	"txt": true, "info": true, "pdf": true, "xps": true, "pdax": true, "eps": true, "xls": true, "xlsx": true,
	"ods": true, "fods": true, "csv": true, "xlsm": true, "xltx": true,
}

type rejection struct{ code, reason string }

// Server is a fake Routee. Create one with New and serve Handler.
type Server struct {
	appID, appSecret string
	tokenTTL         time.Duration
	now              func() time.Time
	client           *http.Client
	handler          http.Handler

	mu           sync.Mutex
	tokens       map[string]time.Time // access token → expiry
	tokensIssued int
	down         bool
	downMode     DownMode
	failN        int
	failStatus   int
	afterN       int
	after        AfterAccept
	afterStatus  int
	dropN        int
	lookupFailN  int
	lookupStatus int
	listLabels   bool
	notViber     map[string]bool // numbers that are not Viber users (paid.go)
	viberPrice   float64         // the price of a paid Viber message
	smsPrice     float64         // the price of an SMS
	delay        time.Duration
	prices       map[string]float64
	currency     string
	rejects      map[string]rejection // by phone number
	messages     []Message
	byTracking   map[string]int // tracking id → index in messages
	counts       map[string]int // label → acceptances
	violations   []string
}

// New returns a fake Routee.
func New(opts Options) *Server {
	s := &Server{
		appID:      opts.AppID,
		appSecret:  opts.AppSecret,
		tokenTTL:   opts.TokenTTL,
		now:        opts.Now,
		client:     opts.HTTPClient,
		tokens:     make(map[string]time.Time),
		rejects:    make(map[string]rejection),
		byTracking: make(map[string]int),
		counts:     make(map[string]int),
		prices:     maps.Clone(opts.Prices),
		currency:   opts.Currency,
		notViber:   make(map[string]bool),
		viberPrice: DefaultViberPrice,
		smsPrice:   DefaultSMSPrice,
	}
	if s.tokenTTL <= 0 {
		s.tokenTTL = time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", s.serveToken)
	mux.HandleFunc("POST /viber", s.serveViber)
	mux.HandleFunc("POST /viber/session", s.serveSessions)
	mux.HandleFunc("GET /viber/tracking/{trackingId}", s.serveTracking)
	mux.HandleFunc("POST /failover", s.serveFailover)
	mux.HandleFunc("POST /sms", s.serveSMS)
	s.handler = s.outage(mux)
	return s
}

// SetPrices replaces the prices per country and the currency named with
// them (see Options.Prices and Options.Currency).
func (s *Server) SetPrices(prices map[string]float64, currency string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prices, s.currency = maps.Clone(prices), currency
}

// Price returns what a message to phone costs, and false when no price is
// set for its country.
func (s *Server) Price(phone string) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.prices[country(phone)]; ok {
		return p, true
	}
	p, ok := s.prices[""]
	return p, ok
}

// addPrice puts the message's price (and currency) into a payload; none when
// no price is set for its country.
func (s *Server) addPrice(p map[string]any, to string) {
	price, ok := s.Price(to)
	if !ok {
		return
	}
	p["price"] = price
	s.mu.Lock()
	cur := s.currency
	s.mu.Unlock()
	if cur != "" {
		p["currency"] = cur
	}
}

// Handler serves POST /oauth/token, POST /viber, POST /viber/session and
// GET /viber/tracking/{trackingId}. Mounted at the root, both
// the auth and the API base URL are the server's URL; to mount it under a
// prefix, strip it: mux.Handle("/fake/", http.StripPrefix("/fake", s.Handler()))
// and use base URL .../fake.
func (s *Server) Handler() http.Handler { return s.handler }

// SetDown makes every request fail (see SetDownMode) until SetDown(false).
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// SetDownMode chooses how requests fail while the server is down.
func (s *Server) SetDownMode(m DownMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downMode = m
}

// FailNext makes the next n POST /viber requests answer status with an error
// JSON, before any other check; nothing is recorded.
func (s *Server) FailNext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus = max(n, 0), status
}

// AcceptThen makes the next n POST /viber requests that would be accepted be
// recorded as accepted and then answered as mode says: no answer until the
// client gives up (Hang), status (ServerError), or a closed connection (Drop).
// It is how a test makes "Routee took it, but the sender never learnt".
func (s *Server) AcceptThen(n int, mode AfterAccept, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.afterN, s.after, s.afterStatus = max(n, 0), mode, status
}

// DropNext makes the next n POST /viber requests be read in full and then
// answered by closing the connection, without recording anything: a try
// Routee did not take, which the sender cannot tell from one it took.
func (s *Server) DropNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropN = max(n, 0)
}

// FailLookups makes the next n lookups (POST /viber/session, GET
// /viber/tracking/...) answer status with an error JSON.
func (s *Server) FailLookups(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookupFailN, s.lookupStatus = max(n, 0), status
}

// ListLabels makes the session lookup include each message's label. Routee's
// documentation lists no label there, so by default the fake leaves it out
// and a client must match by content and time.
func (s *Server) ListLabels(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listLabels = on
}

// SetDelay makes POST /viber wait d before answering; a request whose client
// gives up meanwhile gets no answer and records nothing.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// RevokeTokens invalidates every access token issued so far: POST /viber
// answers 401 until the client fetches a new one.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// RejectTo makes messages to phone answer 400 with {"code": code,
// "developerMessage": reason}, as Routee does for a number that is not a Viber
// user. An empty reason lifts the rejection.
func (s *Server) RejectTo(phone string, code, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reason == "" {
		delete(s.rejects, phone)
		return
	}
	s.rejects[phone] = rejection{code: code, reason: reason}
}

// Messages returns the accepted messages, in the order they were accepted.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Count returns how many messages with this label were accepted.
func (s *Server) Count(label string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[label]
}

// Violations returns what was wrong with the malformed requests received, one
// entry per request (the last 1000).
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// TokensIssued returns how many access tokens the server has issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokensIssued
}

func (s *Server) violation(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.violations) >= maxViolations {
		s.violations = s.violations[1:]
	}
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

// outage answers for a server that is down.
func (s *Server) outage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down, mode := s.down, s.downMode
		s.mu.Unlock()
		if !down {
			next.ServeHTTP(w, r)
			return
		}
		if mode == Hangup {
			hangUp(w)
			return
		}
		writeError(w, http.StatusServiceUnavailable, "503000", "Service unavailable")
	})
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // HTTP/2: abort the stream
}

// authorized checks the Bearer token of an API request and answers 401 when
// it is missing, unknown or expired.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, what string) bool {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || token == "" {
		s.violation("%s: Authorization %q is not a Bearer token", what, redactAuth(auth))
		writeError(w, http.StatusUnauthorized, "401000", "Full authentication is required")
		return false
	}
	s.mu.Lock()
	exp, known := s.tokens[token]
	s.mu.Unlock()
	if !known || !s.now().Before(exp) {
		writeError(w, http.StatusUnauthorized, "401001", "Invalid or expired access token")
		return false
	}
	return true
}

// lookupFails answers a lookup with the status FailLookups asked for.
func (s *Server) lookupFails(w http.ResponseWriter) bool {
	s.mu.Lock()
	status := 0
	if s.lookupFailN > 0 {
		s.lookupFailN--
		status = s.lookupStatus
	}
	s.mu.Unlock()
	if status == 0 {
		return false
	}
	writeError(w, status, strconv.Itoa(status*1000), "Simulated lookup failure")
	return true
}

// serveSessions is POST /viber/session: the sessions of the number in the
// body's "phone", newest first, paged by the page and size query parameters
// (Routee's Spring-style page: content, last, first, totalPages, ...). The
// fake keeps one session per number, holding every message it accepted for
// it, in time order. Routee's page does not name the request field: the fake
// takes "phone" and records anything else as a violation.
func (s *Server) serveSessions(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if s.lookupFails(w) || !s.authorized(w, r, "POST /viber/session") {
		return
	}
	top, perr := object(raw)
	phone, ok := str(top, "phone")
	if err != nil || perr != nil || !ok || !e164.MatchString(phone) {
		s.violation("POST /viber/session: the body must be {\"phone\": \"+E.164\"}, got %.100q", raw)
		writeError(w, http.StatusBadRequest, "400001", "phone must be an E.164 number")
		return
	}
	page, err1 := strconv.Atoi(r.URL.Query().Get("page"))
	size, err2 := strconv.Atoi(r.URL.Query().Get("size"))
	if r.URL.Query().Get("page") == "" {
		page, err1 = 0, nil
	}
	if r.URL.Query().Get("size") == "" {
		size, err2 = 20, nil
	}
	if err1 != nil || err2 != nil || page < 0 || size < 1 || size > 1000 {
		s.violation("POST /viber/session: bad page %q or size %q", r.URL.Query().Get("page"), r.URL.Query().Get("size"))
		writeError(w, http.StatusBadRequest, "400001", "bad page or size")
		return
	}
	s.mu.Lock()
	labels := s.listLabels
	var msgs []map[string]any
	for _, m := range s.messages {
		if m.To == phone && viberRecord(m) {
			msgs = append(msgs, s.record(m, labels))
		}
	}
	s.mu.Unlock()
	var sessions []map[string]any
	if len(msgs) > 0 {
		sessions = append(sessions, map[string]any{"sessionId": sessionID(phone), "sessionMessages": msgs})
	}
	total := len(sessions)
	from, to := min(page*size, total), min(page*size+size, total)
	content := append([]map[string]any{}, sessions[from:to]...)
	pages := (total + size - 1) / size
	writeJSON(w, http.StatusOK, map[string]any{
		"content": content, "last": page >= pages-1, "first": page == 0, "totalPages": pages,
		"totalElements": total, "numberOfElements": len(content), "size": size, "number": page,
	})
}

// serveTracking is GET /viber/tracking/{trackingId}: one message, or 404 with
// Routee's code 404019006.
func (s *Server) serveTracking(w http.ResponseWriter, r *http.Request) {
	if s.lookupFails(w) || !s.authorized(w, r, "GET /viber/tracking") {
		return
	}
	m, ok := s.message(r.PathValue("trackingId"))
	if !ok || !viberRecord(m) {
		writeError(w, http.StatusNotFound, "404019006", "viberTracking was not found.")
		return
	}
	s.mu.Lock()
	labels := s.listLabels
	s.mu.Unlock()
	rec := s.record(m, labels)
	rec["sessionMessage"], rec["expireOnDelivery"] = m.Session, false
	if m.Session { // priced by the client's country (Options.Prices)
		rec["price"] = 0.0
		s.addPrice(rec, m.To)
	} else { // a paid message: its own price, once billed
		rec["price"] = m.Price
	}
	writeJSON(w, http.StatusOK, rec)
}

// record is a message as the lookups list it (Routee's Viber message object).
func (s *Server) record(m Message, label bool) map[string]any {
	rec := map[string]any{
		"trackingId":         m.TrackingID,
		"to":                 m.To,
		"from":               m.From,
		"country":            country(m.To),
		"status":             statusObject(m),
		"applicationName":    "fakeroutee",
		"originatingService": "Viber",
		"direction":          "Outbound",
		"ttl":                strconv.Itoa(m.TTL),
	}
	switch {
	case m.ImageURL != "":
		rec["imageUrl"] = m.ImageURL
	case m.FileURL != "":
		rec["file"] = map[string]string{"fileName": m.FileName, "fileType": m.FileType, "fileUrl": m.FileURL}
	default:
		rec["message"] = m.Text
	}
	if label {
		rec["label"] = m.Label
	}
	return rec
}

// sessionID is the fake's stable session id for a number.
func sessionID(phone string) string {
	return "session-" + strings.TrimPrefix(phone, "+")
}

// writeError answers in Routee's error format.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"code": code, "developerMessage": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// serveToken is the OAuth client credentials grant.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		s.violation("POST /oauth/token: no Basic authorization")
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "error_description": "Full authentication is required"})
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		s.violation("POST /oauth/token: Content-Type %q, want application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "form body expected"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		s.violation("POST /oauth/token: grant_type %q, want client_credentials", r.PostForm.Get("grant_type"))
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"})
		return
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.appID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.appSecret))
	if idOK&secretOK != 1 || s.appID == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "Bad credentials"})
		return
	}
	token := randomHex(24)
	now := s.now()
	s.mu.Lock()
	for t, exp := range s.tokens {
		if !now.Before(exp) {
			delete(s.tokens, t)
		}
	}
	s.tokens[token] = now.Add(s.tokenTTL)
	s.tokensIssued++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token,
		"expires_in":   int(s.tokenTTL / time.Second),
		"token_type":   "Bearer",
		"scope":        "viber",
	})
}

// serveViber accepts one session message.
func (s *Server) serveViber(w http.ResponseWriter, r *http.Request) {
	// Read the body first: only then does the server notice a client that
	// hangs up, which cancels r.Context() and ends a delay early.
	raw, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	s.mu.Lock()
	delay := s.delay
	failStatus := 0
	if s.failN > 0 {
		s.failN--
		failStatus = s.failStatus
	}
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if failStatus != 0 {
		writeError(w, failStatus, strconv.Itoa(failStatus*1000), "Simulated failure")
		return
	}

	if !s.authorized(w, r, "POST /viber") {
		return
	}

	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		s.reject(w, fmt.Sprintf("Content-Type %q, want application/json", r.Header.Get("Content-Type")))
		return
	}
	if readErr != nil {
		s.reject(w, "unreadable body: "+readErr.Error())
		return
	}
	m, problems := parseMessage(raw)
	if len(problems) > 0 {
		s.reject(w, strings.Join(problems, "; "))
		return
	}

	s.mu.Lock()
	rej, refused := s.rejects[m.To]
	s.mu.Unlock()
	if refused {
		writeError(w, http.StatusBadRequest, rej.code, rej.reason)
		return
	}

	s.mu.Lock()
	drop := s.dropN > 0
	if drop {
		s.dropN--
	}
	s.mu.Unlock()
	if drop {
		hangUp(w)
		return
	}

	m.TrackingID = newUUID()
	m.At = s.now().UTC()
	m.Status, m.Carrier = "Queued", "Viber"
	s.mu.Lock()
	s.byTracking[m.TrackingID] = len(s.messages)
	s.messages = append(s.messages, m)
	s.counts[m.Label]++
	after, afterStatus := Answer, 0
	if s.afterN > 0 {
		s.afterN--
		after, afterStatus = s.after, s.afterStatus
	}
	s.mu.Unlock()
	switch after {
	case Hang:
		<-r.Context().Done() // the client gave up, or the server closes
		return
	case ServerError:
		writeError(w, afterStatus, strconv.Itoa(afterStatus*1000), "Simulated failure after the message was accepted")
		return
	case Drop:
		hangUp(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"trackingId":     m.TrackingID,
		"to":             m.To,
		"from":           m.From,
		"country":        country(m.To),
		"status":         map[string]any{"status": "Queued", "date": formatTime(m.At)},
		"body":           bodyOf(m),
		"ttl":            m.TTL,
		"sessionMessage": m.Session,
		"label":          m.Label,
		"createdAt":      formatTime(m.At),
	})
}

// reject answers a malformed /viber request and records the violation.
func (s *Server) reject(w http.ResponseWriter, problem string) {
	s.violation("POST /viber: %s", problem)
	writeError(w, http.StatusBadRequest, "400001", problem)
}

// redactAuth keeps the scheme of an Authorization header only.
func redactAuth(h string) string {
	if scheme, _, ok := strings.Cut(h, " "); ok {
		return scheme + " …"
	}
	if h == "" {
		return ""
	}
	return "…"
}

// parseMessage checks a POST /viber body against the documented shape and
// returns every problem found. Keys are matched exactly (encoding/json alone
// would accept "imageUrl" for "imageURL").
func parseMessage(raw []byte) (Message, []string) {
	var m Message
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	top, err := object(raw)
	if err != nil {
		return m, []string{"body is not a JSON object: " + err.Error()}
	}
	known := map[string]bool{"senderInfoTrackingId": true, "to": true, "isSessionMessage": true, "body": true,
		"ttl": true, "callbackUrl": true, "inboundUrl": true, "label": true}
	for _, k := range sortedKeys(top) {
		if !known[k] {
			bad("unknown field %q", k)
		}
	}

	if v, ok := str(top, "senderInfoTrackingId"); !ok || strings.TrimSpace(v) == "" {
		bad("senderInfoTrackingId is missing")
	} else {
		m.From = v
	}
	if v, ok := str(top, "to"); !ok {
		bad("to is missing or not one number")
	} else if !e164.MatchString(v) {
		bad("to %q is not an E.164 number", v)
	} else {
		m.To = v
	}
	// Without isSessionMessage (or with false) it is a paid business message.
	if rv, ok := top["isSessionMessage"]; ok && json.Unmarshal(rv, &m.Session) != nil {
		bad("isSessionMessage must be true or false")
	}
	m.Route = "viber"
	if rv, ok := top["ttl"]; !ok {
		bad("ttl is missing")
	} else if n, err := strconv.Atoi(string(bytes.TrimSpace(rv))); err != nil {
		bad("ttl %s is not a whole number of seconds", rv)
	} else if n < 30 || n > 86400 {
		bad("ttl %d is out of range 30..86400", n)
	} else {
		m.TTL = n
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"callbackUrl", &m.CallbackURL}, {"inboundUrl", &m.InboundURL}} {
		v, ok := str(top, f.key)
		if !ok || !absoluteURL(v) {
			bad("%s is missing or not an absolute http(s) URL", f.key)
			continue
		}
		*f.dst = v
	}
	if v, ok := str(top, "label"); !ok || v == "" {
		bad("label is missing")
	} else {
		m.Label = v
	}

	rawBody, ok := top["body"]
	if !ok {
		bad("body is missing")
		return m, problems
	}
	body, err := object(rawBody)
	if err != nil {
		bad("body is not an object")
		return m, problems
	}
	if !m.Session {
		parsePaidBody(&m, body, bad)
		return m, problems
	}
	var kinds []string
	for _, k := range sortedKeys(body) {
		switch k {
		case "text", "imageURL", "viberFile":
			kinds = append(kinds, k)
		default:
			bad("body: unsupported field %q (a session message carries only text, imageURL or viberFile)", k)
		}
	}
	if len(kinds) != 1 {
		bad("Invalid viber message type combination: body has %d of text, imageURL, viberFile (%s), want exactly one",
			len(kinds), strings.Join(kinds, ", "))
		return m, problems
	}
	switch kinds[0] {
	case "text":
		v, ok := str(body, "text")
		if n := utf8.RuneCountInString(v); !ok || n < 1 || n > 1000 {
			bad("body.text must have 1 to 1000 characters, has %d", n)
		} else {
			m.Text = v
		}
	case "imageURL":
		v, ok := str(body, "imageURL")
		switch {
		case !ok || !absoluteURL(v):
			bad("body.imageURL is not an absolute http(s) URL")
		case utf8.RuneCountInString(v) > 1000:
			bad("body.imageURL has %d characters, more than 1000", utf8.RuneCountInString(v))
		default:
			m.ImageURL = v
		}
	case "viberFile":
		file, err := object(body["viberFile"])
		if err != nil {
			bad("body.viberFile is not an object")
			break
		}
		for _, k := range sortedKeys(file) {
			if k != "fileName" && k != "fileType" && k != "fileUrl" && k != "fileURL" {
				bad("body.viberFile: unknown field %q", k)
			}
		}
		name, _ := str(file, "fileName")
		typ, _ := str(file, "fileType")
		u1, has1 := str(file, "fileUrl")
		u2, has2 := str(file, "fileURL")
		switch {
		case strings.TrimSpace(name) == "":
			bad("body.viberFile.fileName is missing")
		case typ == "":
			bad("body.viberFile.fileType is missing")
		case !fileTypes[typ]:
			bad("Provided viber file is not valid: fileType %q is not allowed", typ)
		case !strings.EqualFold(strings.TrimPrefix(path.Ext(name), "."), typ):
			bad("Provided viber file is not valid: fileType %q does not match fileName %q", typ, name)
		case has1 && has2:
			bad("body.viberFile has both fileUrl and fileURL")
		case !absoluteURL(u1 + u2):
			bad("body.viberFile.fileUrl is missing or not an absolute http(s) URL")
		default:
			m.FileName, m.FileType, m.FileURL = name, typ, u1+u2
		}
	}
	return m, problems
}

// object decodes a JSON object into its raw fields.
func object(raw []byte) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, errors.New("null")
	}
	return obj, nil
}

// str returns a string field; ok is false when it is missing or not a string.
func str(obj map[string]json.RawMessage, key string) (string, bool) {
	raw, ok := obj[key]
	if !ok {
		return "", false
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false
	}
	return v, true
}

func sortedKeys(obj map[string]json.RawMessage) []string {
	return slices.Sorted(maps.Keys(obj))
}

func absoluteURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// bodyOf is the message's body as it was sent.
func bodyOf(m Message) map[string]any {
	switch {
	case m.ImageURL != "":
		return map[string]any{"imageURL": m.ImageURL}
	case m.FileURL != "":
		return map[string]any{"viberFile": map[string]string{"fileName": m.FileName, "fileType": m.FileType, "fileUrl": m.FileURL}}
	}
	return map[string]any{"text": m.Text}
}

// StatusPayload returns the JSON Routee posts to the callbackUrl when the
// message's status changes: status is Routee's name (Queued, Sent, Delivered,
// Seen, Undelivered, Expired, Failed, Unsent; anything else is passed through,
// so tests can send wrong names) and reason its detailed status ("Not Viber
// User", "TTL Expired", ...; "" for none). It fails for an unknown tracking id.
func (s *Server) StatusPayload(trackingID, status, reason string) ([]byte, error) {
	m, ok := s.message(trackingID)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTrackingID, trackingID)
	}
	p := map[string]any{
		"trackingId": m.TrackingID,
		"to":         m.To,
		"from":       m.From,
		"country":    country(m.To),
		"status": map[string]any{
			"name":        status,
			"reason":      map[string]string{"detailedStatus": reason, "description": ""},
			"updatedDate": formatTime(s.now()),
		},
		"body":               bodyOf(m),
		"ttl":                m.TTL,
		"label":              m.Label,
		"direction":          "Outbound",
		"originatingService": service(m),
		"createdAt":          formatTime(m.At),
	}
	if m.Session {
		s.addPrice(p, m.To)
	} else {
		p["price"] = s.priceOf(m, status)
	}
	return json.Marshal(p)
}

// ReportStatus posts StatusPayload to the message's callbackUrl. It fails for
// an unknown tracking id and for an answer other than 2xx.
func (s *Server) ReportStatus(ctx context.Context, trackingID, status string, reason string) error {
	payload, err := s.StatusPayload(trackingID, status, reason)
	if err != nil {
		return err
	}
	m := s.SetStatus(trackingID, status, reason)
	return s.post(ctx, m.CallbackURL, payload)
}

func (s *Server) message(trackingID string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.byTracking[trackingID]
	if !ok {
		return Message{}, false
	}
	return s.messages[i], true
}

// InboundPayload returns the JSON Routee posts to the inboundUrl for a
// client's message. It is the same for the same Inbound, unless SentAt is
// zero (it is then the current time).
func (s *Server) InboundPayload(in Inbound) []byte {
	at := in.SentAt
	if at.IsZero() {
		at = s.now()
	}
	p := map[string]any{
		"from":      in.From,
		"to":        in.To,
		"message":   in.Text,
		"sentDate":  formatTime(at),
		"direction": "Inbound",
	}
	if in.MediaURL != "" {
		p["media"] = in.MediaURL
	}
	if in.FileName != "" {
		p["filename"] = in.FileName
	}
	if in.ReferenceTrackingID != "" {
		p["referenceTrackingId"] = in.ReferenceTrackingID
	}
	b, _ := json.Marshal(p) // strings and a time only: cannot fail
	return b
}

// SendInbound posts InboundPayload(in) to inboundURL. It fails for an answer
// other than 2xx.
func (s *Server) SendInbound(ctx context.Context, inboundURL string, in Inbound) error {
	return s.post(ctx, inboundURL, s.InboundPayload(in))
}

// post delivers a webhook. Errors name only the scheme and host of the URL:
// webhook paths carry a secret.
func (s *Server) post(ctx context.Context, target string, payload []byte) error {
	where := "the webhook"
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		where = u.Scheme + "://" + u.Host + "/…"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("fakeroutee: POST %s: bad URL", where)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fakeroutee")
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("fakeroutee: POST %s: %w", where, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("fakeroutee: POST %s answered %s: %s", where, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// formatTime writes a time the way Routee does: 2021-12-30T14:18:30.303Z.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// callingCodes maps some calling codes to ISO country codes, for the
// "country" field.
var callingCodes = map[string]string{
	"1": "US", "7": "RU", "30": "GR", "31": "NL", "33": "FR", "34": "ES", "39": "IT", "40": "RO", "44": "GB",
	"48": "PL", "49": "DE", "90": "TR", "357": "CY", "359": "BG", "370": "LT", "371": "LV", "372": "EE",
	"373": "MD", "374": "AM", "375": "BY", "380": "UA", "381": "RS", "385": "HR", "995": "GE", "972": "IL",
}

// country guesses the country of an E.164 number; "" when unknown.
func country(phone string) string {
	digits := strings.TrimPrefix(phone, "+")
	for n := 3; n >= 1; n-- {
		if len(digits) >= n {
			if c, ok := callingCodes[digits[:n]]; ok {
				return c
			}
		}
	}
	return ""
}

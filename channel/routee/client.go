// Package routee sends Viber session messages through Routee (docs.routee.net)
// and parses what Routee posts back: delivery reports and the clients' replies.
//
// The wire formats are those of the shared spec (spec/routee.md). Client
// implements channel.Sender: it gets an OAuth access token with the client
// credentials grant, caches it, and posts one message per call to
// POST {api}/viber. ParseStatus and ParseInbound read the two webhooks; they
// are pure and leave the storing to the caller.
package routee

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"sessiondesk/channel"
	"sessiondesk/session"
	"sessiondesk/store"
)

// Routee's public endpoints, used when Config leaves APIURL or AuthURL empty.
const (
	DefaultAPIURL  = "https://connect.routee.net"
	DefaultAuthURL = "https://auth.routee.net"
)

// Limits of a session message.
const (
	MinTTL         = 30 * time.Second    // the shortest ttl Routee accepts
	MaxTTL         = 86400 * time.Second // the longest ttl Routee accepts, and our default (S8)
	DefaultTimeout = 15 * time.Second    // of the default HTTP client
	maxTextLen     = 1000                // Unicode code points
	maxImageURLLen = 1000                // characters
	maxBodyRead    = 1 << 20             // bytes read from any answer
	// defaultTokenLife is assumed when the token answer has no expires_in
	// (Routee's documented default is one hour).
	defaultTokenLife = time.Hour
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Config is what the client needs to talk to Routee.
type Config struct {
	AppID, AppSecret string // the application's client credentials
	SenderID         string // senderInfoTrackingId: the business's Viber sender
	// APIURL and AuthURL are the bases of Routee's API and of its OAuth server,
	// e.g. https://connect.routee.net and https://auth.routee.net; a trailing
	// slash is tolerated. Empty means DefaultAPIURL / DefaultAuthURL.
	APIURL, AuthURL string
	CallbackURL     string        // full URL Routee posts status changes to
	InboundURL      string        // full URL Routee posts client replies to
	TTL             time.Duration // 30 s to 86400 s, whole seconds; 0 means 86400 s (S8)
	HTTPClient      *http.Client  // nil: a client with a 15 s timeout
	Now             func() time.Time
}

// Validate names every missing or invalid setting, joined in one error. It
// never repeats the secret.
func (c Config) Validate() error {
	var errs []error
	missing := func(name, v string) {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("routee: %s is missing", name))
		}
	}
	missing("AppID (application id)", c.AppID)
	missing("AppSecret (application secret)", c.AppSecret)
	missing("SenderID (senderInfoTrackingId)", c.SenderID)
	for _, u := range []struct {
		name, value string
		base        bool
	}{
		{"APIURL", orDefault(c.APIURL, DefaultAPIURL), true},
		{"AuthURL", orDefault(c.AuthURL, DefaultAuthURL), true},
		{"CallbackURL", c.CallbackURL, false},
		{"InboundURL", c.InboundURL, false},
	} {
		if err := checkURL(u.name, u.value, u.base); err != nil {
			errs = append(errs, err)
		}
	}
	if c.TTL != 0 && (c.TTL < MinTTL || c.TTL > MaxTTL) {
		errs = append(errs, fmt.Errorf("routee: TTL %v is out of range (%v to %v)", c.TTL, MinTTL, MaxTTL))
	}
	return errors.Join(errs...)
}

func orDefault(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return strings.TrimSpace(v)
}

// checkURL requires an absolute http(s) URL. A base URL must also have no
// query or fragment, since paths are appended to it. Only the name is
// reported: webhook URLs carry a secret in their path.
func checkURL(name, raw string, base bool) error {
	if strings.TrimSpace(raw) == "" {
		return fmt.Errorf("routee: %s is missing", name)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("routee: %s is not an absolute http(s) URL", name)
	case u.User != nil:
		return fmt.Errorf("routee: %s must not carry credentials", name)
	case base && (u.RawQuery != "" || u.Fragment != ""):
		return fmt.Errorf("routee: %s must have no query or fragment", name)
	}
	return nil
}

// Client sends session messages through Routee. It is safe for concurrent use.
type Client struct {
	senderID, appID, appSecret string
	viberURL, tokenURL         string
	apiURL                     string // the API base, without a trailing slash
	callbackURL, inboundURL    string
	ttl                        int // seconds
	http                       *http.Client
	now                        func() time.Time

	// fetching is a one-slot semaphore: one token fetch at a time, and the
	// Sends that wait for it give up when their context ends.
	fetching chan struct{}
	mu       sync.Mutex // guards token and expires
	token    string
	expires  time.Time // when the cached token stops being used
}

var _ channel.Sender = (*Client)(nil)

// New checks the configuration and returns a client.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{
		senderID:    strings.TrimSpace(cfg.SenderID),
		appID:       cfg.AppID,
		appSecret:   cfg.AppSecret,
		viberURL:    strings.TrimRight(orDefault(cfg.APIURL, DefaultAPIURL), "/") + "/viber",
		apiURL:      strings.TrimRight(orDefault(cfg.APIURL, DefaultAPIURL), "/"),
		tokenURL:    strings.TrimRight(orDefault(cfg.AuthURL, DefaultAuthURL), "/") + "/oauth/token",
		callbackURL: strings.TrimSpace(cfg.CallbackURL),
		inboundURL:  strings.TrimSpace(cfg.InboundURL),
		ttl:         int(MaxTTL / time.Second),
		http:        cfg.HTTPClient,
		now:         cfg.Now,
		fetching:    make(chan struct{}, 1),
	}
	if cfg.TTL != 0 {
		c.ttl = int(cfg.TTL / time.Second)
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: DefaultTimeout}
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Send implements channel.Sender: it posts one session message to
// POST {api}/viber and returns Routee's trackingId. The message's id goes in
// the label, so a status callback can be matched even without the tracking id.
//
// A message that cannot be valid (unknown kind, empty text, attachment without
// a usable URL) and a 4xx answer other than 401, 403, 408, 425 and 429 are a
// *channel.RejectedError. A 401 or 403 drops the cached token and retries once
// with a fresh one. A failure after which Routee may have the message anyway is
// a *channel.UncertainError: the request was written and then no answer came
// (a timeout, a reset), or the answer was a server error other than 503, or a
// success without a trackingId. Everything else (no connection, no token, the
// request not written, 408, 425, 429, 503, credentials still refused) is a
// plain error: Routee certainly does not have the message, so it is worth a retry.
func (c *Client) Send(ctx context.Context, msg store.Outgoing) (string, error) {
	target, payload, err := c.viberURL, []byte(nil), error(nil)
	if msg.Paid != nil {
		// A paid message goes out as a non-session message, a failover or an SMS (paid.go).
		target, payload, err = c.paidPayload(msg)
	} else {
		payload, err = c.payload(msg)
	}
	if err != nil {
		return "", err
	}
	status, body, wrote, err := c.call(ctx, http.MethodPost, target, payload)
	if err != nil {
		err = fmt.Errorf("routee: send message %d: %w", msg.ID, err)
		if wrote {
			return "", &channel.UncertainError{Err: err}
		}
		return "", err
	}
	id, err := answer(status, body)
	var rej *channel.RejectedError
	switch {
	case err == nil:
		return id, nil
	case errors.As(err, &rej):
		return "", err
	case uncertainStatus(status):
		return "", &channel.UncertainError{Err: fmt.Errorf("routee: send message %d: %w", msg.ID, err)}
	}
	return "", fmt.Errorf("routee: send message %d: %w", msg.ID, err)
}

// call makes one authenticated API request with a cached or fresh token; a 401
// or 403 drops the token and tries once more with a new one. err is set only
// when no answer came; wrote tells whether a request was written in full
// before that, so that Routee may have acted on it.
func (c *Client) call(ctx context.Context, method, url string, payload []byte) (status int, body []byte, wrote bool, err error) {
	for attempt := 0; ; attempt++ {
		token, err := c.accessToken(ctx)
		if err != nil {
			return 0, nil, false, err
		}
		// Only the last request counts: an earlier one was answered 401/403.
		status, body, wrote, err = c.request(ctx, method, url, token, payload)
		if err != nil {
			return 0, nil, wrote, err
		}
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			c.dropToken(token)
			if attempt == 0 {
				continue
			}
			return 0, nil, false, fmt.Errorf("routee refused the credentials (%s) even with a fresh access token: %s",
				statusText(status), excerpt(body))
		}
		return status, body, wrote, nil
	}
}

// viberRequest is the body of POST /viber.
type viberRequest struct {
	SenderInfoTrackingID string    `json:"senderInfoTrackingId"`
	To                   string    `json:"to"`
	IsSessionMessage     bool      `json:"isSessionMessage"`
	Body                 viberBody `json:"body"`
	TTL                  int       `json:"ttl"`
	CallbackURL          string    `json:"callbackUrl"`
	InboundURL           string    `json:"inboundUrl"`
	Label                string    `json:"label"`
}

// viberBody carries exactly one of its fields.
type viberBody struct {
	Text      string     `json:"text,omitempty"`
	ImageURL  string     `json:"imageURL,omitempty"`
	ViberFile *viberFile `json:"viberFile,omitempty"`
}

type viberFile struct {
	FileName string `json:"fileName"`
	FileType string `json:"fileType"`
	FileURL  string `json:"fileUrl"`
}

// payload builds the request body, or refuses a message that cannot be valid.
func (c *Client) payload(msg store.Outgoing) ([]byte, error) {
	reject := func(format string, args ...any) error {
		return &channel.RejectedError{Reason: fmt.Sprintf(format, args...)}
	}
	if !e164.MatchString(msg.Phone) {
		return nil, reject("the phone number %q is not in E.164 form", msg.Phone)
	}
	var body viberBody
	switch msg.Kind {
	case session.Text:
		if strings.TrimSpace(msg.Body) == "" {
			return nil, reject("the text is empty")
		}
		if n := utf8.RuneCountInString(msg.Body); n > maxTextLen {
			return nil, reject("the text has %d characters, more than %d", n, maxTextLen)
		}
		body.Text = msg.Body
	case session.Image:
		if err := checkMediaURL(msg.MediaURL); err != nil {
			return nil, reject("image: %s", err)
		}
		if n := utf8.RuneCountInString(msg.MediaURL); n > maxImageURLLen {
			return nil, reject("image: the URL has %d characters, more than %d", n, maxImageURLLen)
		}
		body.ImageURL = msg.MediaURL
	case session.File:
		if err := checkMediaURL(msg.MediaURL); err != nil {
			return nil, reject("file: %s", err)
		}
		name := strings.TrimSpace(msg.FileName)
		if name == "" {
			return nil, reject("file: the file name is missing")
		}
		ext := strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
		if ext == "" {
			return nil, reject("file: the file name %q has no extension", name)
		}
		body.ViberFile = &viberFile{FileName: name, FileType: ext, FileURL: msg.MediaURL}
	default:
		return nil, reject("unsupported message kind %q: a Viber session message is text, image or file", msg.Kind)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(viberRequest{
		SenderInfoTrackingID: c.senderID,
		To:                   msg.Phone,
		IsSessionMessage:     true,
		Body:                 body,
		TTL:                  c.ttl,
		CallbackURL:          c.callbackURL,
		InboundURL:           c.inboundURL,
		Label:                strconv.FormatInt(msg.ID, 10),
	})
	if err != nil {
		return nil, fmt.Errorf("routee: encode message %d: %w", msg.ID, err)
	}
	return buf.Bytes(), nil
}

// checkMediaURL requires a URL Routee can fetch: https, or http on a loopback
// host (the sandbox and tests).
func checkMediaURL(raw string) error {
	if raw == "" {
		return errors.New("the attachment URL is missing")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("the attachment URL is not an absolute URL")
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return errors.New("the attachment URL must be https")
}

func isLoopback(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// request makes one request with a token; err is set only when no answer
// came, and wrote tells whether the request had been written in full by then.
func (c *Client) request(ctx context.Context, method, url, token string, payload []byte) (int, []byte, bool, error) {
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	})
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, false, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	status, answer, err := c.do(req)
	return status, answer, wrote.Load(), err
}

func (c *Client) do(req *http.Request) (int, []byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyRead))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read the answer (%s): %w", req.Method, req.URL.Redacted(), statusText(resp.StatusCode), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyRead))
	return resp.StatusCode, body, nil
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the method
// and URL we already name.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("timed out: %w", ue.Err)
		}
		return ue.Err
	}
	return err
}

// answer reads Routee's answer to POST /viber (other than 401 and 403).
func answer(status int, body []byte) (string, error) {
	switch {
	case status >= 200 && status < 300:
		var ok struct {
			TrackingID string `json:"trackingId"`
		}
		if err := json.Unmarshal(body, &ok); err != nil {
			return "", fmt.Errorf("routee answered %s with no JSON: %s", statusText(status), excerpt(body))
		}
		if strings.TrimSpace(ok.TrackingID) == "" {
			return "", fmt.Errorf("routee answered %s without a trackingId: %s", statusText(status), excerpt(body))
		}
		return strings.TrimSpace(ok.TrackingID), nil
	case retryable(status):
		return "", fmt.Errorf("routee answered %s: %s", statusText(status), excerpt(body))
	case status >= 400 && status < 500:
		return "", &channel.RejectedError{Reason: rejectReason(status, body)}
	default:
		return "", fmt.Errorf("unexpected answer %s: %s", statusText(status), excerpt(body))
	}
}

// retryable reports the statuses that say "not now" rather than "never".
func retryable(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return status >= 500
}

// uncertainStatus reports the answers after which Routee may have taken the
// message: a server error (the message may have been stored before it), other
// than 503, which says the request was not handled, and anything that is
// neither a success nor an error (a success without a trackingId included).
func uncertainStatus(status int) bool {
	switch {
	case status == http.StatusServiceUnavailable:
		return false
	case status >= 500, status < 400:
		return true
	}
	return false
}

// rejectReason turns Routee's error JSON, {"code":"400001",
// "developerMessage":"...","entity":"...","properties":{...}}, into a reason
// like "Invalid viber message type combination (007)".
func rejectReason(status int, body []byte) string {
	f, err := decodeObject(body)
	if err != nil {
		if ex := excerpt(body); ex != "(empty)" {
			return fmt.Sprintf("Routee answered %s: %s", statusText(status), ex)
		}
		return "Routee answered " + statusText(status)
	}
	msg := firstNonEmpty(f.str("developerMessage"), f.str("message"), f.str("description"),
		f.str("error_description"), f.str("error"))
	if msg == "" {
		if props, ok := f["properties"].(map[string]any); ok && len(props) > 0 {
			b, _ := json.Marshal(props)
			msg = "invalid " + string(b)
		} else {
			msg = "Routee answered " + statusText(status)
		}
	}
	if code := f.str("code"); code != "" {
		return msg + " (" + code + ")"
	}
	return msg
}

func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return strconv.Itoa(status) + " " + t
	}
	return strconv.Itoa(status)
}

// excerpt is a short one-line view of an answer for an error message.
func excerpt(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if s == "" {
		return "(empty)"
	}
	const max = 200
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// accessToken returns a cached token, or fetches one. Concurrent callers share
// one fetch: the first takes the semaphore, the others wait for it and then
// find the fresh token in the cache.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	if t, ok := c.cached(); ok {
		return t, nil
	}
	select {
	case c.fetching <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("wait for an access token: %w", ctx.Err())
	}
	defer func() { <-c.fetching }()
	if t, ok := c.cached(); ok {
		return t, nil
	}
	start := c.now()
	token, life, err := c.fetchToken(ctx)
	if err != nil {
		return "", err
	}
	// Stop using the token a little before Routee does: 60 s early, or 10% of
	// its life for short-lived tokens.
	margin := min(time.Minute, life/10)
	c.mu.Lock()
	c.token, c.expires = token, start.Add(life-margin)
	c.mu.Unlock()
	return token, nil
}

func (c *Client) cached() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.expires) {
		return c.token, true
	}
	return "", false
}

// dropToken forgets token if it is still the cached one, so that several Sends
// refused with the same token cause one fetch, not one each.
func (c *Client) dropToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token, c.expires = "", time.Time{}
	}
}

// fetchToken runs the OAuth client credentials grant.
func (c *Client) fetchToken(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("access token: build request: %w", err)
	}
	req.SetBasicAuth(c.appID, c.appSecret) // base64(appId:appSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	status, body, err := c.do(req)
	if err != nil {
		return "", 0, fmt.Errorf("access token: %w", err)
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "", 0, fmt.Errorf("access token: Routee refused the credentials (AppID/AppSecret): %s", statusText(status))
	case status < 200 || status >= 300:
		return "", 0, fmt.Errorf("access token: Routee answered %s: %s", statusText(status), excerpt(body))
	}
	f, err := decodeObject(body)
	if err != nil {
		return "", 0, fmt.Errorf("access token: Routee answered %s with no JSON object", statusText(status))
	}
	token := f.str("access_token")
	if token == "" {
		return "", 0, fmt.Errorf("access token: Routee answered %s without an access_token", statusText(status))
	}
	life := defaultTokenLife
	if secs, err := strconv.ParseFloat(f.str("expires_in"), 64); err == nil && secs > 0 {
		life = time.Duration(secs * float64(time.Second))
	}
	return token, life, nil
}

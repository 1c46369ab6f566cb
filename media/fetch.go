package media

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FetchTimeout is the whole-download timeout of a Fetcher without a Timeout.
const FetchTimeout = 30 * time.Second

// MaxRedirects is how many redirects a download follows at most.
const MaxRedirects = 3

// Fetcher downloads a client's media from the provider's short-lived URL, at
// once, with a size cap.
//
// A media URL comes from outside (the provider's webhook carries it), so the
// Fetcher never lets it reach this machine or its network: it fetches https
// only, and refuses, when it dials (so after every DNS answer and redirect),
// any address that is not public: loopback, private, link-local, CGNAT,
// multicast, unspecified and the like (see PublicAddr). Allow names the one
// exception, the sandbox's own fake provider, by URL and not by address.
type Fetcher struct {
	// MaxBytes caps the download; a larger body is ErrTooLarge. Zero or less
	// means the spec's default file limit, DefaultLimits().FileMax (50 MB).
	MaxBytes int64
	// Timeout bounds a whole download; zero means FetchTimeout.
	Timeout time.Duration
	// Allow are URL prefixes (scheme, host, port and a path ending in "/")
	// fetched even though they are plain http or on a non-public address: the
	// sandbox's fake provider, e.g. "http://127.0.0.1:8080/media/". A URL on
	// an allowed scheme, host and port but outside its path is refused, and
	// so is a redirect out of an allowed prefix to a non-public address.
	Allow []string

	once      sync.Once
	client    *http.Client
	transport *http.Transport
}

// RefusedError is a download refused because of where it points: not https,
// a non-public address, too many redirects. Trying again cannot help.
type RefusedError struct {
	URL    string // without its query
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("media: download of %s refused: %s", e.URL, e.Reason)
}

// StatusError is a download the server answered with a status outside 2xx.
// Callers may retry a 5xx or 429 and give up on a 404 or 410.
type StatusError struct {
	URL        string // without its query, which for a provider's media URL is a credential
	StatusCode int
	Status     string // as the server sent it: "404 Not Found"
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("media: download of %s failed: %s", e.URL, e.Status)
}

// hop is what the dialer may reach for the request in flight: the address
// of an allowed prefix, or "" for public addresses only. It lives in the
// request's context and is updated before each redirect is followed.
type hop struct {
	mu      sync.Mutex
	allowed string // host:port as in the URL
}

type hopKey struct{}

func (h *hop) set(addr string) {
	h.mu.Lock()
	h.allowed = addr
	h.mu.Unlock()
}

func (h *hop) get() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.allowed
}

func (f *Fetcher) init() {
	f.once.Do(func() {
		guarded := &net.Dialer{Timeout: 10 * time.Second, Control: refuseNonPublic}
		plain := &net.Dialer{Timeout: 10 * time.Second}
		f.transport = &http.Transport{
			Proxy: nil, // a proxy would be what the dialer checks, not the media host
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if h, ok := ctx.Value(hopKey{}).(*hop); ok && h.get() != "" && h.get() == addr {
					return plain.DialContext(ctx, network, addr)
				}
				return guarded.DialContext(ctx, network, addr)
			},
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          10,
			IdleConnTimeout:       30 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 20 * time.Second,
		}
		timeout := f.Timeout
		if timeout <= 0 {
			timeout = FetchTimeout
		}
		f.client = &http.Client{Transport: f.transport, Timeout: timeout, CheckRedirect: f.checkRedirect}
	})
}

// CloseIdleConnections closes the Fetcher's idle connections (at shutdown).
func (f *Fetcher) CloseIdleConnections() {
	f.init()
	f.transport.CloseIdleConnections()
}

func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return &RefusedError{URL: redact(via[0].URL), Reason: fmt.Sprintf("more than %d redirects", MaxRedirects)}
	}
	allowed, err := f.check(req.URL)
	if err != nil {
		return err
	}
	if h, ok := req.Context().Value(hopKey{}).(*hop); ok {
		h.set(allowed)
	}
	return nil
}

// check says whether u may be fetched, and returns the host:port of the
// allowed prefix it is under ("" when it must be public https).
func (f *Fetcher) check(u *url.URL) (string, error) {
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("media: download: scheme %q refused: only http and https", u.Scheme)
	}
	if u.Host == "" {
		return "", errors.New("media: download: the URL has no host")
	}
	addr := hostPort(u)
	for _, raw := range f.Allow {
		a, err := url.Parse(raw)
		if err != nil || a.Host == "" {
			continue
		}
		if a.Scheme != u.Scheme || !strings.EqualFold(hostPort(a), addr) {
			continue
		}
		// Same origin as an allowed prefix: only its path. Anything else on
		// that host (the inbox itself, in the sandbox) is off limits, also
		// over a connection kept open from an allowed download.
		if strings.HasPrefix(rooted(u.EscapedPath()), rooted(a.EscapedPath())) && !strings.Contains(u.Path, "..") {
			return addr, nil
		}
		return "", &RefusedError{URL: redact(u), Reason: "outside the sandbox's media path"}
	}
	if u.Scheme != "https" {
		return "", &RefusedError{URL: redact(u), Reason: "only https media URLs are fetched"}
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !PublicAddr(ip) {
		return "", &RefusedError{URL: redact(u), Reason: "the address " + ip.String() + " is not public"}
	}
	return "", nil
}

// rooted is an URL path with "" as "/".
func rooted(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// hostPort is u's host:port, with the scheme's default port.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// refuseNonPublic is the dialer's Control: it sees the address actually
// dialled, after DNS, and refuses any that is not public.
func refuseNonPublic(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &RefusedError{URL: address, Reason: "unparsable address"}
	}
	if !PublicAddr(ap.Addr()) {
		return &RefusedError{URL: address, Reason: "the address " + ap.Addr().Unmap().String() + " is not public"}
	}
	return nil
}

// nonPublic are ranges that are neither loopback, private, link-local nor
// multicast by netip's methods, yet reach no public host.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT shared space
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: embeds an IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("100::/64"),        // discard-only
}

// PublicAddr reports whether ip is a public unicast address, one a media URL
// may point at: not loopback, private (10/8, 172.16/12, 192.168/16,
// fc00::/7), link-local (169.254/16, fe80::/10), CGNAT (100.64/10),
// multicast, unspecified (0.0.0.0, ::) or otherwise reserved. An
// IPv4-mapped IPv6 address is judged as the IPv4 address it maps.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() ||
		ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() || ip.Zone() != "" {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// Fetch downloads rawURL into st. It refuses with a *RefusedError what it may
// not fetch (see Fetcher), an answer outside 2xx with a *StatusError, and a
// body longer than the cap with ErrTooLarge (at once when Content-Length says
// so; otherwise after reading at most MaxBytes+1 bytes); nothing is stored
// then. It honours ctx's deadline and cancellation. It returns the blob and
// the Content-Type header, which is the sender's claim only: check the bytes
// with CheckImage or CheckFile.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string, st *Store) (Blob, string, error) {
	f.init()
	u, err := url.Parse(rawURL)
	if err != nil {
		return Blob{}, "", fmt.Errorf("media: download: %w", err)
	}
	allowed, err := f.check(u)
	if err != nil {
		return Blob{}, "", err
	}
	max := f.MaxBytes
	if max <= 0 {
		max = DefaultLimits().FileMax
	}
	h := &hop{allowed: allowed}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, hopKey{}, h), http.MethodGet, u.String(), nil)
	if err != nil {
		return Blob{}, "", fmt.Errorf("media: download: %w", err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if refused, ok := errors.AsType[*RefusedError](err); ok {
			if refused.URL == "" || !strings.Contains(refused.URL, "://") {
				refused.URL = redact(u) // the dialer knows the address only
			}
			return Blob{}, "", refused
		}
		// A *url.Error, which wraps ctx's error; its URL loses the query.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			ue.URL = redact(u)
		}
		return Blob{}, "", fmt.Errorf("media: download: %w", err)
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Blob{}, "", &StatusError{URL: redact(u), StatusCode: resp.StatusCode, Status: resp.Status}
	}
	if resp.ContentLength > max {
		return Blob{}, "", ErrTooLarge
	}
	b, err := st.Put(resp.Body, max)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return Blob{}, "", ErrTooLarge
		}
		return Blob{}, "", fmt.Errorf("media: download of %s: %w", redact(u), err)
	}
	return b, resp.Header.Get("Content-Type"), nil
}

// redact drops the query, fragment and user info of a URL for messages and logs.
func redact(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

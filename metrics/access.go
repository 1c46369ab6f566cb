package metrics

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Access says who may read /metrics without the SSO login: a client whose TCP
// peer address is in Allow, or one that presents Token as a bearer token.
// The address is the connection's, never X-Forwarded-For or any header. A
// request that went through a proxy comes from the proxy's address, which may
// well be loopback: a request carrying a forwarding header (Forwarded,
// X-Forwarded-For, X-Real-IP) is therefore never let in by its address, only
// by the token. The headers can only refuse, never grant.
type Access struct {
	Allow []netip.Prefix
	// Token is the bearer token; "" accepts none.
	Token string
}

// allowed reports whether the TCP peer remoteAddr ("ip:port") is in the list.
func (a Access) allowed(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap() // an IPv4 peer on a dual-stack socket is ::ffff:a.b.c.d
	for _, p := range a.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// tokenMatches compares in constant time. Both sides are hashed first, so
// that not even the token's length shows in the time taken.
func (a Access) tokenMatches(got string) bool {
	if a.Token == "" {
		return false
	}
	want, have := sha256.Sum256([]byte(a.Token)), sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want[:], have[:]) == 1
}

// guard lets a request through when its token is right or, presenting none,
// when its peer address is allowed. A wrong token is refused even from an
// allowed address: the scraper is misconfigured, and saying so beats
// serving it by chance.
func (a Access) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		auth := r.Header.Get("Authorization")
		if auth != "" {
			scheme, token, ok := strings.Cut(auth, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || !a.tokenMatches(strings.TrimSpace(token)) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sessiondesk metrics"`)
				refuse(w, http.StatusUnauthorized, "The bearer token for /metrics is wrong (or none is configured: SESSIONDESK_METRICS_TOKEN).")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if proxied(r) {
			refuse(w, http.StatusForbidden, "/metrics is not served by address through a proxy (this request carries a "+
				"forwarding header): scrape the inbox directly, or send Authorization: Bearer with SESSIONDESK_METRICS_TOKEN.")
			return
		}
		if !a.allowed(r.RemoteAddr) {
			refuse(w, http.StatusForbidden, "/metrics is not served to this address: add it to SESSIONDESK_METRICS_ALLOW, "+
				"or send Authorization: Bearer with SESSIONDESK_METRICS_TOKEN.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// proxied reports whether a proxy says it forwarded r: then the peer address
// is the proxy's, not the client's.
func proxied(r *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		if len(r.Header.Values(h)) > 0 {
			return true
		}
	}
	return false
}

// refuse answers a plain-text refusal, which is what a scraper's log shows.
func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, msg)
}

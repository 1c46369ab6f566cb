package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"

	"sessiondesk/clock"
)

const (
	// refetchEvery is the least time between two fetches of the JWKS that
	// tokens with unknown kids trigger, so that a flood of made-up kids
	// cannot hammer the identity provider (30 s, as in panva/jose).
	refetchEvery = 30 * time.Second
	// The background refresh: Cache-Control's max-age is honoured between
	// these, and with none the keys are refetched every keysMinAge. A key
	// the provider removed stops verifying within keysMaxAge at the latest.
	keysMinAge = 5 * time.Minute
	keysMaxAge = time.Hour
	// maxJWKS bounds a JWKS response; real ones are a few KB.
	maxJWKS = 1 << 20
)

// verifyingKey is one usable key of the JWKS: public, for signatures.
type verifyingKey struct {
	kid string
	alg string // the one algorithm the key is published for, or ""
	key any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// keySet is the proxy's JWKS: fetched in the background when the inbox
// starts, refreshed at the age the provider's Cache-Control gives (within
// keysMinAge and keysMaxAge), and refetched when a token names a kid it does
// not hold, at most once per refetchEvery. A failed fetch keeps the last
// good set.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time
	every  time.Duration // refetchEvery, unless a test sets another
	minAge time.Duration // keysMinAge; tests shorten it
	maxAge time.Duration // keysMaxAge

	keys  atomic.Pointer[[]verifyingKey] // nil until a fetch succeeded
	ready chan struct{}                  // closed once the first fetch ended, well or not

	mu          sync.Mutex // one on-demand refetch at a time
	lastRefetch time.Time  // guarded by mu

	stop context.CancelFunc
	done chan struct{}
}

func newKeySet(url string, client *http.Client, now func() time.Time) *keySet {
	return &keySet{
		url: url, client: client, now: now,
		every: refetchEvery, minAge: keysMinAge, maxAge: keysMaxAge,
		ready: make(chan struct{}),
	}
}

// start begins the background refresh. Starting does not wait for the first
// fetch: the inbox does not depend on the identity provider being up, and
// the first requests wait for the keys instead.
func (k *keySet) start() {
	ctx, stop := context.WithCancel(context.Background())
	k.stop = stop
	k.done = make(chan struct{})
	go k.refresh(ctx)
}

func (k *keySet) close() error {
	if k.stop != nil {
		k.stop()
		<-k.done
	}
	return nil
}

func (k *keySet) refresh(ctx context.Context) {
	defer close(k.done)
	first := true
	for {
		age, err := k.fetch(ctx)
		if first {
			close(k.ready)
			first = false
		}
		if err != nil {
			age = k.minAge // keep the last good set, try again soon
		}
		if !clock.Sleep(ctx, age) {
			return
		}
	}
}

// fetch replaces the keys with the provider's current set, and says how long
// that set may be kept.
func (k *keySet) fetch(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return 0, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("jwks: %s answered %s", k.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return 0, fmt.Errorf("jwks: reading %s: %w", k.url, err)
	}
	if len(body) > maxJWKS {
		return 0, fmt.Errorf("jwks: %s sent more than %d bytes", k.url, maxJWKS)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return 0, err
	}
	k.keys.Store(&keys)
	return k.maxAgeOf(resp.Header.Get("Cache-Control")), nil
}

// maxAgeOf is how long a set may be kept: Cache-Control's max-age, within
// the bounds.
func (k *keySet) maxAgeOf(cacheControl string) time.Duration {
	age := k.minAge
	for _, d := range strings.Split(cacheControl, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
		if !strings.EqualFold(name, "max-age") {
			continue
		}
		if s, err := strconv.Atoi(strings.Trim(value, `"`)); err == nil && s >= 0 {
			age = time.Duration(s) * time.Second
		}
	}
	return min(max(age, k.minAge), k.maxAge)
}

// parseJWKS reads the public signing keys of a JWKS. A key that is not one
// (an encryption key, a symmetric key, a type this package cannot read) is
// skipped rather than failing the whole set: providers publish such keys
// next to the ones that sign.
func parseJWKS(body []byte) ([]verifyingKey, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks: not a JSON Web Key Set: %w", err)
	}
	var keys []verifyingKey
	for _, m := range set.Keys {
		if m.USE != "" && m.USE != jwkset.UseSig {
			continue
		}
		// Private: false reads only the public part, should a provider
		// ever publish more.
		j, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			continue
		}
		switch j.Key().(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			keys = append(keys, verifyingKey{kid: m.KID, alg: string(m.ALG), key: j.Key()})
		}
	}
	// An empty set is an error too, not a set to keep: a provider that
	// glitches into serving one would otherwise sign everyone out until the
	// next fetch, while the last good keys (kept on an error) still verify.
	if len(set.Keys) == 0 {
		return nil, errors.New("jwks: the set holds no key")
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: the set holds no public signing key this inbox can use")
	}
	return keys, nil
}

// key is the key that verifies a token with this kid and alg: from the
// cached set, else from a fresh fetch if none was made in the last k.every.
// The errors are safe to show.
func (k *keySet) key(ctx context.Context, kid, alg string) (any, error) {
	if key, ok := pick(k.keys.Load(), kid, alg); ok {
		return key, nil
	}
	// The first fetch may still be under way: wait for it rather than
	// start another.
	select {
	case <-k.ready:
	case <-ctx.Done():
		return nil, errors.New("the proxy's signing keys could not be fetched in time")
	}
	if key, ok := pick(k.keys.Load(), kid, alg); ok {
		return key, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	// Another request may have refetched while this one waited.
	if key, ok := pick(k.keys.Load(), kid, alg); ok {
		return key, nil
	}
	now := k.now()
	if !k.lastRefetch.IsZero() && now.Sub(k.lastRefetch) < k.every {
		return nil, k.unknown(kid)
	}
	k.lastRefetch = now
	// The fetch this request starts is for every request: let it finish
	// even if this client goes away. A failed one keeps the last good set,
	// and unknown says when there is none.
	_, _ = k.fetch(context.WithoutCancel(ctx))
	if key, ok := pick(k.keys.Load(), kid, alg); ok {
		return key, nil
	}
	return nil, k.unknown(kid)
}

func (k *keySet) unknown(kid string) error {
	if k.keys.Load() == nil {
		return errors.New("the proxy's signing keys could not be fetched")
	}
	if kid == "" {
		return errors.New("it names no key (kid) and no single key fits")
	}
	return errors.New("it is signed by an unknown key")
}

// pick finds the key for kid fit for alg: of the type and curve alg needs,
// and of alg if the key names one. With no kid, the only fitting key if
// there is exactly one.
func pick(keys *[]verifyingKey, kid, alg string) (any, bool) {
	if keys == nil {
		return nil, false
	}
	var found any
	n := 0
	for _, k := range *keys {
		if !fits(k.key, alg) || (k.alg != "" && k.alg != alg) {
			continue
		}
		if kid != "" {
			if k.kid == kid {
				return k.key, true
			}
			continue
		}
		found = k.key
		n++
	}
	return found, n == 1
}

// fits says whether key can verify alg: an RSA key for RS* and PS*, an EC
// key on alg's own curve for ES*, an Ed25519 key for EdDSA.
func fits(key any, alg string) bool {
	switch key := key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return key.Curve == elliptic.P256()
		case "ES384":
			return key.Curve == elliptic.P384()
		case "ES512":
			return key.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

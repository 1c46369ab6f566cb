package media

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// FetchTimeout is the whole-download timeout of the client a Fetcher uses when
// it has none.
const FetchTimeout = 30 * time.Second

var defaultFetchClient = &http.Client{Timeout: FetchTimeout}

// Fetcher downloads a client's media from the provider's short-lived URL, at
// once, with a size cap.
type Fetcher struct {
	// Client makes the requests; nil means a client with a FetchTimeout timeout.
	Client *http.Client
	// MaxBytes caps the download; a larger body is ErrTooLarge. Zero or less
	// means the spec's default file limit, DefaultLimits().FileMax (50 MB).
	MaxBytes int64
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

// Fetch downloads rawURL (http or https only) into st. It refuses an answer
// outside 2xx with a *StatusError, and a body longer than the cap with
// ErrTooLarge (at once when Content-Length says so; otherwise after reading at
// most MaxBytes+1 bytes); nothing is stored then. It honours ctx's deadline and
// cancellation. It returns the blob and the Content-Type header, which is the
// sender's claim only: check the bytes with CheckImage or CheckFile.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string, st *Store) (Blob, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Blob{}, "", fmt.Errorf("media: download: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Blob{}, "", fmt.Errorf("media: download: scheme %q refused: only http and https", u.Scheme)
	}
	if u.Host == "" {
		return Blob{}, "", errors.New("media: download: the URL has no host")
	}
	max := f.MaxBytes
	if max <= 0 {
		max = DefaultLimits().FileMax
	}
	client := f.Client
	if client == nil {
		client = defaultFetchClient
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Blob{}, "", fmt.Errorf("media: download: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
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

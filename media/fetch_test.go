package media_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"sessiondesk/media"
)

func TestFetchStoresBody(t *testing.T) {
	body := jpegBytes(t, 64, 48)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/media/abc" || r.URL.Query().Get("sig") != "s3cret" {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(body)
	}))
	defer srv.Close()
	s, _ := newStore(t)
	f := &media.Fetcher{MaxBytes: 5 * media.MB, Allow: []string{srv.URL + "/"}}
	b, ctype, err := f.Fetch(context.Background(), srv.URL+"/media/abc?sig=s3cret", s)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "image/jpeg" || b.Hash != sha(body) || b.Size != int64(len(body)) {
		t.Fatalf("got %+v %q", b.Size, ctype)
	}
	c, rej := media.CheckImage(b.Head, b.Size, media.DefaultLimits())
	if rej != nil || c.Width != 64 {
		t.Fatalf("the fetched image does not check: %+v %v", c, rej)
	}
	rc, err := s.Open(b.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); !bytes.Equal(got, body) {
		t.Fatal("stored bytes differ from the served ones")
	}
}

func TestFetchNon2xxRefused(t *testing.T) {
	for _, c := range []struct{ redirect, code int }{
		{0, http.StatusNotFound},
		{0, http.StatusGone},
		{0, http.StatusInternalServerError},
		{http.StatusFound, http.StatusForbidden}, // a redirect is followed, here to a 403
	} {
		code := c.code
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c.redirect != 0 && r.URL.Path != "/denied" {
				http.Redirect(w, r, "/denied", c.redirect)
				return
			}
			http.Error(w, "nothing here", code)
		}))
		s, dir := newStore(t)
		_, _, err := (&media.Fetcher{Allow: []string{srv.URL + "/"}}).Fetch(context.Background(), srv.URL+"/media/x?token=hush", s)
		srv.Close()
		var se *media.StatusError
		if !errors.As(err, &se) || se.StatusCode != code {
			t.Fatalf("%d: err %v, want a StatusError", code, err)
		}
		if !strings.Contains(err.Error(), strconv.Itoa(code)) || !strings.Contains(err.Error(), http.StatusText(code)) {
			t.Errorf("%d: the error %q does not name the status", code, err)
		}
		if strings.Contains(err.Error(), "hush") {
			t.Errorf("the error %q shows the URL's query", err)
		}
		if got := files(t, dir); len(got) != 0 {
			t.Errorf("%d: stored %v", code, got)
		}
	}
}

func TestFetchOverCap(t *testing.T) {
	const max = 10_000
	for _, announced := range []bool{true, false} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if announced {
				w.Header().Set("Content-Length", strconv.Itoa(max+1))
				w.Write(bytes.Repeat([]byte("z"), max+1))
				return
			}
			// Chunked, without a length: up to 1 MB unless the client hangs up first.
			chunk := bytes.Repeat([]byte("z"), 10_000)
			for range 100 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}))
		s, dir := newStore(t)
		_, _, err := (&media.Fetcher{MaxBytes: max, Allow: []string{srv.URL + "/"}}).Fetch(context.Background(), srv.URL, s)
		srv.Close()
		if !errors.Is(err, media.ErrTooLarge) {
			t.Fatalf("announced=%v: err %v, want ErrTooLarge", announced, err)
		}
		if got := files(t, dir); len(got) != 0 {
			t.Fatalf("announced=%v: left behind %v", announced, got)
		}
	}
}

func TestFetchExactlyCap(t *testing.T) {
	body := bytes.Repeat([]byte("k"), 10_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
	defer srv.Close()
	s, _ := newStore(t)
	b, _, err := (&media.Fetcher{MaxBytes: int64(len(body)), Allow: []string{srv.URL + "/"}}).Fetch(context.Background(), srv.URL, s)
	if err != nil || b.Size != int64(len(body)) {
		t.Fatalf("%+v, %v", b.Size, err)
	}
}

// A provider that never answers, or stops halfway, does not hold the download
// past the context's deadline, and leaves nothing stored.
func TestFetchHonoursContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/halfway" {
			w.Header().Set("Content-Length", "100000")
			w.Write(make([]byte, 50_000))
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // runs before srv.Close, which waits for the handlers
	for _, path := range []string{"/silent", "/halfway"} {
		s, dir := newStore(t)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		start := time.Now()
		_, _, err := (&media.Fetcher{Allow: []string{srv.URL + "/"}}).Fetch(ctx, srv.URL+path, s)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: err %v, want the context's deadline", path, err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("%s: took %v", path, took)
		}
		if got := files(t, dir); len(got) != 0 {
			t.Fatalf("%s: left behind %v", path, got)
		}
	}
	// Cancelling works as well as a deadline.
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, _, err := (&media.Fetcher{Allow: []string{srv.URL + "/"}}).Fetch(ctx, srv.URL+"/silent", s); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestFetchClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	s, _ := newStore(t)
	f := &media.Fetcher{Timeout: 150 * time.Millisecond, Allow: []string{srv.URL + "/"}}
	start := time.Now()
	_, _, err := f.Fetch(context.Background(), srv.URL, s)
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestFetchRefusesOtherSchemes(t *testing.T) {
	s, dir := newStore(t)
	for _, u := range []string{
		"file:///etc/passwd",
		"ftp://example.invalid/x.pdf",
		"gopher://example.invalid/",
		"data:text/html,<script>1</script>",
		"javascript:alert(1)",
		"/relative/path",
		"http:///nohost",
		"http://[::1",
		"",
	} {
		if _, _, err := (&media.Fetcher{}).Fetch(context.Background(), u, s); err == nil {
			t.Errorf("%q was fetched", u)
		}
	}
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("stored %v", got)
	}
}

package upload_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"sessiondesk/media"
	"sessiondesk/media/upload"
	"sessiondesk/session"
)

func newBlobs(t *testing.T) *media.Store {
	t.Helper()
	s, err := media.NewStore(filepath.Join(t.TempDir(), "media"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var spec = upload.Spec{
	Fields:      map[string]int64{"text": 4096, "type": 16, "confirm_new_session": 16},
	Files:       []string{"files", "file"},
	MaxFiles:    3,
	MaxFileSize: 1 << 20,
}

// counting counts what a reader gave.
type counting struct {
	r io.Reader
	n int64
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// form writes a multipart body with write and returns it and its content type.
func form(t *testing.T, write func(w *multipart.Writer) error) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if err := write(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), w.FormDataContentType()
}

func fields(n int, name func(i int) string, value string) func(w *multipart.Writer) error {
	return func(w *multipart.Writer) error {
		for i := range n {
			if err := w.WriteField(name(i), value); err != nil {
				return err
			}
		}
		return nil
	}
}

func wantError(t *testing.T, err error, status int, code string, says ...string) {
	t.Helper()
	var e *upload.Error
	if !errors.As(err, &e) || e.Status != status || e.Code != code {
		t.Fatalf("error %v (%T), want %d %s", err, err, status, code)
	}
	for _, s := range says {
		if !strings.Contains(e.Message, s) {
			t.Errorf("message %q does not say %q", e.Message, s)
		}
	}
}

// A form of 10,000 fields, however they are named, is refused after reading a
// small, fixed part of it: memory does not grow with what a client sends.
func TestManyFieldsRefusedEarly(t *testing.T) {
	// What Read may read at most before refusing: every field at its limit and
	// every part's overhead (see Spec), and the multipart reader's read-ahead.
	const bound = 64 << 10
	for _, tc := range []struct {
		name   string
		write  func(w *multipart.Writer) error
		status int
		code   string
		says   string
	}{
		{"10,000 unknown fields", fields(10_000, func(i int) string { return fmt.Sprintf("f%d", i) }, "x"),
			400, "unknown_field", `"f0"`},
		{"10,000 text fields", fields(10_000, func(int) string { return "text" }, "hello"),
			400, "duplicate_field", `"text"`},
		{"10,000 empty file inputs", func(w *multipart.Writer) error {
			for range 10_000 {
				if _, err := w.CreateFormFile("files", ""); err != nil {
					return err
				}
			}
			return nil
		}, 413, "too_large", "parts"},
		{"a 10 MB text field", fields(1, func(int) string { return "text" }, strings.Repeat("a", 10<<20)),
			413, "too_large", "text field is over 4096 bytes"},
		{"a 10 MB part header", func(w *multipart.Writer) error {
			_, err := w.CreatePart(map[string][]string{
				"Content-Disposition": {`form-data; name="text"`},
				"X-Padding":           {strings.Repeat("p", 10<<20)},
			})
			return err
		}, 413, "too_large", "fields and headers"},
		{"10,000 unnamed files", func(w *multipart.Writer) error {
			for range 10_000 {
				p, err := w.CreateFormFile("file", "")
				if err != nil {
					return err
				}
				if _, err := p.Write(bytes.Repeat([]byte{'z'}, 1000)); err != nil {
					return err
				}
			}
			return nil
		}, 413, "too_large", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := form(t, tc.write)
			r := &counting{r: bytes.NewReader(body)}
			_, err := upload.Read(ct, r, spec, newBlobs(t))
			wantError(t, err, tc.status, tc.code, tc.says)
			if r.n > bound {
				t.Errorf("read %d of %d bytes before refusing; want at most %d", r.n, len(body), bound)
			}
			t.Logf("refused after %d of %d bytes", r.n, len(body))
		})
	}
}

// A good form gives its fields and files, streamed into the store.
func TestReadKnownFieldsAndFiles(t *testing.T) {
	blobs := newBlobs(t)
	body, ct := form(t, func(w *multipart.Writer) error {
		_ = w.WriteField("text", "Hello\r\nthere")
		_ = w.WriteField("confirm_new_session", "1")
		if _, err := w.CreateFormFile("files", ""); err != nil { // an empty input
			return err
		}
		for _, name := range []string{"a.pdf", "b.txt"} {
			p, err := w.CreateFormFile("files", name)
			if err != nil {
				return err
			}
			fmt.Fprintf(p, "content of %s", name)
		}
		return nil
	})
	f, err := upload.Read(ct, bytes.NewReader(body), spec, blobs)
	if err != nil {
		t.Fatal(err)
	}
	if f.Fields["text"] != "Hello\r\nthere" || f.Fields["confirm_new_session"] != "1" || len(f.Files) != 2 ||
		f.Files[0].Name != "a.pdf" || f.Files[1].Name != "b.txt" {
		t.Fatalf("form = %+v", f)
	}
	rc, err := blobs.Open(f.Files[1].Blob.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "content of b.txt" {
		t.Errorf("stored %q", b)
	}
}

// Each limit gives its own clear answer.
func TestReadRefusals(t *testing.T) {
	blobs := newBlobs(t)
	file := func(name string, size int) func(w *multipart.Writer) error {
		return func(w *multipart.Writer) error {
			p, err := w.CreateFormFile("file", name)
			if err == nil {
				_, err = p.Write(bytes.Repeat([]byte{'a'}, size))
			}
			return err
		}
	}
	// Too many files is a refusal the composer shows.
	body, ct := form(t, func(w *multipart.Writer) error {
		for i := range 4 {
			if err := file(fmt.Sprintf("%d.txt", i), 10)(w); err != nil {
				return err
			}
		}
		return nil
	})
	_, err := upload.Read(ct, bytes.NewReader(body), spec, blobs)
	var refusal *session.Refusal
	if !errors.As(err, &refusal) || refusal.Code != session.FileRejected || !strings.Contains(refusal.Message, "At most 3") {
		t.Fatalf("four files: %v", err)
	}
	body, ct = form(t, file("big.pdf", 1<<20+1))
	_, err = upload.Read(ct, bytes.NewReader(body), spec, blobs)
	wantError(t, err, 413, "file_rejected", "at most 1.048576 MB")

	_, err = upload.Read("application/json", strings.NewReader("{}"), spec, blobs)
	wantError(t, err, 415, "bad_request", "multipart/form-data")

	// A body cut short is a 400, not a hang or a panic.
	body, ct = form(t, file("a.txt", 100))
	_, err = upload.Read(ct, bytes.NewReader(body[:len(body)/2]), spec, blobs)
	wantError(t, err, 400, "bad_request", "Could not read")

	// A body over the server's cap.
	body, ct = form(t, file("a.txt", 100_000))
	_, err = upload.Read(ct, http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(body)), 50_000), spec, blobs)
	wantError(t, err, 413, "too_large", "over 50 KB")
}

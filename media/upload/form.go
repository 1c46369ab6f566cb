// Package upload takes in what agents (and the sandbox phone) upload: it reads
// a multipart form with bounded memory, streaming files into the media store
// and holding only known, small fields; then, for a send, it checks every
// attachment by its bytes and the whole send against the session rules before
// making any thumbnail, and hands the send to the store.
//
// A refused upload deletes nothing: identical bytes may be on their way into
// an accepted message at the same moment. Unused blobs go with the media
// store's periodic Sweep.
package upload

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"sessiondesk/media"
	"sessiondesk/session"
)

// Error is an upload refused before any rule was asked: malformed, too large,
// too slow. Status is its HTTP status (400, 408 or 413), Code a stable word
// for scripts, Message a sentence for people.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

func badRequest(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

func tooLarge(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Spec is what one multipart form may hold. Anything else is refused.
type Spec struct {
	// Fields are the text fields, each with the most bytes it may have. Each
	// appears at most once.
	Fields map[string]int64
	// Files are the names of the fields that carry files; they may repeat.
	Files []string
	// MaxFiles is how many files one form may carry, MaxFileSize how large each.
	MaxFiles    int
	MaxFileSize int64
}

// partOverhead is what a part costs besides its content: its boundary line and
// headers (Content-Disposition with a file name, Content-Type). Generous.
const partOverhead = 2 << 10

// readSlack covers the multipart reader's read-ahead (4 KB), which may fetch
// part of a file before its bytes are counted as the file's.
const readSlack = 16 << 10

// maxParts is how many parts a form under spec may have: every field once,
// every file, and one empty file input (a browser sends one when nothing was picked).
func (sp Spec) maxParts() int { return len(sp.Fields) + sp.MaxFiles + 1 }

// fieldBudget is the most bytes of a form that may be anything but file
// content: the fields at their largest and every part's overhead.
func (sp Spec) fieldBudget() int64 {
	var n int64
	for _, max := range sp.Fields {
		n += max
	}
	return n + int64(sp.maxParts())*partOverhead + readSlack
}

func (sp Spec) known() string {
	names := append(slices.Sorted(func(yield func(string) bool) {
		for k := range sp.Fields {
			if !yield(k) {
				return
			}
		}
	}), sp.Files...)
	return strings.Join(names, ", ")
}

// Form is a multipart form read under a Spec.
type Form struct {
	Fields map[string]string
	Files  []File
}

// File is an uploaded file, already in the media store.
type File struct {
	Name string // as the browser sent it; not sanitized
	Blob media.Blob
}

// Read streams a multipart/form-data body (contentType is the request's
// Content-Type) with NextPart, one part at a time: files go to blobs, capped at
// spec.MaxFileSize each; fields are held in memory, capped at their size in
// spec. What is not file content (fields, part headers, boundaries) may not
// exceed the fields' sizes plus a small overhead a part: a form with thousands
// of fields, a huge header or an unknown field is refused after reading about
// that much, never all of it.
//
// Errors are an *Error (400, 408, 413), or a *session.Refusal when a form
// holds more files than spec.MaxFiles. Files stored before an error stay in
// the store until its sweep.
func Read(contentType string, body io.Reader, spec Spec, blobs *media.Store) (Form, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return Form{}, &Error{Status: http.StatusUnsupportedMediaType, Code: "bad_request",
			Message: "Send the form as multipart/form-data with a boundary."}
	}
	m := &meter{r: body, budget: spec.fieldBudget()}
	mr := multipart.NewReader(m, params["boundary"])
	form := Form{Fields: make(map[string]string, len(spec.Fields))}
	parts := 0
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return form, nil
		}
		if err != nil {
			return form, readError(err, spec, m)
		}
		if parts++; parts > spec.maxParts() {
			return form, tooLarge("too_large", "The form has more than %d parts; a send has at most %d files and the fields %s once each.",
				spec.maxParts(), spec.MaxFiles, spec.known())
		}
		name := part.FormName()
		switch {
		case slices.Contains(spec.Files, name):
			if part.FileName() == "" {
				continue // an empty file input; NextPart skips its content
			}
			if len(form.Files) == spec.MaxFiles {
				return form, session.Refuse(session.FileRejected, fmt.Sprintf("At most %d attachments go in one send.", spec.MaxFiles))
			}
			blob, err := blobs.Put(&fileBytes{r: part, m: m}, spec.MaxFileSize)
			if err != nil {
				return form, readError(err, spec, m)
			}
			form.Files = append(form.Files, File{Name: part.FileName(), Blob: blob})
		case spec.Fields[name] > 0:
			if _, dup := form.Fields[name]; dup {
				return form, badRequest("duplicate_field", "The form has the field %q twice.", name)
			}
			max := spec.Fields[name]
			b, err := io.ReadAll(io.LimitReader(part, max+1))
			if err != nil {
				return form, readError(err, spec, m)
			}
			if int64(len(b)) > max {
				return form, tooLarge("too_large", "The %s field is over %d bytes.", name, max)
			}
			form.Fields[name] = string(b)
		default:
			return form, badRequest("unknown_field", "The form has an unknown field %s; it may have only: %s.",
				quoteShort(name), spec.known())
		}
	}
}

// readError turns a failed read into a clear *Error.
func readError(err error, spec Spec, m *meter) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, media.ErrTooLarge):
		return tooLarge(string(session.FileRejected), "The file is too large: an attachment may be at most %s.", size(spec.MaxFileSize))
	case errors.Is(err, errFieldsTooLarge), errors.Is(err, multipart.ErrMessageTooLarge):
		return tooLarge("too_large", "The form's fields and headers are over %s in all; only the fields %s are read.",
			size(m.budget), spec.known())
	case errors.As(err, &tooBig):
		return tooLarge("too_large", "The request is over %s.", size(tooBig.Limit))
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &Error{Status: http.StatusRequestTimeout, Code: "timeout",
			Message: "The upload arrived too slowly and was stopped; try again, or on a faster connection."}
	}
	return badRequest("bad_request", "Could not read the upload: %v", err)
}

// quoteShort quotes a name sent by a client, cut so that a huge one is not
// echoed back whole.
func quoteShort(s string) string {
	const show = 40
	if len(s) > show {
		s = s[:show] + "…"
	}
	return strconv.Quote(strings.ToValidUTF8(s, "?"))
}

// size writes a byte count in the limits' decimal units.
func size(n int64) string {
	switch {
	case n >= media.MB:
		return strconv.FormatFloat(float64(n)/float64(media.MB), 'f', -1, 64) + " MB"
	case n >= media.KB:
		return strconv.FormatInt(n/media.KB, 10) + " KB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

var errFieldsTooLarge = errors.New("upload: more field bytes than the form allows")

// meter counts what is read from the body and refuses to read on once more
// than budget bytes of it were not file content.
type meter struct {
	r      io.Reader
	read   int64 // bytes read from the body
	files  int64 // bytes of it delivered as file content
	budget int64
}

func (m *meter) Read(p []byte) (int, error) {
	if m.read-m.files > m.budget {
		return 0, errFieldsTooLarge
	}
	n, err := m.r.Read(p)
	m.read += int64(n)
	return n, err
}

// fileBytes credits a file part's content to the meter as it is read.
type fileBytes struct {
	r io.Reader
	m *meter
}

func (f *fileBytes) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	f.m.files += int64(n)
	return n, err
}

package media

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrTooLarge says that a stream had more bytes than the limit it was read
// with. Nothing of it was kept. The HTTP handlers answer it with 413.
var ErrTooLarge = errors.New("media: more bytes than the limit")

// ErrBadHash says that a blob was named by something other than a hex SHA-256:
// 64 lower-case hexadecimal digits. Such a name is never turned into a path.
var ErrBadHash = errors.New("media: not a blob hash (64 lower-case hex digits)")

// Store keeps attachment bytes under one folder, content-addressed by their
// SHA-256: a blob lives at ab/cd/<hash>, where ab and cd are the hash's first
// two pairs of digits. Identical content is stored once. A Store is safe for
// concurrent use, also by several processes sharing the folder.
//
// The store does not count references: Delete removes the blob whatever else
// refers to it, so callers delete only a hash that no record uses (see Delete).
type Store struct {
	dir string
}

// Temporary files are written in the store's own folder, so that the final
// rename stays on one file system and is atomic. Their names start with a dot
// and can never be a blob's path.
const (
	tempPattern = ".put-*.tmp"
	// staleTemp is how old a temporary file must be for NewStore to remove it as
	// left over by a crash; a Put in progress keeps writing to its file.
	staleTemp = time.Hour
)

// NewStore opens the store in dir, creating the folder (mode 0750) when it does
// not exist, and removes temporary files that a crashed process left behind.
func NewStore(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("media: no folder for the store")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("media: store folder: %w", err)
	}
	s := &Store{dir: dir}
	s.removeStaleTemps(time.Now().Add(-staleTemp))
	return s, nil
}

func (s *Store) removeStaleTemps(before time.Time) {
	matches, _ := filepath.Glob(filepath.Join(s.dir, tempPattern))
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && fi.Mode().IsRegular() && fi.ModTime().Before(before) {
			_ = os.Remove(m)
		}
	}
}

// Blob is a stored piece of content.
type Blob struct {
	Hash string // hex SHA-256 of the content, lower case
	Size int64  // in bytes
	// Head is the first HeadSize bytes of the content (all of it when smaller),
	// for sniffing with CheckImage or CheckFile.
	Head []byte
}

// Put streams r into the store without holding it in memory: into a temporary
// file in the store's folder while hashing, then renames it to its
// content-addressed path. An identical blob already stored is kept and the new
// copy dropped.
//
// At most max+1 bytes are read from r: when more than max bytes arrive, Put
// stops at once and returns ErrTooLarge; exactly max bytes are accepted. On any
// error (too large, a failing reader, a full disk) the temporary file is
// removed: Put never leaves a partial file and never stores a blob it did not
// read whole. max must not be negative.
func (s *Store) Put(r io.Reader, max int64) (Blob, error) {
	if max < 0 {
		return Blob{}, fmt.Errorf("media: negative size limit %d", max)
	}
	tmp, err := os.CreateTemp(s.dir, tempPattern)
	if err != nil {
		return Blob{}, fmt.Errorf("media: store: %w", err)
	}
	tmpName := tmp.Name()
	kept := false
	defer func() {
		if !kept {
			_ = tmp.Close() // a second Close only returns an error, which is not needed
			_ = os.Remove(tmpName)
		}
	}()

	limit := max + 1 // one byte more than allowed tells "too large" from "exactly max"
	if max == math.MaxInt64 {
		limit = max
	}
	h := sha256.New()
	head := &headWriter{buf: make([]byte, 0, min(max, HeadSize))}
	buf := make([]byte, 64<<10)
	n, err := io.CopyBuffer(io.MultiWriter(tmp, h, head), io.LimitReader(r, limit), buf)
	if err != nil {
		return Blob{}, fmt.Errorf("media: store: %w", err)
	}
	if n > max {
		return Blob{}, ErrTooLarge
	}
	if err := tmp.Chmod(0o640); err != nil {
		return Blob{}, fmt.Errorf("media: store: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return Blob{}, fmt.Errorf("media: store: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Blob{}, fmt.Errorf("media: store: %w", err)
	}

	b := Blob{Hash: hex.EncodeToString(h.Sum(nil)), Size: n, Head: head.buf}
	final := s.path(b.Hash)
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() && fi.Size() == n {
		return b, nil // already stored: keep the existing copy (the deferred cleanup drops ours)
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o750); err != nil {
		return Blob{}, fmt.Errorf("media: store: %w", err)
	}
	// Rename is atomic: a reader sees either no blob or the whole of it. Two Puts
	// of the same content at once both rename identical bytes into place.
	if err := os.Rename(tmpName, final); err != nil {
		return Blob{}, fmt.Errorf("media: store: %w", err)
	}
	kept = true
	return b, nil
}

// headWriter keeps the first cap(buf) bytes written to it.
type headWriter struct{ buf []byte }

func (w *headWriter) Write(p []byte) (int, error) {
	if room := cap(w.buf) - len(w.buf); room > 0 {
		w.buf = append(w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// ValidHash reports whether h names a blob: 64 lower-case hexadecimal digits.
func ValidHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	for i := range len(h) {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// path is where a blob with a valid hash lives.
func (s *Store) path(hash string) string {
	return filepath.Join(s.dir, hash[0:2], hash[2:4], hash)
}

func badHash(hash string) error {
	const show = 80 // enough to recognise it, without echoing a huge input
	if len(hash) > show {
		hash = hash[:show] + "…"
	}
	return fmt.Errorf("%w: %q", ErrBadHash, strings.ToValidUTF8(hash, "?"))
}

// Path returns the file of a stored blob, for http.ServeFile or another
// process. It returns an error wrapping ErrBadHash when hash is not 64
// lower-case hex digits (nothing else ever becomes a path) and one wrapping
// fs.ErrNotExist when no such blob is stored.
func (s *Store) Path(hash string) (string, error) {
	if !ValidHash(hash) {
		return "", badHash(hash)
	}
	p := s.path(hash)
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// Open opens a stored blob for reading; an *os.File is an io.ReadSeeker, as
// http.ServeContent needs. It returns an error wrapping ErrBadHash when hash is
// not 64 lower-case hex digits and one wrapping fs.ErrNotExist when no such
// blob is stored.
func (s *Store) Open(hash string) (*os.File, error) {
	if !ValidHash(hash) {
		return nil, badHash(hash)
	}
	return os.Open(s.path(hash))
}

// Delete removes a stored blob; a blob that is not there is not an error. It is
// meant for a blob refused right after Put (a failed CheckImage or CheckFile).
// Because identical content is stored once, the same hash may belong to an
// earlier, accepted attachment: callers delete a hash only when no stored
// record refers to it.
func (s *Store) Delete(hash string) error {
	if !ValidHash(hash) {
		return badHash(hash)
	}
	if err := os.Remove(s.path(hash)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

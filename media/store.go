package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
// The store does not count references. Nothing deletes a blob inline when an
// upload is refused: the same bytes may be on their way into an accepted
// message at that very moment. Sweep removes, from time to time, the blobs
// that no record refers to and that are older than a grace period; Put
// refreshes the age of a blob it finds already stored, so bytes an upload is
// about to use are never swept.
type Store struct {
	dir string
	// mu makes Put's "already stored? then refresh its age, else rename it into
	// place" one step against Sweep's "old and unused? then remove it", in this
	// process.
	mu sync.Mutex
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
		return nil, fmt.Errorf("media folder %s cannot be created: %w", dir, pathCause(err))
	}
	// Every Put writes a temporary file here: find out now, by name, when it cannot.
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return nil, fmt.Errorf("media folder %s is not writable: %w", dir, pathCause(err))
	}
	f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return nil, fmt.Errorf("media folder %s is not writable: %w", dir, pathCause(err))
	}
	s := &Store{dir: dir}
	s.removeStaleTemps(time.Now().Add(-staleTemp))
	return s, nil
}

// pathCause is the system's reason in a path error ("permission denied"),
// without the path of the file tried, which callers name themselves.
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() && fi.Size() == n {
		// Already stored: keep the existing copy (the deferred cleanup drops
		// ours), made young again so that Sweep leaves it to the caller.
		now := time.Now()
		if err := os.Chtimes(final, now, now); err != nil {
			return Blob{}, fmt.Errorf("media: store: %w", err)
		}
		return b, nil
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

// Delete removes a stored blob at once; a blob that is not there is not an
// error. Because identical content is stored once and a concurrent upload may
// be about to use it, the inbox never deletes inline: Sweep removes unused
// blobs after a grace period. Delete is for tools and tests.
func (s *Store) Delete(hash string) error {
	if !ValidHash(hash) {
		return badHash(hash)
	}
	if err := os.Remove(s.path(hash)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// InUse reports whether a stored record refers to a blob (as its bytes or its
// thumbnail).
type InUse func(ctx context.Context, hash string) (bool, error)

// Sweep removes the blobs that inUse says nothing refers to and whose files
// were last written (or last found by Put) before olderThan, and returns how
// many it removed. A blob younger than that may belong to an upload still in
// progress (stored, not yet accepted), so callers pass now minus a grace
// period longer than any upload takes to be accepted. Temporary files left by
// a crash (older than an hour) go too. Files whose names are not blob hashes
// are left alone.
func (s *Store) Sweep(ctx context.Context, olderThan time.Time, inUse InUse) (removed int, err error) {
	s.removeStaleTemps(time.Now().Add(-staleTemp))
	err = filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !ValidHash(d.Name()) || p != s.path(d.Name()) {
			return nil
		}
		gone, err := s.sweepOne(ctx, d.Name(), olderThan, inUse)
		if gone {
			removed++
		}
		return err
	})
	if err != nil {
		return removed, fmt.Errorf("media: sweep: %w", err)
	}
	return removed, nil
}

// sweepOne removes one blob if it is old and unused, under mu so that a Put of
// the same bytes either finds it young again or finds it gone and stores it anew.
func (s *Store) sweepOne(ctx context.Context, hash string, olderThan time.Time, inUse InUse) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.path(hash)
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || !fi.ModTime().Before(olderThan) {
		return false, nil
	}
	used, err := inUse(ctx, hash)
	if err != nil || used {
		return false, err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// SweepEvery runs Sweep now and then every interval until ctx ends, with the
// given grace period, logging what it removed and any failure.
func (s *Store) SweepEvery(ctx context.Context, interval, grace time.Duration, inUse InUse, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.Sweep(ctx, time.Now().Add(-grace), inUse)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("media sweep failed", "removed", n, "err", err)
		case n > 0:
			log.Info("media sweep removed unused blobs", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

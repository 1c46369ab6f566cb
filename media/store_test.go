package media_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"sessiondesk/media"
)

func newStore(t *testing.T) (*media.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "media")
	s, err := media.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// files lists the regular files under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNewStoreCreatesFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if _, err := media.NewStore(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		t.Fatalf("folder not made: %v", err)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		t.Errorf("folder mode %v: open to others", perm)
	}
	if _, err := media.NewStore(""); err == nil {
		t.Error("an empty folder name was accepted")
	}
}

func TestPutContentAddressed(t *testing.T) {
	s, dir := newStore(t)
	data := []byte("an invoice, more or less")
	b, err := s.Put(bytes.NewReader(data), 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := sha(data)
	if b.Hash != want || b.Size != int64(len(data)) || !bytes.Equal(b.Head, data) {
		t.Fatalf("blob %+v, want hash %s size %d", b, want, len(data))
	}
	got := files(t, dir)
	wantPath := filepath.Join(want[:2], want[2:4], want)
	if len(got) != 1 || got[0] != wantPath {
		t.Fatalf("files %v, want [%s]", got, wantPath)
	}
	f, err := s.Open(b.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	back, _ := io.ReadAll(f)
	if !bytes.Equal(back, data) {
		t.Fatal("stored bytes differ")
	}
	if p, err := s.Path(b.Hash); err != nil || p != filepath.Join(dir, wantPath) {
		t.Fatalf("Path = %q, %v", p, err)
	}
	fi, _ := os.Stat(filepath.Join(dir, wantPath))
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		t.Errorf("blob mode %v: open to others", perm)
	}
}

func TestPutHeadIsCapped(t *testing.T) {
	s, _ := newStore(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), media.HeadSize/16*3+5) // 3 heads and a bit
	b, err := s.Put(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Head) != media.HeadSize || !bytes.Equal(b.Head, data[:media.HeadSize]) {
		t.Fatalf("head of %d bytes, want the first %d", len(b.Head), media.HeadSize)
	}
	if b.Size != int64(len(data)) || b.Hash != sha(data) {
		t.Fatalf("blob %s/%d, want %s/%d", b.Hash, b.Size, sha(data), len(data))
	}
}

func TestPutDedup(t *testing.T) {
	s, dir := newStore(t)
	data := []byte("the same screenshot twice")
	b1, err := s.Put(bytes.NewReader(data), 100)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Path(b1.Hash)
	before, _ := os.Stat(p)
	b2, err := s.Put(bytes.NewReader(data), 100)
	if err != nil {
		t.Fatal(err)
	}
	if b1.Hash != b2.Hash || b1.Size != b2.Size {
		t.Fatalf("%+v vs %+v", b1, b2)
	}
	if got := files(t, dir); len(got) != 1 {
		t.Fatalf("files %v, want one blob", got)
	}
	after, _ := os.Stat(p)
	if !os.SameFile(before, after) {
		t.Error("the existing blob was replaced rather than kept")
	}
	b3, _ := s.Put(strings.NewReader("other content"), 100)
	if b3.Hash == b1.Hash || len(files(t, dir)) != 2 {
		t.Error("different content was not stored separately")
	}
}

func TestPutConcurrentSameContent(t *testing.T) {
	s, dir := newStore(t)
	data := bytes.Repeat([]byte{7}, 100_000)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			b, err := s.Put(bytes.NewReader(data), 1<<20)
			if err == nil && b.Hash != sha(data) {
				err = errors.New("wrong hash")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := files(t, dir); len(got) != 1 {
		t.Fatalf("files %v, want one blob", got)
	}
}

func TestPutLimit(t *testing.T) {
	s, dir := newStore(t)
	const max = 1000
	exact := bytes.Repeat([]byte("x"), max)
	b, err := s.Put(bytes.NewReader(exact), max)
	if err != nil || b.Size != max {
		t.Fatalf("exactly max bytes: %+v, %v", b.Size, err)
	}

	over := append(bytes.Repeat([]byte("y"), max), 'z')
	if _, err := s.Put(bytes.NewReader(over), max); !errors.Is(err, media.ErrTooLarge) {
		t.Fatalf("max+1 bytes: err %v, want ErrTooLarge", err)
	}
	if got := files(t, dir); len(got) != 1 {
		t.Fatalf("files %v: only the exact blob should be there", got)
	}

	if _, err := s.Put(strings.NewReader("a"), 0); !errors.Is(err, media.ErrTooLarge) {
		t.Errorf("1 byte with max 0: %v", err)
	}
	if b, err := s.Put(strings.NewReader(""), 0); err != nil || b.Size != 0 || b.Hash != sha(nil) {
		t.Errorf("empty with max 0: %+v, %v", b, err)
	}
	if _, err := s.Put(strings.NewReader("a"), -1); err == nil {
		t.Error("a negative limit was accepted")
	}
}

// countingReader counts what was read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestPutStopsReadingPastLimit(t *testing.T) {
	s, _ := newStore(t)
	cr := &countingReader{r: &lazyReader{left: 10 << 20}}
	if _, err := s.Put(cr, 1000); !errors.Is(err, media.ErrTooLarge) {
		t.Fatal(err)
	}
	if cr.n != 1001 {
		t.Fatalf("read %d bytes with a limit of 1000; want 1001", cr.n)
	}
}

// failingReader yields n bytes, then an error.
type failingReader struct{ n int }

var errBroken = errors.New("connection reset halfway")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errBroken
	}
	k := min(f.n, len(p))
	for i := range k {
		p[i] = 'q'
	}
	f.n -= k
	return k, nil
}

func TestPutFailingReaderLeavesNothing(t *testing.T) {
	s, dir := newStore(t)
	_, err := s.Put(&failingReader{n: 200_000}, 1<<20)
	if !errors.Is(err, errBroken) {
		t.Fatalf("err %v, want the reader's error", err)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("left behind: %v", got)
	}
}

// lazyReader produces left bytes of a pattern without ever holding them.
type lazyReader struct{ left int64 }

var pattern = bytes.Repeat([]byte("sessiondesk-"), 64<<10/12)

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && l.left > 0 {
		k := int64(copy(p[n:], pattern))
		k = min(k, l.left)
		n += int(k)
		l.left -= k
	}
	return n, nil
}

// A 60 MB upload against the 50 MB file limit is refused after being streamed
// to disk, without the process holding it in memory.
func TestPut60MBStreamRefusedWithoutBuffering(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 50 MB")
	}
	s, dir := newStore(t)
	const size, max = 60 * media.MB, 50 * media.MB
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := s.Put(&lazyReader{left: size}, max)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, media.ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KB while streaming %d MB", allocated>>10, size/media.MB)
	if allocated > 4<<20 {
		t.Fatalf("allocated %d bytes while streaming: the stream was buffered", allocated)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("left behind: %v", got)
	}
}

func TestHashesAreValidated(t *testing.T) {
	s, dir := newStore(t)
	// A file where a traversal would land, to be sure it is not reached.
	secret := filepath.Join(filepath.Dir(dir), "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := sha([]byte("x"))
	bad := []string{
		"../../etc/passwd",
		"../secret",
		"",
		good[:63],
		good + "0",
		strings.ToUpper(good),
		good[:62] + "/x",
		good[:63] + "g",
		"ab/cd/" + good,
		strings.Repeat(".", 64),
		good[:63] + "\x00",
	}
	for _, h := range bad {
		if media.ValidHash(h) {
			t.Errorf("ValidHash(%q) = true", h)
		}
		if f, err := s.Open(h); !errors.Is(err, media.ErrBadHash) {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open(%q): %v, want ErrBadHash", h, err)
		}
		if p, err := s.Path(h); !errors.Is(err, media.ErrBadHash) || p != "" {
			t.Errorf("Path(%q) = %q, %v", h, p, err)
		}
		if err := s.Delete(h); !errors.Is(err, media.ErrBadHash) {
			t.Errorf("Delete(%q): %v, want ErrBadHash", h, err)
		}
	}
	if _, err := os.Stat(secret); err != nil {
		t.Fatal("the file outside the store was touched")
	}
}

func TestMissingBlob(t *testing.T) {
	s, _ := newStore(t)
	missing := sha([]byte("never stored"))
	if _, err := s.Open(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open: %v, want fs.ErrNotExist", err)
	}
	if _, err := s.Path(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Path: %v, want fs.ErrNotExist", err)
	}
	if err := s.Delete(missing); err != nil {
		t.Errorf("Delete of a missing blob: %v", err)
	}
}

func TestDelete(t *testing.T) {
	s, dir := newStore(t)
	b, err := s.Put(strings.NewReader("<html>named .png</html>"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(b.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(b.Hash); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("still there after Delete: %v", err)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("left behind: %v", got)
	}
	if err := s.Delete(b.Hash); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

func TestNewStoreRemovesStaleTemps(t *testing.T) {
	_, dir := newStore(t)
	stale := filepath.Join(dir, ".put-123.tmp")
	fresh := filepath.Join(dir, ".put-456.tmp")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := media.NewStore(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a stale temporary file was kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("a temporary file in use was removed")
	}
}

// age sets a blob file's modification time to d ago.
func age(t *testing.T, s *media.Store, hash string, d time.Duration) {
	t.Helper()
	p, err := s.Path(hash)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-d)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
}

// Sweep removes only blobs that are both unused and older than the grace
// period; a blob Put again is young again.
func TestSweepRemovesOldOrphansOnly(t *testing.T) {
	s, _ := newStore(t)
	put := func(content string) string {
		b, err := s.Put(strings.NewReader(content), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return b.Hash
	}
	orphan, used, young, reput := put("orphan"), put("used"), put("young"), put("put again")
	for _, h := range []string{orphan, used, reput} {
		age(t, s, h, 2*time.Hour)
	}
	put("put again") // an upload of the same bytes in flight: the old copy is its copy now
	inUse := func(_ context.Context, h string) (bool, error) { return h == used, nil }
	n, err := s.Sweep(context.Background(), time.Now().Add(-time.Hour), inUse)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 removed", n, err)
	}
	if _, err := s.Path(orphan); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the old orphan is still there: %v", err)
	}
	for _, h := range []string{used, young, reput} {
		if _, err := s.Path(h); err != nil {
			t.Errorf("blob %s was swept: %v", h[:8], err)
		}
	}
	// A failing lookup removes nothing.
	age(t, s, young, 2*time.Hour)
	boom := errors.New("database is closed")
	n, err = s.Sweep(context.Background(), time.Now().Add(-time.Hour), func(context.Context, string) (bool, error) { return false, boom })
	if n != 0 || !errors.Is(err, boom) {
		t.Fatalf("Sweep with a failing lookup = %d, %v", n, err)
	}
	if _, err := s.Path(young); err != nil {
		t.Errorf("a failing lookup removed a blob: %v", err)
	}
}

// A folder that cannot hold blobs is named with the system's reason.
func TestNewStoreNamesUnusableFolder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "media")
	_, err := media.NewStore(dir)
	if want := "media folder " + dir + " cannot be created: not a directory"; err == nil || err.Error() != want {
		t.Fatalf("NewStore: %v, want %q", err, want)
	}
}

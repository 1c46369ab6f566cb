package media_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"strings"
	"sync"
	"testing"

	"sessiondesk/media"
)

func putBytes(t *testing.T, s *media.Store, b []byte) media.Blob {
	t.Helper()
	blob, err := s.Put(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return blob
}

// thumbImage reads a thumbnail back and checks that it is a JPEG of w × h.
func thumbImage(t *testing.T, s *media.Store, b media.Blob, w, h int) image.Image {
	t.Helper()
	f, err := s.Open(b.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, _ := io.ReadAll(f)
	if sha(data) != b.Hash || int64(len(data)) != b.Size {
		t.Fatal("the thumbnail blob does not match its bytes")
	}
	if _, rej := media.CheckImage(b.Head, b.Size, media.DefaultLimits()); rej != nil {
		t.Fatalf("the thumbnail fails CheckImage: %v", rej)
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the thumbnail is not a JPEG: %v", err)
	}
	if got := img.Bounds().Size(); got != image.Pt(w, h) {
		t.Fatalf("thumbnail decodes as %v, want %d×%d", got, w, h)
	}
	return img
}

// gradientPNG is a w × h PNG made quickly (a smooth picture, fast compression),
// as large test images are slow to make under the race detector.
func gradientPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := range w {
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = uint8(x), uint8(y), uint8(x+y), 255
		}
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestThumbnailScalesPNGDown(t *testing.T) {
	s, _ := newStore(t)
	orig := putBytes(t, s, gradientPNG(t, 1600, 1200))
	th, w, h, err := s.Thumbnail(orig.Hash, 320)
	if err != nil {
		t.Fatal(err)
	}
	if w != 320 || h != 240 {
		t.Fatalf("%d×%d, want 320×240", w, h)
	}
	thumbImage(t, s, th, 320, 240)
	if th.Hash == orig.Hash {
		t.Fatal("the thumbnail is the original")
	}
}

func TestThumbnailPortraitAndExtremeRatio(t *testing.T) {
	s, _ := newStore(t)
	for _, c := range []struct{ w, h, tw, th int }{
		{600, 1000, 192, 320},
		{3000, 2, 320, 1}, // never below one pixel
		{321, 321, 320, 320},
		{320, 100, 320, 100}, // fits exactly: unchanged
	} {
		orig := putBytes(t, s, gradientPNG(t, c.w, c.h))
		th, w, h, err := s.Thumbnail(orig.Hash, 320)
		if err != nil {
			t.Fatal(err)
		}
		if w != c.tw || h != c.th {
			t.Errorf("%d×%d -> %d×%d, want %d×%d", c.w, c.h, w, h, c.tw, c.th)
		}
		thumbImage(t, s, th, c.tw, c.th)
	}
}

func TestThumbnailNeverUpscales(t *testing.T) {
	s, _ := newStore(t)
	orig := putBytes(t, s, pngBytes(t, 100, 50))
	th, w, h, err := s.Thumbnail(orig.Hash, 320)
	if err != nil {
		t.Fatal(err)
	}
	if w != 100 || h != 50 {
		t.Fatalf("%d×%d, want 100×50", w, h)
	}
	thumbImage(t, s, th, 100, 50)
	// Asking again gives the same blob (deterministic encoding, deduplicated).
	again, _, _, err := s.Thumbnail(orig.Hash, 320)
	if err != nil || again.Hash != th.Hash {
		t.Fatalf("second thumbnail %s, %v; want %s", again.Hash, err, th.Hash)
	}
}

func TestThumbnailFromJPEG(t *testing.T) {
	s, _ := newStore(t)
	orig := putBytes(t, s, jpegBytes(t, 800, 600))
	th, w, h, err := s.Thumbnail(orig.Hash, 200)
	if err != nil {
		t.Fatal(err)
	}
	if w != 200 || h != 150 {
		t.Fatalf("%d×%d, want 200×150", w, h)
	}
	thumbImage(t, s, th, 200, 150)
}

func TestThumbnailTransparencyOnWhite(t *testing.T) {
	s, _ := newStore(t)
	img := image.NewNRGBA(image.Rect(0, 0, 40, 40)) // fully transparent
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	th, _, _, err := s.Thumbnail(putBytes(t, s, b.Bytes()).Hash, 320)
	if err != nil {
		t.Fatal(err)
	}
	out := thumbImage(t, s, th, 40, 40)
	if r, g, bl, _ := out.At(20, 20).RGBA(); r>>8 < 250 || g>>8 < 250 || bl>>8 < 250 {
		t.Fatalf("transparent pixels became %d,%d,%d, want white", r>>8, g>>8, bl>>8)
	}
}

// twoColourJPEG is w × h, red on its left half and blue on its right.
func twoColourJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{255, 0, 0, 255}
			if x >= w/2 {
				c = color.RGBA{0, 0, 255, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withOrientation inserts an EXIF APP1 segment holding only an Orientation tag,
// in the given byte order, after the JPEG's SOI marker.
func withOrientation(j []byte, o uint16, bo binary.ByteOrder) []byte {
	tiff := make([]byte, 8+2+12+4)
	if bo == binary.LittleEndian {
		copy(tiff, "II*\x00")
	} else {
		copy(tiff, "MM\x00*")
	}
	bo.PutUint32(tiff[4:], 8)
	bo.PutUint16(tiff[8:], 1)       // one entry
	bo.PutUint16(tiff[10:], 0x0112) // Orientation
	bo.PutUint16(tiff[12:], 3)      // SHORT
	bo.PutUint32(tiff[14:], 1)      // one value
	bo.PutUint16(tiff[18:], o)
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, j[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, j[2:]...)
}

func isRed(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r>>8 > 180 && g>>8 < 80 && b>>8 < 80
}

func isBlue(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return b>>8 > 180 && r>>8 < 80 && g>>8 < 80
}

// A phone photo taken upright is stored sideways with an EXIF orientation; the
// thumbnail is turned the way browsers show the original.
func TestThumbnailFollowsEXIFOrientation(t *testing.T) {
	s, _ := newStore(t)
	base := twoColourJPEG(t, 200, 100) // red left, blue right
	type spot struct {
		x, y int
		red  bool
	}
	for _, c := range []struct {
		o     uint16
		w, h  int
		spots []spot
	}{
		{1, 200, 100, []spot{{20, 50, true}, {180, 50, false}}},
		{2, 200, 100, []spot{{20, 50, false}, {180, 50, true}}},      // mirrored
		{3, 200, 100, []spot{{20, 50, false}, {180, 50, true}}},      // upside down
		{4, 200, 100, []spot{{20, 50, true}, {180, 50, false}}},      // mirrored upside down
		{6, 100, 200, []spot{{50, 20, true}, {50, 180, false}}},      // turned clockwise: left goes to the top
		{8, 100, 200, []spot{{50, 20, false}, {50, 180, true}}},      // counter-clockwise: left goes to the bottom
		{5, 100, 200, []spot{{50, 20, true}, {50, 180, false}}},      // transposed
		{7, 100, 200, []spot{{50, 20, false}, {50, 180, true}}},      // transversed
		{9, 200, 100, []spot{{20, 50, true}, {180, 50, false}}},      // out of range: ignored
		{0, 200, 100, []spot{{20, 50, true}, {180, 50, false}}},      // likewise
		{6 << 8, 200, 100, []spot{{20, 50, true}, {180, 50, false}}}, // garbage
	} {
		for _, bo := range []binary.ByteOrder{binary.BigEndian, binary.LittleEndian} {
			data := withOrientation(base, c.o, bo)
			th, w, h, err := s.Thumbnail(putBytes(t, s, data).Hash, 320)
			if err != nil {
				t.Fatal(err)
			}
			if w != c.w || h != c.h {
				t.Errorf("orientation %d (%v): %d×%d, want %d×%d", c.o, bo, w, h, c.w, c.h)
				continue
			}
			img := thumbImage(t, s, th, c.w, c.h)
			for _, sp := range c.spots {
				px := img.At(sp.x, sp.y)
				if sp.red && !isRed(px) || !sp.red && !isBlue(px) {
					t.Errorf("orientation %d (%v): pixel (%d,%d) is %v, want red=%v", c.o, bo, sp.x, sp.y, px, sp.red)
				}
			}
		}
	}
}

func TestThumbnailScalesThenOrients(t *testing.T) {
	s, _ := newStore(t)
	data := withOrientation(twoColourJPEG(t, 1600, 1200), 6, binary.BigEndian)
	_, w, h, err := s.Thumbnail(putBytes(t, s, data).Hash, 320)
	if err != nil {
		t.Fatal(err)
	}
	if w != 240 || h != 320 {
		t.Fatalf("%d×%d, want 240×320", w, h)
	}
}

func TestThumbnailRefusals(t *testing.T) {
	s, _ := newStore(t)
	if _, _, _, err := s.Thumbnail("../../etc/passwd", 320); err == nil {
		t.Error("a path was accepted as a hash")
	}
	if _, _, _, err := s.Thumbnail(sha([]byte("missing")), 320); err == nil {
		t.Error("a missing blob made a thumbnail")
	}
	gif := putBytes(t, s, gifBytes(t))
	if _, _, _, err := s.Thumbnail(gif.Hash, 320); err == nil || !strings.Contains(err.Error(), "JPEG or PNG") {
		t.Errorf("a GIF: %v", err)
	}
	html := putBytes(t, s, []byte("<html><body>hi</body></html>"))
	if _, _, _, err := s.Thumbnail(html.Hash, 320); err == nil {
		t.Error("HTML made a thumbnail")
	}
	ok := putBytes(t, s, pngBytes(t, 10, 10))
	if _, _, _, err := s.Thumbnail(ok.Hash, 0); err == nil {
		t.Error("a zero thumbnail size was accepted")
	}
	// A truncated PNG: its header is fine, its pixels are missing.
	full := pngBytes(t, 100, 100)
	cut := putBytes(t, s, full[:len(full)/2])
	if _, _, _, err := s.Thumbnail(cut.Hash, 320); err == nil {
		t.Error("a truncated PNG made a thumbnail")
	}
}

// The backstop: a header claiming 50,000 × 50,000 pixels is not decoded even if a
// caller skipped CheckImage.
func TestThumbnailRefusesBombWithoutDecoding(t *testing.T) {
	s, _ := newStore(t)
	for _, head := range [][]byte{
		pngHeader(50_000, 50_000),
		pngHeaderOf(8160, 6120, 16, 2, 0), // 50 megapixels, but 400 MB decoded
	} {
		bomb := putBytes(t, s, head)
		_, _, _, err := s.Thumbnail(bomb.Hash, 320)
		if err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Fatalf("err %v, want a refusal to decode", err)
		}
	}
}

func TestThumbnailConcurrent(t *testing.T) {
	s, _ := newStore(t)
	var hashes []string
	for i := range 6 {
		hashes = append(hashes, putBytes(t, s, gradientPNG(t, 400+i, 300)).Hash)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(hashes))
	for _, h := range hashes {
		wg.Go(func() {
			_, w, _, err := s.Thumbnail(h, 100)
			if err == nil && w != 100 {
				err = fmt.Errorf("width %d", w)
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
}

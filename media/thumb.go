package media

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/draw"
)

// ThumbQuality is the JPEG quality of thumbnails.
const ThumbQuality = 82

// thumbMaxDecoded is a backstop for Thumbnail, whose callers have already
// checked the image with CheckImage: an image whose decoded form would take
// more memory than this (see DecodedSize) is never decoded, whatever the
// channel's limit.
const thumbMaxDecoded = DefaultMaxDecoded

// decodeSlots bounds how many images are decoded at once, across all stores: a
// 50-megapixel photo takes 75 MB (JPEG) to 200 MB (PNG) decoded and about a
// second, so a burst of uploads waits its turn rather than exhausting memory.
var decodeSlots = make(chan struct{}, 2)

// Thumbnail makes a thumbnail of a stored JPEG or PNG image: it decodes it,
// scales it to fit within max × max pixels keeping its aspect ratio (never
// scaling up), turns it as the JPEG's EXIF orientation says (as browsers show
// the original), lays any transparency on white, and stores it as a JPEG of
// quality ThumbQuality. It returns the thumbnail's blob and dimensions.
//
// Call it only after CheckImage accepted the image: decoding takes memory in
// proportion to its pixel count and depth, which CheckImage bounds (Thumbnail
// refuses more than DefaultMaxDecoded bytes decoded as a backstop), and at most two images are decoded
// at once in the process: further calls wait. Other formats are refused.
func (s *Store) Thumbnail(hash string, max int) (thumb Blob, width, height int, err error) {
	if max < 1 {
		return Blob{}, 0, 0, fmt.Errorf("media: thumbnail size %d", max)
	}
	f, err := s.Open(hash)
	if err != nil {
		return Blob{}, 0, 0, err
	}
	defer f.Close()

	// The buffer holds a whole head, so that the frame header is in view.
	br := bufio.NewReaderSize(f, HeadSize)
	magic, _ := br.Peek(8)
	var (
		decodeConfig func(io.Reader) (image.Config, error)
		decode       func(io.Reader) (image.Image, error)
		orientation  = 1
	)
	switch {
	case bytes.HasPrefix(magic, []byte("\x89PNG\r\n\x1a\n")):
		decodeConfig, decode = png.DecodeConfig, png.Decode
	case bytes.HasPrefix(magic, []byte{0xFF, 0xD8, 0xFF}):
		decodeConfig, decode = jpeg.DecodeConfig, jpeg.Decode
		orientation = exifOrientation(br)
	default:
		return Blob{}, 0, 0, errors.New("media: thumbnail: not a JPEG or PNG image")
	}

	head, _ := br.Peek(br.Size()) // valid until the next read
	need, err := DecodedSize(head)
	if err != nil {
		return Blob{}, 0, 0, fmt.Errorf("media: thumbnail: %w", err)
	}
	cfg, err := decodeConfig(br)
	if err != nil {
		return Blob{}, 0, 0, fmt.Errorf("media: thumbnail: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || need.Bytes > thumbMaxDecoded {
		return Blob{}, 0, 0, fmt.Errorf("media: thumbnail: refusing to decode a %d × %d image (%d bytes decoded)",
			cfg.Width, cfg.Height, need.Bytes)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Blob{}, 0, 0, err
	}
	br.Reset(f)
	dst, err := func() (*image.RGBA, error) {
		decodeSlots <- struct{}{}
		defer func() { <-decodeSlots }()
		return decodeScaled(br, decode, max)
	}()
	if err != nil {
		return Blob{}, 0, 0, err
	}
	out := orient(dst, orientation)

	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, out, &jpeg.Options{Quality: ThumbQuality}); err != nil {
		return Blob{}, 0, 0, fmt.Errorf("media: thumbnail: %w", err)
	}
	b, err := s.Put(&buf, int64(buf.Len()))
	if err != nil {
		return Blob{}, 0, 0, err
	}
	ob := out.Bounds()
	return b, ob.Dx(), ob.Dy(), nil
}

// decodeScaled decodes an image and returns it scaled to fit within max × max,
// on white. The full-size image is garbage once it returns.
func decodeScaled(r io.Reader, decode func(io.Reader) (image.Image, error), max int) (*image.RGBA, error) {
	src, err := decode(r)
	if err != nil {
		return nil, fmt.Errorf("media: thumbnail: %w", err)
	}
	sb := src.Bounds()
	w, h := fit(sb.Dx(), sb.Dy(), max)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	if w == sb.Dx() && h == sb.Dy() {
		draw.Draw(dst, dst.Bounds(), src, sb.Min, draw.Over)
	} else {
		draw.CatmullRom.Scale(dst, dst.Bounds(), src, sb, draw.Over, nil)
	}
	return dst, nil
}

// fit returns the size of a w × h image scaled to fit within max × max with its
// aspect ratio kept, rounding to the nearest pixel and never below 1; an image
// that fits already keeps its size.
func fit(w, h, max int) (int, int) {
	if w <= max && h <= max {
		return w, h
	}
	if w >= h {
		return max, clamp1((int64(h)*int64(max) + int64(w)/2) / int64(w))
	}
	return clamp1((int64(w)*int64(max) + int64(h)/2) / int64(h)), max
}

func clamp1(n int64) int {
	if n < 1 {
		return 1
	}
	return int(n)
}

// exifOrientation returns the orientation (1 to 8) recorded in a JPEG's EXIF
// segment, or 1 when there is none or it cannot be read. It only peeks at r, so
// r is left at the start of the file; it looks no further than the buffer.
func exifOrientation(r *bufio.Reader) int {
	b, _ := r.Peek(r.Size())
	// Walk the segments after SOI until the APP1 holding Exif, or the image data.
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 1
		}
		marker := b[i+1]
		if marker == 0xFF { // fill byte
			i++
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // start of scan, end of image
			return 1
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 {
			return 1
		}
		seg := b[i+4 : min(i+2+n, len(b))]
		if marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return tiffOrientation(seg[6:])
		}
		i += 2 + n
	}
	return 1
}

// tiffOrientation reads tag 0x0112 (Orientation) of the first IFD of a TIFF
// structure, as EXIF stores it.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	off := int64(bo.Uint32(t[4:]))
	if off < 8 || off+2 > int64(len(t)) {
		return 1
	}
	count := int64(bo.Uint16(t[off:]))
	for k := range count {
		e := off + 2 + 12*k
		if e+12 > int64(len(t)) {
			return 1
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		// Type SHORT (3) with one value, stored in the first two bytes of the value field.
		if bo.Uint16(t[e+2:]) != 3 || bo.Uint32(t[e+4:]) != 1 {
			return 1
		}
		if v := int(bo.Uint16(t[e+8:])); 1 <= v && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}

// orient returns img turned as EXIF orientation o says it must be shown.
func orient(img *image.RGBA, o int) *image.RGBA {
	if o < 2 || o > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if o >= 5 { // the orientations that swap width and height
		dw, dh = h, w
	}
	out := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range h {
		for x := range w {
			var dx, dy int
			switch o {
			case 2: // mirrored
				dx, dy = w-1-x, y
			case 3: // upside down
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored upside down
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // to be turned 90° clockwise
				dx, dy = h-1-y, x
			case 7: // transversed
				dx, dy = h-1-y, w-1-x
			case 8: // to be turned 90° counter-clockwise
				dx, dy = y, w-1-x
			}
			si := img.PixOffset(b.Min.X+x, b.Min.Y+y)
			di := out.PixOffset(dx, dy)
			copy(out.Pix[di:di+4], img.Pix[si:si+4])
		}
	}
	return out
}

// Displayed returns an image's size as people see it: the stored width and
// height, swapped when the thumbnail (which follows the EXIF orientation) is
// turned the other way.
func Displayed(width, height, thumbWidth, thumbHeight int) (int, int) {
	if (width > height) != (thumbWidth > thumbHeight) && width != height && thumbWidth != thumbHeight {
		return height, width
	}
	return width, height
}

// Package media validates what an agent attaches to a Viber session message,
// by its bytes rather than its name (shared/spec/session-rules.md, "image" and
// "file" settings, cases 12 and 13).
//
// The checks (CheckImage, CheckFile) are pure: they look at the first bytes of
// an upload (its head), its size and its name, and return either what was found
// or a *session.Refusal with code session.FileRejected and a sentence an agent
// understands. Store keeps the bytes, content-addressed, streaming them with a
// size cap and giving back the head to check; it also makes thumbnails. Fetcher
// downloads a client's media into a Store.
//
// Sizes are in bytes, and the limits use decimal units: 1 KB = 1,000 bytes and
// 1 MB = 1,000,000 bytes. Providers are not consistent about which they mean;
// the decimal reading is the stricter one, so a file accepted here fits the
// provider's limit under either reading.
package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"

	"sessiondesk/session"
)

// Decimal size units used by the limits and in messages.
const (
	KB int64 = 1000
	MB int64 = 1000 * KB
)

// HeadSize is how many leading bytes callers should pass as head (or the whole
// file when it is smaller). Sniffing needs about 3 KB; a JPEG's dimensions come
// after its metadata (EXIF with a thumbnail, XMP, ICC profile), which in camera
// files can run to well over 64 KB, so the head is generous.
const HeadSize = 256 << 10

// MaxNameLen is the longest file name Viber accepts, extension included, in
// Unicode code points (case 13).
const MaxNameLen = 25

// Limits are the per-channel size limits. DefaultLimits returns the spec's values.
type Limits struct {
	ImageMax  int64 // refuse an image larger than this many bytes
	FileMax   int64 // refuse a file larger than this many bytes
	ImageWarn int64 // warn above this image size (the provider's recommendation)
	FileWarn  int64 // warn above this file size (the provider's recommendation)
	MaxPixels int64 // refuse an image whose width × height is larger (decompression bombs)
	// MaxDecoded refuses an image whose decoded form would take more bytes of
	// memory: width × height × the bytes a pixel takes once decoded, which
	// depend on the format (a 16-bit PNG takes 8 bytes a pixel, a progressive
	// JPEG holds its coefficients too). Zero means DefaultMaxDecoded.
	MaxDecoded int64
}

// DefaultMaxDecoded is the memory an image may take once decoded: 200 MB, what
// a 50-megapixel 8-bit PNG or a 50-megapixel phone photo (baseline JPEG) needs,
// while a 50-megapixel 16-bit PNG (400 MB) is refused.
const DefaultMaxDecoded = 200 * MB

func (l Limits) maxDecoded() int64 {
	if l.MaxDecoded <= 0 {
		return DefaultMaxDecoded
	}
	return l.MaxDecoded
}

// DefaultLimits returns the spec's defaults: images up to 5 MB (warning above
// 400 KB), files up to 50 MB (warning above 600 KB), and images of at most 50
// megapixels, which lets through the photos of 48- and 50-megapixel phone
// cameras and refuses crafted headers such as 50,000 × 50,000 pixels.
func DefaultLimits() Limits {
	return Limits{
		ImageMax:   5 * MB,
		FileMax:    50 * MB,
		ImageWarn:  400 * KB,
		FileWarn:   600 * KB,
		MaxPixels:  50_000_000,
		MaxDecoded: DefaultMaxDecoded,
	}
}

// Checked is what validation found in an accepted attachment.
type Checked struct {
	// MIME is the type the attachment goes out as: image/jpeg or image/png for an
	// image; for a file, the usual type of its extension (the bytes were checked
	// to fit it).
	MIME string
	// Sniffed is the type the bytes were recognised as; for office files it can be
	// the generic container (application/zip, application/x-ole-storage).
	Sniffed string
	// Ext is the extension in lower case without the dot: "jpg" or "png" for an
	// image (from the bytes), the name's extension for a file.
	Ext string
	// Name is the file's sanitized name (CheckFile only).
	Name string
	// SuggestedName is set, also alongside a refusal, when the name is too long:
	// the name shortened to MaxNameLen with its extension kept.
	SuggestedName string
	// Width and Height are an image's dimensions in pixels, read from its header.
	Width, Height int
	// Warning is non-empty when the attachment is accepted but larger than the
	// provider recommends.
	Warning string
}

func refuse(format string, args ...any) *session.Refusal {
	return session.Refuse(session.FileRejected, fmt.Sprintf(format, args...))
}

// CheckImage validates an image by its bytes: head is its first HeadSize bytes
// (at least the first 3 KB, or the whole file when smaller) and size its full
// length. Only JPEG and PNG are accepted, whatever the name says (case 12). The
// dimensions are read from the header without decoding any pixel, and an image
// of more than lim.MaxPixels pixels, or one whose decoded form would take more
// than lim.MaxDecoded bytes (see DecodedSize), is refused.
func CheckImage(head []byte, size int64, lim Limits) (Checked, *session.Refusal) {
	if size <= 0 || len(head) == 0 {
		return Checked{}, refuse("The image is empty.")
	}
	if size > lim.ImageMax {
		return Checked{}, refuse("The image is %s; Viber allows images of at most %s. Export it at a lower resolution or quality and try again.",
			sizeUp(size), sizeText(lim.ImageMax))
	}
	m := mimetype.Detect(head)
	c := Checked{Sniffed: m.String()}
	var (
		w, h   int
		err    error
		format string // for messages
	)
	switch {
	case m.Is("image/png") || m.Is("image/apng"): // an animated PNG is a valid PNG
		c.MIME, c.Ext, format = "image/png", "png", "PNG"
		w, h, err = pngSize(head, int64(len(head)) < size)
	case m.Is("image/jpeg"):
		c.MIME, c.Ext, format = "image/jpeg", "jpg", "JPEG"
		w, h, err = jpegSize(head, int64(len(head)) < size)
	default:
		return Checked{}, refuse("This is not a JPEG or PNG image: its content is %s. Viber session images must be JPEG or PNG; convert it first.",
			describe(m))
	}
	if err != nil {
		return Checked{}, refuse("This %s image could not be read (%v). It may be damaged; save it again as JPEG or PNG.",
			format, err)
	}
	if w <= 0 || h <= 0 {
		return Checked{}, refuse("This %s image has no pixels (%d × %d); it is damaged.", format, w, h)
	}
	if px := int64(w) * int64(h); px > lim.MaxPixels {
		return Checked{}, refuse("This image is %d × %d pixels (%s megapixels); at most %s megapixels are accepted. Scale it down first.",
			w, h, megapixels(px), megapixels(lim.MaxPixels))
	}
	need, err := DecodedSize(head)
	if err != nil {
		return Checked{}, refuse("This %s image could not be read (%v). It may be damaged; save it again as JPEG or PNG.",
			format, err)
	}
	if budget := lim.maxDecoded(); need.Bytes > budget {
		return Checked{}, refuse("This image is %d × %d pixels, %s; opening it would take %s of memory, and at most %s is allowed. Scale it down%s first.",
			w, h, need.what, sizeUp(need.Bytes), sizeText(budget), need.hint)
	}
	c.Width, c.Height = w, h
	if size > lim.ImageWarn {
		c.Warning = fmt.Sprintf("The image is %s; Viber recommends at most %s, so it may load slowly for the client.",
			sizeUp(size), sizeText(lim.ImageWarn))
	}
	return c, nil
}

// Decoded is what decoding an image takes, computed from its header alone.
type Decoded struct {
	Width, Height int
	// Bytes is the memory image/png or image/jpeg allocates for the decoded
	// image (and, for a progressive JPEG, its coefficients).
	Bytes int64
	what  string // the kind of image, for messages: "a 16-bit PNG"
	hint  string // how to make it cheaper, for messages
}

// DecodedSize reads a JPEG's or PNG's header in head (its first bytes) and
// returns the memory decoding it would take: width × height × the bytes a pixel
// takes in the decoder's image type. The figures follow the standard
// library's decoders and round up where they depend on chunks past the header:
//
//   - PNG: 1 byte a pixel for a paletted image, 8 for 16 bits a channel, 4
//     otherwise (gray with a transparent colour becomes NRGBA); an interlaced
//     image is decoded pass by pass into a second image, so it takes twice that.
//   - JPEG: one byte a sample of each component at its sampling (1.5 a pixel for
//     a usual 4:2:0 photo, 3 for 4:4:4), 8 a pixel for CMYK (decoded through
//     YCbCr), and for a progressive JPEG 4 bytes more a sample for the
//     coefficients it keeps until the last scan.
func DecodedSize(head []byte) (Decoded, error) {
	switch {
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return pngDecoded(head)
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8}):
		return jpegDecoded(head)
	}
	return Decoded{}, errors.New("not a JPEG or PNG image")
}

func pngDecoded(head []byte) (Decoded, error) {
	if len(head) < 29 || string(head[12:16]) != "IHDR" {
		return Decoded{}, errors.New("no IHDR chunk first")
	}
	w, h := binary.BigEndian.Uint32(head[16:20]), binary.BigEndian.Uint32(head[20:24])
	depth, colour, interlace := head[24], head[25], head[28]
	d := Decoded{Width: int(w), Height: int(h)}
	perPixel := int64(4)
	d.what = fmt.Sprintf("a %d-bit PNG", depth)
	switch {
	case colour == 3:
		perPixel = 1
	case depth == 16:
		perPixel = 8
		d.hint = " or save it with 8 bits a channel"
	}
	if interlace == 1 {
		perPixel *= 2
		d.what = "an interlaced " + d.what[2:]
		d.hint += " or save it without interlacing"
	}
	d.Bytes = satMul(int64(w)*int64(h), perPixel)
	return d, nil
}

// jpegDecoded walks the segments of a JPEG to its frame header (SOFn).
func jpegDecoded(head []byte) (Decoded, error) {
	for i := 2; i+4 <= len(head); {
		if head[i] != 0xFF {
			return Decoded{}, errors.New("bad segment marker")
		}
		marker := head[i+1]
		if marker == 0xFF { // fill byte
			i++
			continue
		}
		if marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7) { // no length
			i += 2
			continue
		}
		n := int(binary.BigEndian.Uint16(head[i+2:]))
		if n < 2 {
			return Decoded{}, errors.New("bad segment length")
		}
		if marker == 0xDA || marker == 0xD9 {
			return Decoded{}, errors.New("no frame header before the image data")
		}
		if marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC {
			seg := head[i+4 : min(i+2+n, len(head))]
			return jpegFrame(seg, marker == 0xC2 || marker == 0xC6 || marker == 0xCA || marker == 0xCE)
		}
		i += 2 + n
	}
	return Decoded{}, errHeaderTooLong
}

// jpegFrame reads a SOFn segment's body: precision, height, width, then each
// component's id, sampling factors and table.
func jpegFrame(seg []byte, progressive bool) (Decoded, error) {
	if len(seg) < 6 {
		return Decoded{}, errHeaderTooLong
	}
	h, w, nc := int64(binary.BigEndian.Uint16(seg[1:])), int64(binary.BigEndian.Uint16(seg[3:])), int(seg[5])
	if nc < 1 || len(seg) < 6+3*nc {
		return Decoded{}, errors.New("bad frame header")
	}
	hmax, vmax := int64(1), int64(1)
	for c := range nc {
		f := seg[6+3*c+1]
		hmax, vmax = max(hmax, int64(f>>4)), max(vmax, int64(f&15))
	}
	// samples is width × height × the sum of the components' sampling, in
	// samples; each component is stored at its own resolution.
	var samples int64
	for c := range nc {
		f := seg[6+3*c+1]
		samples += satMul(w*h, int64(f>>4)*int64(f&15)) / (hmax * vmax)
	}
	d := Decoded{Width: int(w), Height: int(h), what: "a JPEG"}
	d.Bytes = samples
	if nc == 4 {
		d.Bytes = satMul(w*h, 8)
		d.what = "a CMYK JPEG"
	}
	if progressive {
		d.Bytes += satMul(samples, 4)
		d.what = "a progressive JPEG"
		d.hint = " or save it as a baseline (not progressive) JPEG"
	}
	return d, nil
}

// satMul multiplies non-negative a and b, saturating instead of overflowing.
func satMul(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

var (
	errHeaderTooLong = errors.New("its header continues past the bytes checked")
	errEndsInHeader  = errors.New("the file ends inside its header")
)

// pngSize reads the dimensions from the IHDR chunk, which the PNG format puts
// first, checking its CRC; then lets image/png check the header's other fields.
// truncated says that head is not the whole file.
func pngSize(head []byte, truncated bool) (int, int, error) {
	const ihdrEnd = 8 + 4 + 4 + 13 + 4 // signature, length, type, data, CRC
	if len(head) < ihdrEnd {
		return 0, 0, errors.New("too short for a PNG header")
	}
	if binary.BigEndian.Uint32(head[8:12]) != 13 || string(head[12:16]) != "IHDR" {
		return 0, 0, errors.New("no IHDR chunk first")
	}
	if crc32.ChecksumIEEE(head[12:29]) != binary.BigEndian.Uint32(head[29:33]) {
		return 0, 0, errors.New("bad IHDR checksum")
	}
	w, h := binary.BigEndian.Uint32(head[16:20]), binary.BigEndian.Uint32(head[20:24])
	if w > 1<<31-1 || h > 1<<31-1 {
		return 0, 0, errors.New("dimensions out of range")
	}
	// image/png validates bit depth and colour type. Paletted images need their
	// palette too, which may lie past the head: only a whole file must be complete.
	if _, err := png.DecodeConfig(bytes.NewReader(head)); err != nil {
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, 0, err
		}
		if !truncated {
			return 0, 0, errEndsInHeader
		}
	}
	return int(w), int(h), nil
}

// jpegSize reads the dimensions from the JPEG's frame header, skipping the
// segments before it; truncated says that head is not the whole file.
func jpegSize(head []byte, truncated bool) (int, int, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(head))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			if truncated {
				return 0, 0, errHeaderTooLong
			}
			return 0, 0, errEndsInHeader
		}
		return 0, 0, err
	}
	return cfg.Width, cfg.Height, nil
}

// fileType is one extension Viber accepts as a file, with the usual MIME type it
// goes out as and a check of the sniffed type.
type fileType struct {
	mime  string
	what  string // for messages: "a Word document"
	match func(m *mimetype.MIME, head []byte) bool
}

const (
	mimeZip = "application/zip"
	mimeOLE = "application/x-ole-storage"
)

// exactly matches a sniffed type itself, not its more specific children: an
// office file whose parts lie past the head sniffs as the bare container, which
// is accepted, while a container recognised as something else (a .jar named
// .docx) is not.
func exactly(mime string) func(*mimetype.MIME, []byte) bool {
	return func(m *mimetype.MIME, _ []byte) bool { return m.Is(mime) }
}

func anyOf(fs ...func(*mimetype.MIME, []byte) bool) func(*mimetype.MIME, []byte) bool {
	return func(m *mimetype.MIME, head []byte) bool {
		for _, f := range fs {
			if f(m, head) {
				return true
			}
		}
		return false
	}
}

// under matches a sniffed type or any of its descendants (templates of a format).
func under(mime string) func(*mimetype.MIME, []byte) bool {
	return func(m *mimetype.MIME, _ []byte) bool {
		for ; m != nil; m = m.Parent() {
			if m.Is(mime) {
				return true
			}
		}
		return false
	}
}

func openDocument(m *mimetype.MIME, _ []byte) bool {
	return strings.HasPrefix(baseType(m), "application/vnd.oasis.opendocument.")
}

// isText accepts text that is not active web content (HTML, XHTML, SVG). It
// needs the sniffer's verdict of text (no binary bytes) and no NUL byte in the
// head unless a UTF-16 or UTF-32 byte-order mark says NULs are expected.
func isText(m *mimetype.MIME, head []byte) bool {
	if !under("text/plain")(m, head) || isActive(m) {
		return false
	}
	bom := bytes.HasPrefix(head, []byte{0xFF, 0xFE}) || bytes.HasPrefix(head, []byte{0xFE, 0xFF}) ||
		bytes.HasPrefix(head, []byte{0, 0, 0xFE, 0xFF})
	return bom || bytes.IndexByte(head, 0) < 0
}

// isXMLText accepts the flat-XML OpenDocument formats (fodt, fods).
func isXMLText(m *mimetype.MIME, head []byte) bool {
	return (m.Is("text/xml") || m.Is("text/plain")) && isText(m, head)
}

func isEPS(m *mimetype.MIME, head []byte) bool {
	// PostScript, or the DOS EPS binary header that wraps it with a preview.
	return m.Is("application/postscript") || bytes.HasPrefix(head, []byte{0xC5, 0xD0, 0xD3, 0xC6})
}

// isUnknownSafe is for extensions no sniffer knows (pdax): anything that is not
// recognisably something else dangerous or different is let through.
func isUnknownSafe(m *mimetype.MIME, head []byte) bool {
	return m.Is("application/octet-stream") || m.Is("application/pdf") || isText(m, head)
}

var (
	ooxmlWord  = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	ooxmlSheet = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	// Word has long saved RTF under .doc; that opens as a Word document too.
	msWord   = anyOf(exactly("application/msword"), exactly(mimeOLE), exactly("text/rtf"))
	msExcel  = anyOf(exactly("application/vnd.ms-excel"), exactly(mimeOLE))
	docxLike = anyOf(exactly(ooxmlWord), exactly(mimeZip))
	xlsxLike = anyOf(exactly(ooxmlSheet), exactly(mimeZip))
)

// fileTypes are the extensions of the spec, in its order (see Extensions).
var fileTypes = map[string]fileType{
	"doc":  {"application/msword", "a Word document", msWord},
	"docx": {ooxmlWord, "a Word document", docxLike},
	"rtf":  {"application/rtf", "an RTF document", exactly("text/rtf")},
	"dot":  {"application/msword", "a Word template", msWord},
	"dotx": {"application/vnd.openxmlformats-officedocument.wordprocessingml.template", "a Word template", docxLike},
	"odt":  {"application/vnd.oasis.opendocument.text", "an OpenDocument text", anyOf(under("application/vnd.oasis.opendocument.text"), exactly(mimeZip))},
	"odf":  {"application/vnd.oasis.opendocument.formula", "an OpenDocument file", anyOf(openDocument, exactly(mimeZip))},
	"fodt": {"application/vnd.oasis.opendocument.text-flat-xml", "a flat OpenDocument text", isXMLText},
	"txt":  {"text/plain", "a text file", isText},
	"info": {"text/plain", "a text file", isText},
	"pdf":  {"application/pdf", "a PDF document", exactly("application/pdf")},
	"xps":  {"application/vnd.ms-xpsdocument", "an XPS document", exactly(mimeZip)},
	"pdax": {"application/octet-stream", "a PDAX file", isUnknownSafe},
	"eps":  {"application/postscript", "an EPS drawing", isEPS},
	"xls":  {"application/vnd.ms-excel", "an Excel workbook", msExcel},
	"xlsx": {ooxmlSheet, "an Excel workbook", xlsxLike},
	"ods":  {"application/vnd.oasis.opendocument.spreadsheet", "an OpenDocument spreadsheet", anyOf(under("application/vnd.oasis.opendocument.spreadsheet"), exactly(mimeZip))},
	"fods": {"application/vnd.oasis.opendocument.spreadsheet-flat-xml", "a flat OpenDocument spreadsheet", isXMLText},
	"csv":  {"text/csv", "a CSV table", isText},
	"xlsm": {"application/vnd.ms-excel.sheet.macroEnabled.12", "an Excel workbook", xlsxLike},
	"xltx": {"application/vnd.openxmlformats-officedocument.spreadsheetml.template", "an Excel template", xlsxLike},
}

var extensions = []string{"doc", "docx", "rtf", "dot", "dotx", "odt", "odf", "fodt", "txt", "info", "pdf",
	"xps", "pdax", "eps", "xls", "xlsx", "ods", "fods", "csv", "xlsm", "xltx"}

// Extensions returns the file extensions Viber accepts, lower case without the
// dot, in the spec's order (for the composer's file picker).
func Extensions() []string { return slices.Clone(extensions) }

// CheckFile validates a file attachment: its name (sanitized with SanitizeName)
// must have one of Extensions (any case) and at most MaxNameLen characters, its
// bytes must fit that extension (a .pdf must be a PDF; office formats may sniff
// as their bare container), and its size must not exceed lim.FileMax. head is
// the file's first HeadSize bytes (at least 3 KB, or the whole file when
// smaller), size its full length. The checks come in the order an agent can act
// on: the type, the size, the content, then the name, which is the easiest to
// fix: a refusal for the name offers Checked.SuggestedName.
func CheckFile(name string, head []byte, size int64, lim Limits) (Checked, *session.Refusal) {
	clean := SanitizeName(name)
	ext := strings.ToLower(extOf(clean))
	ft, ok := fileTypes[ext]
	if !ok {
		hint := ""
		switch ext {
		case "jpg", "jpeg", "png":
			hint = " Send pictures as an image instead."
		case "":
			hint = " This name has no extension."
		}
		return Checked{}, refuse("Viber can send only these file types: %s. “%s” is not one of them.%s",
			strings.Join(extensions, ", "), clean, hint)
	}
	c := Checked{MIME: ft.mime, Ext: ext, Name: clean}
	if size <= 0 || len(head) == 0 {
		return Checked{}, refuse("The file “%s” is empty.", clean)
	}
	if size > lim.FileMax {
		return Checked{}, refuse("The file “%s” is %s; Viber allows files of at most %s.", clean, sizeUp(size), sizeText(lim.FileMax))
	}
	m := mimetype.Detect(head)
	c.Sniffed = m.String()
	if !ft.match(m, head) {
		return Checked{}, refuse("The file “%s” is named .%s but its content is %s, not %s. Save or export it again in the right format.",
			clean, ext, describe(m), ft.what)
	}
	if n := utf8.RuneCountInString(clean); n > MaxNameLen {
		short := ShortenName(clean, MaxNameLen)
		return Checked{SuggestedName: short}, refuse("The file name “%s” has %d characters; Viber allows at most %d, extension included. Rename it, for example to “%s”.",
			clean, n, MaxNameLen, short)
	}
	if size > lim.FileWarn {
		c.Warning = fmt.Sprintf("The file is %s; Viber recommends at most %s, so it may take a while to reach the client.",
			sizeUp(size), sizeText(lim.FileWarn))
	}
	return c, nil
}

// extOf returns the extension of name without the dot, or "" when it has none (a
// leading dot alone does not start an extension).
func extOf(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return ""
	}
	return name[i+1:]
}

// ShortenName returns name cut to at most max Unicode code points, keeping its
// extension and trimming the stem (and any separator left at the stem's end). A
// name that fits is returned as it is; so is the extension's dot, unless the
// extension alone does not fit, when the name is simply cut.
func ShortenName(name string, max int) string {
	if max <= 0 {
		return ""
	}
	if utf8.RuneCountInString(name) <= max {
		return name
	}
	ext := extOf(name)
	stem := []rune(name)
	suffix := ""
	if ext != "" {
		suffix = "." + ext
		stem = []rune(strings.TrimSuffix(name, suffix))
	}
	keep := max - utf8.RuneCountInString(suffix)
	if suffix == "" || keep < 1 {
		return string([]rune(name)[:max])
	}
	cut := string(stem[:keep])
	if t := strings.TrimRightFunc(cut, func(r rune) bool {
		return unicode.IsSpace(r) || r == '.' || r == '_' || r == '-'
	}); t != "" {
		cut = t
	}
	return cut + suffix
}

// SanitizeName returns a name safe to store and show: without directories (both
// / and \ separate them), control and bidirectional-override characters, invalid
// UTF-8, leading dots and surrounding spaces. It never returns "": a name with
// nothing left becomes "file".
func SanitizeName(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || isBidiControl(r) {
			return -1
		}
		return r
	}, name)
	for {
		t := strings.TrimLeft(strings.TrimSpace(name), ".")
		if t == name {
			break
		}
		name = t
	}
	if name == "" {
		return "file"
	}
	return name
}

// isBidiControl reports the invisible direction marks that can make "exe.pdf"
// look like "fdp.exe" (U+202E and friends).
func isBidiControl(r rune) bool {
	return r == '\u200E' || r == '\u200F' || r == '\u061C' ||
		('\u202A' <= r && r <= '\u202E') || ('\u2066' <= r && r <= '\u2069')
}

// isActive reports content a browser would run or render as a page.
func isActive(m *mimetype.MIME) bool {
	for ; m != nil; m = m.Parent() {
		switch baseType(m) {
		case "text/html", "application/xhtml+xml", "image/svg+xml":
			return true
		}
	}
	return false
}

// descriptions name sniffed types in words an agent knows. Types not listed are
// described by their closest listed ancestor, or by the MIME type itself.
var descriptions = map[string]string{
	"text/html":                     "a web page (HTML)",
	"application/xhtml+xml":         "a web page (XHTML)",
	"image/svg+xml":                 "an SVG drawing",
	"text/plain":                    "plain text",
	"text/xml":                      "XML text",
	"text/rtf":                      "an RTF document",
	"text/csv":                      "a CSV table",
	"application/json":              "JSON text",
	"image/png":                     "a PNG image",
	"image/apng":                    "a PNG image",
	"image/jpeg":                    "a JPEG image",
	"image/gif":                     "a GIF image",
	"image/webp":                    "a WebP image",
	"image/bmp":                     "a BMP image",
	"image/tiff":                    "a TIFF image",
	"image/heic":                    "a HEIC photo (convert it to JPEG)",
	"image/heif":                    "a HEIF photo (convert it to JPEG)",
	"image/avif":                    "an AVIF image",
	"application/pdf":               "a PDF document",
	"application/postscript":        "a PostScript document",
	mimeZip:                         "a ZIP archive",
	mimeOLE:                         "an old-style Office file",
	"application/msword":            "a Word document",
	ooxmlWord:                       "a Word document",
	"application/vnd.ms-excel":      "an Excel workbook",
	ooxmlSheet:                      "an Excel workbook",
	"application/vnd.ms-powerpoint": "a PowerPoint presentation",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": "a PowerPoint presentation",
	"application/vnd.microsoft.portable-executable":                             "a program (Windows executable)",
	"application/x-elf":                       "a program (Linux executable)",
	"application/x-mach-binary":               "a program (macOS executable)",
	"application/x-ms-installer":              "an installer (MSI)",
	"application/java-archive":                "a Java program",
	"application/vnd.android.package-archive": "an Android app",
	"application/x-java-applet":               "a Java program",
	"application/wasm":                        "a WebAssembly program",
	"text/x-shellscript":                      "a shell script",
	"text/javascript":                         "JavaScript code",
	"text/x-php":                              "PHP code",
	"application/x-rar-compressed":            "a RAR archive",
	"application/x-7z-compressed":             "a 7-Zip archive",
	"application/gzip":                        "a gzip archive",
	"application/octet-stream":                "unrecognised binary data",
}

func describe(m *mimetype.MIME) string {
	for p := m; p != nil; p = p.Parent() {
		if d, ok := descriptions[baseType(p)]; ok {
			if p != m && baseType(p) == "application/octet-stream" {
				break
			}
			return d
		}
	}
	return "of type " + baseType(m)
}

// baseType is the sniffed type without parameters: "text/html", not
// "text/html; charset=utf-8".
func baseType(m *mimetype.MIME) string {
	t, _, _ := strings.Cut(m.String(), ";")
	return strings.TrimSpace(t)
}

// sizeText writes a limit: "5 MB", "400 KB", "1.5 MB", "812 bytes".
func sizeText(n int64) string {
	switch {
	case n >= MB:
		if n%MB == 0 {
			return fmt.Sprintf("%d MB", n/MB)
		}
		return fmt.Sprintf("%.1f MB", float64(n)/float64(MB))
	case n >= KB:
		if n%KB == 0 {
			return fmt.Sprintf("%d KB", n/KB)
		}
		return fmt.Sprintf("%.1f KB", float64(n)/float64(KB))
	}
	return fmt.Sprintf("%d bytes", n)
}

// sizeUp writes an actual size rounded up, so that a size just over a limit never
// reads as equal to it: 5,000,001 bytes is "5.1 MB", not "5 MB".
func sizeUp(n int64) string {
	switch {
	case n >= MB:
		tenths := (n*10 + MB - 1) / MB
		if tenths%10 == 0 {
			return fmt.Sprintf("%d MB", tenths/10)
		}
		return fmt.Sprintf("%d.%d MB", tenths/10, tenths%10)
	case n >= KB:
		return fmt.Sprintf("%d KB", (n+KB-1)/KB)
	}
	return fmt.Sprintf("%d bytes", n)
}

func megapixels(px int64) string {
	if px%1_000_000 == 0 {
		return fmt.Sprintf("%d", px/1_000_000)
	}
	return fmt.Sprintf("%.1f", float64(px)/1e6)
}

package media_test

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"sessiondesk/media"
	"sessiondesk/session"
)

// Test files are made in the tests, so that what each one is stays visible here.

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(uint64(w), uint64(h))) // noise, so that the file is not tiny
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x), uint8(y), uint8(r.Uint32()), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func palettedPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.Black, color.White})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 3), uint8(y * 5), 40, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withEXIF inserts an APP1 segment of n bytes after the SOI marker, as cameras do,
// pushing the frame header (and so the dimensions) further into the file.
func withEXIF(j []byte, n int) []byte {
	seg := []byte{0xFF, 0xE1, byte((n + 2) >> 8), byte(n + 2)}
	payload := append([]byte("Exif\x00\x00"), make([]byte, n-6)...)
	out := append([]byte{}, j[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, j[2:]...)
}

func gifBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.White})
	var b bytes.Buffer
	if err := gif.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngHeader is a PNG signature and an IHDR chunk of w × h RGBA pixels with a
// valid CRC, and no pixel data: what a decompression bomb shows first.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	data := make([]byte, 13)
	binary.BigEndian.PutUint32(data[0:4], w)
	binary.BigEndian.PutUint32(data[4:8], h)
	data[8], data[9] = 8, 6 // 8 bits, RGBA
	binary.Write(&b, binary.BigEndian, uint32(len(data)))
	chunk := append([]byte("IHDR"), data...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

const htmlPage = `<!DOCTYPE html>
<html><head><title>Your invoice</title></head>
<body><script>document.location="https://example.invalid/"</script><p>Invoice</p></body></html>
`

const pdfDoc = "%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"

// officeZip builds a zip laid out like an OOXML or ODF package.
func officeZip(t *testing.T, names ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for _, n := range names {
		w, err := z.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("<?xml version=\"1.0\"?><x/>"))
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// head returns the first HeadSize bytes, as a caller would pass.
func head(b []byte) []byte { return b[:min(len(b), media.HeadSize)] }

func wantRefused(t *testing.T, r *session.Refusal, mention ...string) {
	t.Helper()
	if r == nil {
		t.Fatalf("accepted, want a refusal mentioning %q", mention)
	}
	if r.Code != session.FileRejected {
		t.Fatalf("code %s, want %s", r.Code, session.FileRejected)
	}
	for _, m := range mention {
		if !strings.Contains(r.Message, m) {
			t.Fatalf("message %q does not mention %q", r.Message, m)
		}
	}
}

// accepted returns a function taking a check's two results, which fails the
// test on a refusal: accepted(t)(media.CheckImage(...)).
func accepted(t *testing.T) func(media.Checked, *session.Refusal) media.Checked {
	t.Helper()
	return func(c media.Checked, r *session.Refusal) media.Checked {
		t.Helper()
		if r != nil {
			t.Fatalf("refused: %s", r.Message)
		}
		return c
	}
}

var lim = media.DefaultLimits()

func TestDefaultLimits(t *testing.T) {
	want := media.Limits{ImageMax: 5_000_000, FileMax: 50_000_000, ImageWarn: 400_000, FileWarn: 600_000, MaxPixels: 50_000_000, MaxDecoded: 200_000_000}
	if lim != want {
		t.Fatalf("DefaultLimits() = %+v, want %+v", lim, want)
	}
}

func TestCase12_PNGNameWithHTMLBytesRefused(t *testing.T) {
	b := []byte(htmlPage)
	_, r := media.CheckImage(b, int64(len(b)), lim)
	wantRefused(t, r, "not a JPEG or PNG", "web page (HTML)")
	// Nor does it pass as a file: .png is not a file type, and the bytes are a page.
	_, r = media.CheckFile("photo.png", b, int64(len(b)), lim)
	wantRefused(t, r, "as an image")
}

func TestCase12_PNGNameWithGIFBytesRefused(t *testing.T) {
	b := gifBytes(t)
	_, r := media.CheckImage(b, int64(len(b)), lim)
	wantRefused(t, r, "not a JPEG or PNG", "GIF image")
}

func TestImageOtherBytesRefused(t *testing.T) {
	for name, b := range map[string][]byte{
		"pdf":   []byte(pdfDoc),
		"text":  []byte("just some words"),
		"exe":   append([]byte("MZ"), make([]byte, 200)...),
		"svg":   []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>`),
		"empty": {},
	} {
		t.Run(name, func(t *testing.T) {
			_, r := media.CheckImage(b, int64(len(b)), lim)
			wantRefused(t, r)
		})
	}
}

func TestImagePNGAccepted(t *testing.T) {
	b := pngBytes(t, 64, 48)
	c := accepted(t)(media.CheckImage(head(b), int64(len(b)), lim))
	if c.MIME != "image/png" || c.Ext != "png" || c.Width != 64 || c.Height != 48 || c.Warning != "" {
		t.Fatalf("checked %+v", c)
	}
	// Only the first 3 KB of a larger file: the header is at the start.
	big := pngBytes(t, 300, 200)
	if len(big) < 3072 {
		t.Fatalf("test PNG of %d bytes is too small for this check", len(big))
	}
	c = accepted(t)(media.CheckImage(big[:3072], int64(len(big)), lim))
	if c.Width != 300 || c.Height != 200 {
		t.Fatalf("checked %+v", c)
	}
	// A paletted PNG needs its palette: whole, or a head that holds it.
	p := palettedPNG(t, 20, 10)
	c = accepted(t)(media.CheckImage(p, int64(len(p)), lim))
	if c.Width != 20 || c.Height != 10 {
		t.Fatalf("checked %+v", c)
	}
}

func TestImageJPEGAccepted(t *testing.T) {
	b := jpegBytes(t, 120, 90)
	c := accepted(t)(media.CheckImage(head(b), int64(len(b)), lim))
	if c.MIME != "image/jpeg" || c.Ext != "jpg" || c.Width != 120 || c.Height != 90 || c.Warning != "" {
		t.Fatalf("checked %+v", c)
	}
	// A camera file with 60 KB of EXIF before the frame header: HeadSize covers it.
	cam := withEXIF(b, 60_000)
	c = accepted(t)(media.CheckImage(head(cam), int64(len(cam)), lim))
	if c.Width != 120 || c.Height != 90 {
		t.Fatalf("checked %+v", c)
	}
	// With only 3 KB of it, the dimensions cannot be read: refused, not guessed.
	_, r := media.CheckImage(cam[:3072], int64(len(cam)), lim)
	wantRefused(t, r, "could not be read")
}

func TestImageTruncatedOrDamaged(t *testing.T) {
	b := jpegBytes(t, 40, 40)
	_, r := media.CheckImage(b[:40], 40, lim) // the whole "file" is 40 bytes of a JPEG
	wantRefused(t, r, "could not be read")

	p := pngHeader(10, 10)
	p[30] ^= 0xFF // break the IHDR CRC
	_, r = media.CheckImage(p, int64(len(p)), lim)
	wantRefused(t, r, "checksum")

	zero := pngHeader(0, 10)
	_, r = media.CheckImage(zero, int64(len(zero)), lim)
	wantRefused(t, r)
}

func TestImageDecompressionBombRefused(t *testing.T) {
	bomb := pngHeader(50_000, 50_000)
	// As a whole file and as the head of a large one.
	for _, size := range []int64{int64(len(bomb)), 2_000_000} {
		_, r := media.CheckImage(bomb, size, lim)
		wantRefused(t, r, "50000 × 50000", "2500 megapixels", "at most 50 megapixels")
	}
	// Just under and just over the limit, read from the header alone.
	ok := pngHeader(8160, 6120) // a 50-megapixel phone photo
	c := accepted(t)(media.CheckImage(ok, 3_000_000, lim))
	if c.Width != 8160 || c.Height != 6120 {
		t.Fatalf("checked %+v", c)
	}
	_, r := media.CheckImage(pngHeader(10_000, 5_001), 3_000_000, lim)
	wantRefused(t, r, "megapixels")
	// The limit is a setting.
	small := lim
	small.MaxPixels = 64 * 48
	accepted(t)(media.CheckImage(pngBytes(t, 64, 48), 1000, small))
	_, r = media.CheckImage(pngBytes(t, 65, 48), 1000, small)
	wantRefused(t, r, "65 × 48")
}

func TestImageOverSizeRefused(t *testing.T) {
	b := pngBytes(t, 10, 10)
	_, r := media.CheckImage(b, 5_000_001, lim)
	wantRefused(t, r, "5.1 MB", "at most 5 MB")
	accepted(t)(media.CheckImage(b, 5_000_000, lim))
}

func TestImageWarningAboveRecommended(t *testing.T) {
	b := jpegBytes(t, 10, 10)
	c := accepted(t)(media.CheckImage(b, 400_000, lim))
	if c.Warning != "" {
		t.Fatalf("warning at exactly 400 KB: %q", c.Warning)
	}
	c = accepted(t)(media.CheckImage(b, 812_345, lim))
	if !strings.Contains(c.Warning, "813 KB") || !strings.Contains(c.Warning, "400 KB") {
		t.Fatalf("warning %q should give the size and the recommendation", c.Warning)
	}
	c = accepted(t)(media.CheckImage(b, 1_234_567, lim))
	if !strings.Contains(c.Warning, "1.3 MB") {
		t.Fatalf("warning %q", c.Warning)
	}
}

func TestFilePDFAccepted(t *testing.T) {
	b := []byte(pdfDoc)
	c := accepted(t)(media.CheckFile("Invoice-2026-11.PDF", b, int64(len(b)), lim))
	if c.MIME != "application/pdf" || c.Ext != "pdf" || c.Name != "Invoice-2026-11.PDF" || c.Warning != "" || c.SuggestedName != "" {
		t.Fatalf("checked %+v", c)
	}
	// Only the head of a large PDF is needed.
	c = accepted(t)(media.CheckFile("manual.pdf", b, 700_000, lim))
	if !strings.Contains(c.Warning, "700 KB") || !strings.Contains(c.Warning, "600 KB") {
		t.Fatalf("warning %q should give the size and the recommendation", c.Warning)
	}
}

func TestFileHTMLNamedPDFRefused(t *testing.T) {
	b := []byte(htmlPage)
	_, r := media.CheckFile("invoice.pdf", b, int64(len(b)), lim)
	wantRefused(t, r, "invoice.pdf", "web page (HTML)", "not a PDF document")
}

func TestFileExecutableRenamedRefused(t *testing.T) {
	exe := append([]byte("MZ\x90\x00"), make([]byte, 400)...)
	elf := append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 400)...)
	for _, name := range []string{"invoice.pdf", "report.docx", "table.xlsx", "notes.txt", "old.doc", "data.csv", "x.pdax"} {
		_, r := media.CheckFile(name, exe, int64(len(exe)), lim)
		wantRefused(t, r, "program")
		_, r = media.CheckFile(name, elf, int64(len(elf)), lim)
		wantRefused(t, r, "program")
	}
}

func TestFileTypesBySniffing(t *testing.T) {
	docx := officeZip(t, "[Content_Types].xml", "_rels/.rels", "word/document.xml")
	xlsx := officeZip(t, "[Content_Types].xml", "_rels/.rels", "xl/workbook.xml")
	jar := officeZip(t, "META-INF/MANIFEST.MF", "a/B.class")
	plainZip := officeZip(t, "readme.md")
	ole := append([]byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}, make([]byte, 1000)...)
	fodt := []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" office:mimetype="application/vnd.oasis.opendocument.text"><office:body/></office:document>`)
	eps := []byte("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
	dosEPS := append([]byte{0xC5, 0xD0, 0xD3, 0xC6}, make([]byte, 100)...)
	rtf := []byte(`{\rtf1\ansi\deff0 {\fonttbl {\f0 Times;}} Hello}`)
	csv := []byte("name,amount\nAnna,12.50\nБорис,7\n")
	txt := []byte("Привет! Order 4711 shipped.\r\n")
	utf16 := []byte{0xFF, 0xFE, 'h', 0, 'i', 0}
	nul := []byte("text with a \x00 NUL byte")

	cases := []struct {
		name string
		b    []byte
		ok   bool
		mime string
	}{
		{"letter.docx", docx, true, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"template.DOTX", docx, true, "application/vnd.openxmlformats-officedocument.wordprocessingml.template"},
		{"letter.docx", plainZip, true, ""}, // sniffing sees only the container: cannot tell
		{"letter.docx", xlsx, false, ""},    // an Excel workbook named .docx
		{"letter.docx", jar, false, ""},
		{"table.xlsx", xlsx, true, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
		{"macros.xlsm", xlsx, true, ""},
		{"tmpl.xltx", xlsx, true, ""},
		{"table.xlsx", docx, false, ""},
		{"doc.xps", plainZip, true, "application/vnd.ms-xpsdocument"},
		{"doc.xps", jar, false, ""},
		{"text.odt", plainZip, true, ""},
		{"old.doc", ole, true, "application/msword"},
		{"old.dot", ole, true, ""},
		{"old.xls", ole, true, "application/vnd.ms-excel"},
		{"saved-by-word.doc", rtf, true, ""},
		{"old.doc", docx, false, ""},
		{"letter.rtf", rtf, true, "application/rtf"},
		{"letter.rtf", txt, false, ""},
		{"flat.fodt", fodt, true, ""},
		{"flat.fods", fodt, true, ""},
		{"flat.fodt", []byte(htmlPage), false, ""},
		{"drawing.eps", eps, true, "application/postscript"},
		{"drawing.eps", dosEPS, true, ""},
		{"drawing.eps", []byte(pdfDoc), false, ""},
		{"data.csv", csv, true, "text/csv"},
		{"notes.txt", txt, true, "text/plain"},
		{"NOTES.INFO", txt, true, ""},
		{"wide.txt", utf16, true, ""},
		{"binary.txt", nul, false, ""},
		{"page.txt", []byte(htmlPage), false, ""},
		{"scan.txt", pngBytes(t, 4, 4), false, ""},
		{"unknown.pdax", append([]byte{1, 2, 3, 4}, make([]byte, 64)...), true, ""},
		{"unknown.pdax", []byte(htmlPage), false, ""},
		{"doc.pdf", docx, false, ""},
	}
	for _, c := range cases {
		got, r := media.CheckFile(c.name, c.b, int64(len(c.b)), lim)
		if c.ok && r != nil {
			t.Errorf("%s (sniffed %s): refused: %s", c.name, got.Sniffed, r.Message)
			continue
		}
		if !c.ok {
			if r == nil {
				t.Errorf("%s: accepted (sniffed %s), want refused", c.name, got.Sniffed)
			} else if r.Code != session.FileRejected || !strings.Contains(r.Message, "but its content is") {
				t.Errorf("%s: refusal %v", c.name, r)
			}
			continue
		}
		if c.mime != "" && got.MIME != c.mime {
			t.Errorf("%s: MIME %q, want %q", c.name, got.MIME, c.mime)
		}
		if got.Ext != strings.ToLower(c.name[strings.LastIndexByte(c.name, '.')+1:]) {
			t.Errorf("%s: ext %q", c.name, got.Ext)
		}
	}
}

func TestFileExtensionNotAllowed(t *testing.T) {
	b := []byte(pdfDoc)
	for _, name := range []string{"photo.jpg", "archive.zip", "setup.exe", "noextension", ".pdf", "slides.pptx", "page.html"} {
		_, r := media.CheckFile(name, b, int64(len(b)), lim)
		wantRefused(t, r, "only these file types", "docx", "xltx")
	}
	_, r := media.CheckFile("photo.JPG", b, int64(len(b)), lim)
	wantRefused(t, r, "as an image")
	got := media.Extensions()
	if len(got) != 21 || got[0] != "doc" || got[20] != "xltx" {
		t.Fatalf("Extensions() = %v", got)
	}
	got[0] = "exe" // a copy: the package's list does not change
	if media.Extensions()[0] != "doc" {
		t.Fatal("Extensions returned the package's own slice")
	}
}

func TestCase13_TwentySixCharNameRefusedWithShortening(t *testing.T) {
	b := []byte(pdfDoc)
	name26 := "quarterly-report-2026a.pdf" // 22 + 4
	if n := utf8.RuneCountInString(name26); n != 26 {
		t.Fatalf("test name has %d characters", n)
	}
	c, r := media.CheckFile(name26, b, int64(len(b)), lim)
	wantRefused(t, r, "26 characters", "at most 25", "“quarterly-report-2026.pdf”")
	if c.SuggestedName != "quarterly-report-2026.pdf" {
		t.Fatalf("suggested %q", c.SuggestedName)
	}
	// The suggestion itself is accepted.
	accepted(t)(media.CheckFile(c.SuggestedName, b, int64(len(b)), lim))

	name25 := "quarterly-report-2026.pdf"
	c = accepted(t)(media.CheckFile(name25, b, int64(len(b)), lim))
	if c.Name != name25 {
		t.Fatalf("name %q", c.Name)
	}
	// Characters, not bytes: 21 Cyrillic letters + ".pdf" is 25 and fits.
	cyr := strings.Repeat("ж", 21) + ".pdf"
	accepted(t)(media.CheckFile(cyr, b, int64(len(b)), lim))
	c, r = media.CheckFile("ж"+cyr, b, int64(len(b)), lim)
	wantRefused(t, r, "26 characters")
	if c.SuggestedName != cyr {
		t.Fatalf("suggested %q, want %q", c.SuggestedName, cyr)
	}
	// The length is of the sanitized name: directories do not count.
	accepted(t)(media.CheckFile(`C:\Users\anna\Documents\quarterly-report-2026.pdf`, b, int64(len(b)), lim))
}

func TestFileSizes(t *testing.T) {
	b := []byte(pdfDoc)
	_, r := media.CheckFile("big.pdf", b, 50_000_001, lim)
	wantRefused(t, r, "50.1 MB", "at most 50 MB")
	c := accepted(t)(media.CheckFile("big.pdf", b, 50_000_000, lim))
	if !strings.Contains(c.Warning, "50 MB") {
		t.Fatalf("warning %q", c.Warning)
	}
	c = accepted(t)(media.CheckFile("small.pdf", b, 600_000, lim))
	if c.Warning != "" {
		t.Fatalf("warning at exactly 600 KB: %q", c.Warning)
	}
	_, r = media.CheckFile("empty.pdf", nil, 0, lim)
	wantRefused(t, r, "empty")
}

func TestShortenName(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"quarterly-report-2026a.pdf", 25, "quarterly-report-2026.pdf"},
		{"short.pdf", 25, "short.pdf"},
		{"exactly-twenty-five-c.pdf", 25, "exactly-twenty-five-c.pdf"},
		{"Договор поставки № 17 от 24.11.2026.docx", 25, "Договор поставки № 1.docx"},
		{"report final version 2.pdf", 12, "report f.pdf"},
		{"report - final.pdf", 13, "report.pdf"}, // "report - " trimmed of the separators left at the end
		{"a_________________________b.txt", 10, "a.txt"},
		{"noextensionatallinthisname", 10, "noextensio"},
		{"x.averyveryverylongextension", 10, "x.averyver"}, // the extension alone does not fit
		{"😀😀😀😀😀😀.pdf", 7, "😀😀😀.pdf"},
		{"anything", 0, ""},
		{"____.txt", 6, "__.txt"}, // nothing but separators: kept rather than emptied
	}
	for _, c := range cases {
		got := media.ShortenName(c.in, c.max)
		if got != c.want {
			t.Errorf("ShortenName(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
		if c.max > 0 && utf8.RuneCountInString(got) > c.max {
			t.Errorf("ShortenName(%q, %d) = %q is too long", c.in, c.max, got)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	cases := []struct{ in, want string }{
		{"../../etc/passwd", "passwd"},
		{`..\..\Windows\System32\drivers\etc\hosts`, "hosts"},
		{"/abs/path/report.pdf", "report.pdf"},
		{`C:\Users\anna\report.pdf`, "report.pdf"},
		{"report\x00.pdf", "report.pdf"},
		{"re\nport\t.pdf\r", "report.pdf"},
		{"\x1b[31mred.txt", "[31mred.txt"},
		{"invoice\u202Efdp.exe", "invoicefdp.exe"}, // right-to-left override removed
		{"  .hidden.txt  ", "hidden.txt"},
		{". . .x.txt", "x.txt"},
		{"...", "file"},
		{"..", "file"},
		{"", "file"},
		{"   ", "file"},
		{"dir/", "file"},
		{"\x00\x01\x02", "file"},
		{"bad\xff\xfeutf8.txt", "badutf8.txt"},
		{"Отчёт за ноябрь.xlsx", "Отчёт за ноябрь.xlsx"},
		{"a b.pdf", "a b.pdf"},
	}
	for _, c := range cases {
		if got := media.SanitizeName(c.in); got != c.want {
			t.Errorf("SanitizeName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSanitizeNameProperties(t *testing.T) {
	inputs := []string{"", "/", `\`, "..", "../", "a/../../b", "\x00", " . ", "\u202E", "x\\y/z", "😀/😀.txt", "..\x00..", "\u2066.\u2069."}
	for _, in := range inputs {
		got := media.SanitizeName(in)
		if got == "" || strings.ContainsAny(got, `/\`) || strings.HasPrefix(got, ".") || strings.TrimSpace(got) != got || !utf8.ValidString(got) {
			t.Errorf("SanitizeName(%q) = %q", in, got)
		}
		if media.SanitizeName(got) != got {
			t.Errorf("SanitizeName not idempotent on %q: %q → %q", in, got, media.SanitizeName(got))
		}
	}
}

func FuzzSanitizeName(f *testing.F) {
	for _, s := range []string{"../../etc/passwd", "a\x00b", " .x ", `c:\x\y.pdf`, "\u202Eabc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := media.SanitizeName(in)
		if got == "" || strings.ContainsAny(got, `/\`) || strings.HasPrefix(got, ".") || strings.TrimSpace(got) != got || !utf8.ValidString(got) {
			t.Fatalf("SanitizeName(%q) = %q", in, got)
		}
		if again := media.SanitizeName(got); again != got {
			t.Fatalf("not idempotent: %q → %q → %q", in, got, again)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7F {
				t.Fatalf("control character left in %q", got)
			}
		}
		if short := media.ShortenName(got, media.MaxNameLen); utf8.RuneCountInString(short) > media.MaxNameLen {
			t.Fatalf("ShortenName(%q) = %q", got, short)
		}
	})
}

// FuzzCheckBytes feeds arbitrary bytes to both checks: they must never panic, and
// what they accept must be what they promise.
func FuzzCheckBytes(f *testing.F) {
	f.Add([]byte(htmlPage), "a.pdf")
	f.Add([]byte(pdfDoc), "a.pdf")
	f.Add(pngHeader(50_000, 50_000), "a.txt")
	f.Add(pngHeader(7, 9), "a.eps")
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0}, "a.doc")
	f.Add([]byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), "a.xls")
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		size := int64(len(b))
		if c, r := media.CheckImage(b, size, lim); r == nil {
			if c.MIME != "image/png" && c.MIME != "image/jpeg" || c.Width <= 0 || c.Height <= 0 ||
				int64(c.Width)*int64(c.Height) > lim.MaxPixels {
				t.Fatalf("accepted image %+v", c)
			}
		} else if r.Code != session.FileRejected || r.Message == "" {
			t.Fatalf("refusal %+v", r)
		}
		if c, r := media.CheckFile(name, b, size, lim); r == nil {
			if c.Name != media.SanitizeName(name) || utf8.RuneCountInString(c.Name) > media.MaxNameLen || c.MIME == "" {
				t.Fatalf("accepted file %+v", c)
			}
		} else if r.Code != session.FileRejected || r.Message == "" {
			t.Fatalf("refusal %+v", r)
		}
	})
}

// pngHeaderOf is a PNG signature and a valid IHDR chunk of any depth, colour
// type and interlace method, and nothing else: enough for the checks, which
// never decode pixels.
func pngHeaderOf(w, h uint32, depth, colour, interlace byte) []byte {
	b := pngHeader(w, h)
	b[24], b[25], b[28] = depth, colour, interlace
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// jpegHeaderOf is a JPEG's start and frame header (SOF0, or SOF2 when
// progressive) with three components sampled as given (h, v of each), after
// a JFIF segment.
func jpegHeaderOf(w, h uint16, progressive bool, sampling ...byte) []byte {
	marker := byte(0xC0)
	if progressive {
		marker = 0xC2
	}
	seg := []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), byte(len(sampling))}
	for i, s := range sampling {
		seg = append(seg, byte(i+1), s, 0)
	}
	out := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}
	out = append(out, 0xFF, marker, 0, byte(len(seg)+2))
	return append(out, seg...)
}

// The pixel limit counts bytes a pixel: a 50-megapixel 16-bit PNG (400 MB once
// decoded) is refused from its header alone, while the same size in 8 bits
// (200 MB) is accepted; interlacing and progressive JPEGs count their extra
// buffers.
func TestDecodedSizeCountsBytesAPixel(t *testing.T) {
	const w, h = 8160, 6120 // 49.9 megapixels
	for _, tc := range []struct {
		name   string
		head   []byte
		bytes  int64
		refuse []string // nil: accepted
	}{
		{"8-bit RGBA PNG", pngHeaderOf(w, h, 8, 6, 0), w * h * 4, nil},
		{"16-bit RGB PNG", pngHeaderOf(w, h, 16, 2, 0), w * h * 8, []string{"8160 × 6120", "16-bit PNG", "399.6 MB", "at most 200 MB", "8 bits"}},
		{"16-bit gray PNG", pngHeaderOf(w, h, 16, 0, 0), w * h * 8, []string{"16-bit PNG"}},
		{"interlaced 8-bit PNG", pngHeaderOf(w, h, 8, 6, 1), w * h * 8, []string{"interlaced", "without interlacing"}},
		{"paletted PNG", pngHeaderOf(w, h, 8, 3, 0), w * h, nil},
		{"4:2:0 baseline JPEG", jpegHeaderOf(w, h, false, 0x22, 0x11, 0x11), w * h * 3 / 2, nil},
		{"4:4:4 baseline JPEG", jpegHeaderOf(w, h, false, 0x11, 0x11, 0x11), w * h * 3, nil},
		{"4:2:0 progressive JPEG", jpegHeaderOf(w, h, true, 0x22, 0x11, 0x11), w * h * 3 / 2 * 5, []string{"progressive JPEG", "baseline"}},
		{"small progressive JPEG", jpegHeaderOf(4000, 3000, true, 0x22, 0x11, 0x11), 4000 * 3000 * 3 / 2 * 5, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := media.DecodedSize(tc.head)
			if err != nil || d.Bytes != tc.bytes {
				t.Fatalf("DecodedSize = %+v, %v; want %d bytes", d, err, tc.bytes)
			}
			c, r := media.CheckImage(tc.head, 3_000_000, lim) // the head of a longer file
			if tc.refuse == nil {
				if r != nil {
					t.Fatalf("refused: %s", r.Message)
				}
				if c.Width != d.Width || c.Height != d.Height {
					t.Fatalf("checked %+v", c)
				}
				return
			}
			wantRefused(t, r, tc.refuse...)
		})
	}
	// The budget is a setting.
	tight := lim
	tight.MaxDecoded = 64 * 48 * 4
	accepted(t)(media.CheckImage(pngBytes(t, 64, 48), 1000, tight))
	_, r := media.CheckImage(pngBytes(t, 64, 49), 1000, tight)
	wantRefused(t, r, "64 × 49")
}

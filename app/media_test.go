package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sessiondesk/channel"
	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/config"
	"sessiondesk/store"
)

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		for y := range h {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 200, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// hugePNGHeader is a PNG that claims 50,000 × 50,000 pixels: a decompression
// bomb's header, with valid CRCs and no pixel data worth the name.
func hugePNGHeader() []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 50000)
	binary.BigEndian.PutUint32(ihdr[4:], 50000)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	chunk("IEND", nil)
	return b.Bytes()
}

const minimalPDF = "%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

type part struct {
	field, name string
	body        io.Reader
}

// multipartBody streams fields and files as multipart/form-data.
func multipartBody(parts ...part) (io.Reader, string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		for _, p := range parts {
			var w io.Writer
			var err error
			if p.name == "" {
				w, err = mw.CreateFormField(p.field)
			} else {
				w, err = mw.CreateFormFile(p.field, p.name)
			}
			if err == nil {
				_, err = io.Copy(w, p.body)
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(mw.Close())
	}()
	return pr, mw.FormDataContentType()
}

func (ta *testApp) upload(t *testing.T, path string, parts ...part) (int, apiError, []byte) {
	t.Helper()
	body, ct := multipartBody(parts...)
	req, _ := http.NewRequest("POST", ta.base+path, body)
	req.Header.Set("Content-Type", ct)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var e apiError
	_ = json.Unmarshal(b, &e)
	return res.StatusCode, e, b
}

// blobs counts the files in the media folder.
func (ta *testApp) blobs(t *testing.T) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(filepath.Join(ta.data, "media"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// blobNames lists the blob hashes in the media folder.
func (ta *testApp) blobNames(t *testing.T) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(filepath.Join(ta.data, "media"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, d.Name())
		}
		return nil
	})
	return out
}

// sweepNow runs the media sweep with no grace period: every blob no
// attachment refers to goes.
func (ta *testApp) sweepNow(t *testing.T) int {
	t.Helper()
	n, err := ta.media.Sweep(context.Background(), time.Now().Add(time.Minute), ta.Store.HashInUse)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// zeros yields n zero bytes without holding them.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

// Each bad attachment is refused with a clear reason and leaves nothing behind.
func TestAttachmentRefusals(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	path := "/api/v1/conversations/" + strconv.FormatInt(conv, 10) + "/messages"
	msgsBefore, blobsBefore := ta.messageCount(t), ta.blobs(t)

	for _, tc := range []struct {
		name   string
		parts  []part
		status int
		code   string
		says   string
	}{
		{"a .png holding HTML (case 12)", []part{{"type", "", strings.NewReader("image")},
			{"file", "photo.png", strings.NewReader("<!DOCTYPE html><html><script>alert(1)</script></html>")}},
			422, "file_rejected", "JPEG or PNG"},
		{"a .png holding a GIF (case 12)", []part{{"file", "photo.png", strings.NewReader("GIF89a\x01\x00\x01\x00\x00\x00\x00;")}},
			422, "file_rejected", "JPEG or PNG"},
		{"a 26-character file name (case 13)", []part{{"type", "", strings.NewReader("file")},
			{"file", "quarterly-report-2026-.pdf", strings.NewReader(minimalPDF)}},
			422, "file_rejected", ".pdf"},
		{"a 60 MB file", []part{{"type", "", strings.NewReader("file")},
			{"file", "big.pdf", io.MultiReader(strings.NewReader(minimalPDF), &zeros{60_000_000})}},
			413, "file_rejected", "50 MB"},
		{"a 50,000 × 50,000 PNG", []part{{"file", "bomb.png", bytes.NewReader(hugePNGHeader())}},
			422, "file_rejected", "pixels"},
		{"an executable named .pdf", []part{{"file", "invoice.pdf", strings.NewReader("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff")}},
			422, "file_rejected", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, e, body := ta.upload(t, path, tc.parts...)
			if status != tc.status || e.Code != tc.code {
				t.Fatalf("%d %s, want %d %s", status, body, tc.status, tc.code)
			}
			if !strings.Contains(e.Message, tc.says) {
				t.Errorf("message %q does not say %q", e.Message, tc.says)
			}
		})
	}
	// Nothing refers to the refused bytes: the sweep takes them.
	ta.sweepNow(t)
	if ta.messageCount(t) != msgsBefore || ta.blobs(t) != blobsBefore {
		t.Errorf("refused uploads left %d messages and %d blobs behind", ta.messageCount(t)-msgsBefore, ta.blobs(t)-blobsBefore)
	}
	// The shortened name is offered.
	_, e, _ := ta.upload(t, path, part{"file", "quarterly-report-2026-.pdf", strings.NewReader(minimalPDF)})
	if !strings.Contains(e.Message, ".pdf") || !strings.Contains(e.Message, "25") {
		t.Errorf("name refusal %q does not offer a shortened name", e.Message)
	}
}

// Case 16: a text and two images with two unanswered left are refused before
// any message is stored, and before any thumbnail is made: the media folder
// holds the two uploads and nothing else, until the sweep takes them.
func TestCase16_TextAndTwoImagesNeedThree(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	path := "/api/v1/conversations/" + strconv.FormatInt(conv, 10) + "/messages"
	for range 3 {
		if status, body := ta.do(t, "POST", path, "application/json", `{"type":"text","text":"hi"}`); status != 201 {
			t.Fatalf("%d %s", status, body)
		}
	}
	msgs := ta.messageCount(t)
	if n := ta.blobs(t); n != 0 {
		t.Fatalf("%d blobs before any upload", n)
	}
	img, img2 := pngBytes(t, 40, 30), pngBytes(t, 30, 40)
	status, e, _ := ta.upload(t, path, part{"text", "", strings.NewReader("Here are the photos")},
		part{"file", "a.png", bytes.NewReader(img)}, part{"file", "b.png", bytes.NewReader(img2)})
	if status != http.StatusConflict || e.Code != "awaiting_client" || !strings.Contains(e.Message, "3") {
		t.Fatalf("%d %+v, want 409 awaiting_client naming 3", status, e)
	}
	if ta.messageCount(t) != msgs {
		t.Errorf("the refused send stored %d messages", ta.messageCount(t)-msgs)
	}
	got := ta.blobNames(t)
	if want := []string{sha256Hex(img), sha256Hex(img2)}; !sameSet(got, want) {
		t.Errorf("media folder holds %v, want only the two uploads %v (no thumbnails)", got, want)
	}
	ta.sweepNow(t)
	if n := ta.blobs(t); n != 0 {
		t.Errorf("the sweep left %d blobs of a refused send", n)
	}
}

// Images and files go to Routee as imageURL and viberFile, whose URLs return
// the exact bytes, served safely.
func TestAttachmentsReachRouteeByURL(t *testing.T) {
	ra := startRouteeApp(t, channel.OutboxOptions{})
	conv := ra.clientWritesViaRoutee(t, phoneOf(3), "Send me the invoice please")
	img := pngBytes(t, 64, 48)
	status, _, body := ra.upload(t, "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages",
		part{"text", "", strings.NewReader("Here you are")},
		part{"file", "screenshot.png", bytes.NewReader(img)},
		part{"file", "invoice.pdf", strings.NewReader(minimalPDF)})
	if status != http.StatusCreated {
		t.Fatalf("send: %d %s", status, body)
	}
	waitFor(t, "three messages at Routee", func() bool { return len(ra.fake.Messages()) == 3 })
	got := ra.fake.Messages()
	if got[0].Text != "Here you are" || got[1].ImageURL == "" || got[2].FileURL == "" || got[2].FileName != "invoice.pdf" || got[2].FileType != "pdf" {
		t.Fatalf("Routee got %+v, want the text, then the image, then the file (S5 order)", got)
	}
	for _, tc := range []struct {
		url         string
		want        []byte
		disposition string
		ctype       string
	}{
		{got[1].ImageURL, img, "inline", "image/png"},
		{got[2].FileURL, []byte(minimalPDF), "attachment", "application/pdf"},
	} {
		res, err := http.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !bytes.Equal(b, tc.want) {
			t.Errorf("%s: %d, %d bytes, want the exact %d bytes", tc.url, res.StatusCode, len(b), len(tc.want))
		}
		if h := res.Header; !strings.HasPrefix(h.Get("Content-Disposition"), tc.disposition) ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Type") != tc.ctype {
			t.Errorf("%s: headers %v", tc.url, h)
		}
	}
	// A made-up token is a 404.
	res, err := http.Get(ra.base + "/media/" + strings.Repeat("0", 48))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("unknown media token: %d", res.StatusCode)
	}
}

// A client's photo and file are downloaded at once, kept, and served; a failed
// download is retried.
func TestClientMediaIsDownloadedAndKept(t *testing.T) {
	img := pngBytes(t, 800, 600)
	var failures atomic.Int32
	failures.Store(1)
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/photo":
			w.Write(img)
		case "/invoice":
			if failures.Add(-1) >= 0 {
				http.Error(w, "try later", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, minimalPDF)
		default:
			http.NotFound(w, r)
		}
	}))
	defer provider.Close()
	ra := startRouteeApp(t, channel.OutboxOptions{}, func(_ *config.Config, o *Options) {
		o.MediaAllow = []string{provider.URL + "/"}
	})
	for _, in := range []fakeroutee.Inbound{
		{From: phoneOf(4), Text: "this is broken", MediaURL: provider.URL + "/photo"},
		{From: phoneOf(4), Text: "and the invoice", MediaURL: provider.URL + "/invoice", FileName: "invoice.pdf"},
	} {
		if err := ra.fake.SendInbound(context.Background(), ra.hooks+"/inbound", in); err != nil {
			t.Fatal(err)
		}
	}
	var conv int64
	_ = ra.Store.Read(context.Background(), func(r *store.Reader) error {
		c, err := r.ConversationByPhone(context.Background(), phoneOf(4))
		conv = c.ID
		return err
	})
	var atts []store.Attachment
	waitFor(t, "both downloads", func() bool {
		atts = nil
		_ = ra.Store.Read(context.Background(), func(r *store.Reader) error {
			msgs, _ := r.Messages(context.Background(), conv, 10)
			for _, m := range msgs {
				if m.Attachment != nil && m.Attachment.DownloadState == store.DownloadDone {
					atts = append(atts, *m.Attachment)
				}
			}
			return nil
		})
		return len(atts) == 2
	})
	photo, pdf := atts[0], atts[1]
	if photo.MIME != "image/png" || photo.Width != 800 || photo.ThumbHash == "" {
		t.Errorf("photo = %+v", photo)
	}
	if pdf.Name != "invoice.pdf" || pdf.Attempts != 1 || pdf.Size != int64(len(minimalPDF)) {
		t.Errorf("invoice = %+v, want it kept after one failed try", pdf)
	}
	for _, p := range []string{"/attachments/" + strconv.FormatInt(photo.ID, 10), "/attachments/" + strconv.FormatInt(photo.ID, 10) + "/thumb",
		"/attachments/" + strconv.FormatInt(pdf.ID, 10)} {
		status, body := ra.do(t, "GET", p, "", "")
		if status != 200 || len(body) == 0 {
			t.Errorf("GET %s: %d", p, status)
		}
	}
}

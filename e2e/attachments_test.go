package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Scenario 6 (and issue 4's "done when"): a sandbox client sends a photo and a
// PDF from the phone page; the agent sees the photo inline (with a lightbox)
// and the PDF as a card, answers with a pasted screenshot and a dropped
// spreadsheet, and the phone shows both.
func TestImagePastedAndFileDroppedReachThePhone(t *testing.T) {
	ta := startApp(t, appOptions{})
	// The app's in-process HTTP clients (the fake Routee's callbacks, the
	// Routee client, the media downloader) and this test's share
	// http.DefaultTransport. When requests overlap, the transport may dial a
	// connection it then never uses; the app's graceful shutdown waits 5 s for
	// such a connection (net/http's grace for one that never sent a request).
	// Closing the idle connections after the tabs and before the app stops
	// spares that wait.
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	conv := ta.clientWrites(t, olga, olgaName, "Hello, the kettle from order #1182 arrived cracked")
	ta.clock.Add(time.Minute)

	dir := t.TempDir()
	photoBytes := photoPNG(t, 640, 480)
	photo := writeTemp(t, dir, "kettle.png", photoBytes)
	pdfBytes := samplePDF("Invoice 1182")
	const pdfName = "invoice-1182.pdf"
	pdf := writeTemp(t, dir, pdfName, pdfBytes)

	agent := newTab(t, tabOptions{})
	agent.open(convURL(ta, conv))
	agent.waitSocket()
	agent.setMarker()

	phone := newTab(t, tabOptions{})
	phone.open(ta.base + "/sandbox?phone=" + url.QueryEscape(olga))
	phone.waitSocket()
	phone.setMarker()

	// 1. The client sends a photo, then a PDF, from the phone.
	const (
		inJS  = `#thread-messages [data-direction="in"]`
		outJS = `#thread-messages [data-direction="out"]`
	)
	for i, file := range []string{photo, pdf} {
		n := i + 1
		phone.waitSettled("the phone is ready to send " + filepath.Base(file))
		phone.do("the client attaches "+filepath.Base(file)+" and sends it",
			chromedp.SetUploadFiles(chromedp.CSS(testid("sandbox-file")), []string{file}),
			chromedp.Click(chromedp.CSS(testid("sandbox-send"))),
		)
		phone.waitFor(fmt.Sprintf("the phone shows %s as the client's attachment %d", filepath.Base(file), n),
			fmt.Sprintf(`document.querySelectorAll('#sandbox-messages [data-direction="in"] [data-testid^="attachment"]').length === %d`, n))
		// Sent: the file is gone from the phone's input, as in Viber (else the
		// next message would carry it again).
		phone.waitFor("the phone's file input is empty after sending "+filepath.Base(file),
			`document.querySelector(`+js(testid("sandbox-file"))+`).files.length === 0`)
	}

	start := time.Now()
	agent.waitFor("the photo shows inline and its thumbnail has loaded", imageLoadedJS(inJS+` [data-testid="attachment-image"] img`))
	agent.waitFor("the PDF shows as a file card", fileCardJS(inJS, pdfName))
	t.Logf("the agent saw the photo and the PDF %v after the phone's second send", time.Since(start).Round(time.Millisecond))
	agent.checkNoReload()
	if w := eval[int](agent, `document.querySelector('`+inJS+` [data-testid="attachment-image"] img').naturalWidth`); w > 320 {
		t.Errorf("the thread loads a %d px wide image for the photo, want a thumbnail of at most 320 px", w)
	}
	if meta := agent.text(inJS + ` [data-testid="attachment-file"]`); !strings.Contains(meta, "PDF") || !strings.Contains(meta, "Download") {
		t.Errorf("the PDF's card reads %q, want its type and a download", meta)
	}
	checkServed(t, ta, attrOf(agent, inJS+` [data-testid="attachment-file"]`, "href"), pdfBytes, true)
	checkServed(t, ta, attrOf(agent, inJS+` [data-testid="attachment-image"]`, "href"), photoBytes, false)

	agent.do("click the photo", chromedp.Click(chromedp.CSS(inJS+` [data-testid="attachment-image"]`)))
	agent.waitFor("the lightbox shows the whole photo", `(function () {
		var img = document.querySelector('[data-testid="lightbox"] img');
		return img && img.complete && img.naturalWidth === 640 && img.naturalHeight === 480;
	})()`)
	agent.checkNoReload() // the click did not follow the link
	agent.do("press Escape", chromedp.KeyEvent(kb.Escape))
	agent.waitFor("the lightbox is closed", `!document.querySelector('[data-testid="lightbox"]')`)

	// 2. The agent pastes a screenshot and drops a spreadsheet; a third file,
	// pasted by mistake, is removed again.
	shotBytes := screenshotPNG(t, 480, 300)
	const csv = "sku,name,price\nKT-1182,Glass kettle 1.7 l,49.90\nKT-1183,Steel kettle 1.5 l,39.90\n"
	agent.waitSettled("the composer is ready")
	if !eval[bool](agent, pasteJS(fileJS("image.png", "image/png", shotBytes))) {
		t.Fatal("the composer did not take the pasted screenshot (the paste was not cancelled)")
	}
	dropped := eval[struct {
		Over, Dragging, Drop bool
	}](agent, dropJS(fileJS("prices.csv", "text/csv", []byte(csv))))
	if !dropped.Over || !dropped.Dragging || !dropped.Drop {
		t.Fatalf("the composer did not take the drop: %+v (want dragover and drop cancelled, the composer highlighted)", dropped)
	}
	agent.waitFor("two previews show", previewCountJS+` === 2`)
	agent.waitFor("the usage line counts 2 messages", usageJS(2))
	if !eval[bool](agent, pasteJS(fileJS("notes.txt", "text/plain", []byte("not this one")))) {
		t.Fatal("the composer did not take the third file")
	}
	agent.waitFor("three previews show", previewCountJS+` === 3`)
	agent.waitFor("the usage line counts 3 messages", usageJS(3))
	agent.do("remove the third file",
		chromedp.Click(chromedp.CSS(`#composer-previews [data-testid="composer-preview"]:nth-child(3) [data-testid="composer-preview-remove"]`)))
	agent.waitFor("two previews are left", previewCountJS+` === 2`)
	agent.waitFor("the usage line counts 2 messages again", usageJS(2))
	names := eval[[]string](agent, `Array.from(document.querySelectorAll('#composer-previews .preview-name')).map(function (e) { return e.textContent; })`)
	if len(names) != 2 || !strings.HasPrefix(names[0], "screenshot-") || !strings.HasSuffix(names[0], ".png") || names[1] != "prices.csv" {
		t.Errorf("the previews are %q, want the pasted screenshot (screenshot-….png) and prices.csv", names)
	}
	if n := eval[int](agent, `document.getElementById('composer-files').files.length`); n != 2 {
		t.Errorf("the composer's file input holds %d files, want 2", n)
	}
	agent.waitFor("the screenshot's preview shows the image", imageLoadedJS(`#composer-previews [data-testid="composer-preview"] img`))

	const reply = "Sorry about that! Here is the return label and our current prices."
	agent.do("type a note", chromedp.SendKeys(chromedp.CSS(`#composer-text`), reply))
	agent.waitFor("the usage line counts 3 messages with the text", usageJS(3))
	// The previews made the composer taller and the thread shorter: bring the
	// thread's end back into view for the picture.
	eval[chromedp.Void](agent, `(function () { var el = document.getElementById('thread-messages'); el.scrollTop = el.scrollHeight; })()`)
	agent.screenshot("attachments.png")

	// 3. Send with Ctrl+Enter: the text, then the screenshot, then the spreadsheet.
	agent.do("send with Ctrl+Enter",
		chromedp.Focus(chromedp.CSS(`#composer-text`)),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
	)
	agent.waitFor("the reply, the screenshot and the spreadsheet are in the thread", `(function () {
		var out = document.querySelectorAll('`+outJS+`');
		return out.length === 3 &&
			out[0].querySelector('[data-testid="message-text"]') && out[0].querySelector('[data-testid="message-text"]').textContent === `+js(reply)+` &&
			out[1].querySelector('[data-testid="attachment-image"] img') &&
			out[2].querySelector('[data-testid="attachment-file"]');
	})()`)
	agent.waitFor("the composer is empty again", `document.getElementById('composer-text').value === '' && document.querySelectorAll(`+js(testid("composer-preview"))+`).length === 0`)
	agent.waitFor("the screenshot's thumbnail has loaded", imageLoadedJS(outJS+` [data-testid="attachment-image"] img`))
	agent.waitFor("the spreadsheet's card names it", fileCardJS(outJS, "prices.csv"))
	checkServed(t, ta, attrOf(agent, outJS+` [data-testid="attachment-file"]`, "href"), []byte(csv), true)
	checkServed(t, ta, attrOf(agent, outJS+` [data-testid="attachment-image"]`, "href"), shotBytes, false)

	const phoneOutJS = `#sandbox-messages [data-direction="out"]`
	phone.waitFor("the phone shows the reply", `Array.from(document.querySelectorAll('`+phoneOutJS+` [data-testid="sandbox-message-text"]')).some(function (e) { return e.textContent === `+js(reply)+`; })`)
	phone.waitFor("the phone shows the screenshot", imageLoadedJS(phoneOutJS+` [data-testid="attachment-image"] img`))
	phone.waitFor("the phone shows the spreadsheet", fileCardJS(phoneOutJS, "prices.csv"))
	phone.checkNoReload()

	agent.waitFor("the three messages are seen", `(function () {
		var out = document.querySelectorAll('`+outJS+`');
		return out.length === 3 && Array.prototype.every.call(out, function (m) {
			var ticks = m.querySelector('[data-testid="message-ticks"]');
			return m.getAttribute('data-status') === 'seen' && ticks && ticks.getAttribute('title') === 'Seen';
		});
	})()`)
	agent.checkNoReload()
}

// previewCountJS counts the composer's previews.
const previewCountJS = `document.querySelectorAll('#composer-previews [data-testid="composer-preview"]').length`

// usageJS: the composer's usage line says the send uses n messages.
func usageJS(n int) string {
	return `document.querySelector(` + js(testid("composer-usage")) + `).textContent.trim().indexOf(` + js(fmt.Sprintf("Uses %d messages ·", n)) + `) === 0`
}

// imageLoadedJS: the first img matching css has loaded an image.
func imageLoadedJS(css string) string {
	return `(function () { var img = document.querySelector(` + js(css) + `); return !!img && img.complete && img.naturalWidth > 0; })()`
}

// fileCardJS: among the messages matching msgs, a file card names the file.
func fileCardJS(msgs, name string) string {
	return `Array.from(document.querySelectorAll(` + js(msgs+` [data-testid="attachment-file"] .file-name`) + `)).some(function (e) { return e.textContent === ` + js(name) + `; })`
}

// fileJS is a JS expression making a File with the given bytes.
func fileJS(name, typ string, b []byte) string {
	return `new File([Uint8Array.from(atob(` + js(base64.StdEncoding.EncodeToString(b)) + `), function (c) { return c.charCodeAt(0); })], ` +
		js(name) + `, {type: ` + js(typ) + `})`
}

// pasteJS pastes a file into the composer's textarea, as a browser does with
// a screenshot on the clipboard. It is true when the page took the paste.
func pasteJS(file string) string {
	return `(function () {
		var ta = document.getElementById('composer-text');
		ta.focus();
		var dt = new DataTransfer();
		dt.items.add(` + file + `);
		return !ta.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true}));
	})()`
}

// dropJS drags a file over the composer and drops it there.
func dropJS(file string) string {
	return `(function () {
		var composer = document.getElementById('composer');
		var dt = new DataTransfer();
		dt.items.add(` + file + `);
		var over = !composer.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
		var dragging = composer.classList.contains('is-dragging');
		var drop = !composer.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
		return {Over: over, Dragging: dragging, Drop: drop};
	})()`
}

// attrOf is an attribute of the first element matching css.
func attrOf(tb *tab, css, name string) string {
	tb.t.Helper()
	return eval[string](tb, `document.querySelector(`+js(css)+`).getAttribute(`+js(name)+`)`)
}

// checkServed fetches an attachment's link and compares the bytes; a file must
// come as a download.
func checkServed(t *testing.T, ta *testApp, href string, want []byte, download bool) {
	t.Helper()
	u, err := url.Parse(href)
	if err != nil || href == "" {
		t.Errorf("attachment link %q: %v", href, err)
		return
	}
	res, err := http.Get(ta.direct + u.RequestURI())
	if err != nil {
		t.Errorf("GET %s: %v", href, err)
		return
	}
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	switch {
	case err != nil || res.StatusCode != http.StatusOK:
		t.Errorf("GET %s: %d %v", href, res.StatusCode, err)
	case !bytes.Equal(got, want):
		t.Errorf("GET %s: %d bytes that differ from the %d sent", href, len(got), len(want))
	}
	if cd := res.Header.Get("Content-Disposition"); download && !strings.HasPrefix(cd, "attachment") {
		t.Errorf("GET %s: Content-Disposition %q, want attachment", href, cd)
	}
	if nosniff := res.Header.Get("X-Content-Type-Options"); nosniff != "nosniff" {
		t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", href, nosniff)
	}
}

func writeTemp(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// photoPNG is the client's photo: a kettle on a table, more or less.
func photoPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	cx, cy, r := w/2, h/2, h/3
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{uint8(200 - 60*y/h), uint8(215 - 50*y/h), 235, 255} // wall
			if y > h*2/3 {
				c = color.RGBA{150, 105, 70, 255} // table
			}
			dx, dy := x-cx, y-cy
			if dx*dx+dy*dy < r*r {
				shade := uint8(120 + 100*(r-dx)/(2*r))
				c = color.RGBA{shade, shade, uint8(min(255, int(shade)+25)), 255} // kettle
				if dx > -r/8 && dx < r/8 && dy > -r && dy < r/2 && (dx+dy)%9 == 0 {
					c = color.RGBA{40, 40, 40, 255} // the crack
				}
			}
			img.Set(x, y, c)
		}
	}
	return encodePNG(t, img)
}

// screenshotPNG is the agent's screenshot: a window with a title bar and a
// few lines of "text".
func screenshotPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{250, 250, 252, 255}
			switch {
			case y < 28:
				c = color.RGBA{115, 96, 242, 255} // Viber purple
			case y > 50 && (y-50)%24 < 10 && x > 24 && x < w-24-((y-50)/24)*37%120:
				c = color.RGBA{200, 204, 214, 255}
			}
			img.Set(x, y, c)
		}
	}
	return encodePNG(t, img)
}

// samplePDF is a small valid one-page PDF (with a correct cross-reference table).
func samplePDF(title string) []byte {
	content := fmt.Sprintf("BT /F1 24 Tf 72 760 Td (%s) Tj ET", title)
	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objects))
	for i, o := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}

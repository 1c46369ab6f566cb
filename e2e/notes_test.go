package e2e

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// An agent writes an internal note in the composer's Note tab (opened with n);
// a colleague's page viewing the same conversation shows it at once, styled as
// a note, and the client's phone never does.
func TestNoteTabNoteShowsOnAnotherPage(t *testing.T) {
	ta := startApp(t, appOptions{})
	conv := ta.clientWrites(t, olga, olgaName, "Hello, my order #1182 is late")
	ta.clock.Add(time.Minute)

	writer := newTab(t, tabOptions{})
	writer.open(convURL(ta, conv))
	writer.waitSocket()
	colleague := newTab(t, tabOptions{})
	colleague.open(convURL(ta, conv))
	colleague.waitSocket()
	colleague.setMarker()
	phone := newTab(t, tabOptions{})
	phone.open(ta.base + "/sandbox?phone=%2B375298603938")
	phone.waitFor("the phone shows the client's message", `document.querySelectorAll('#sandbox-messages [data-testid="sandbox-message-text"]').length === 1`)

	visible := func(css string) string {
		return `(function () { var el = document.querySelector(` + js(css) + `); return !!el && el.offsetParent !== null; })()`
	}
	if !eval[bool](writer, visible("#composer-text")) || eval[bool](writer, visible("#note-text")) {
		t.Fatal("the composer does not open on the Reply tab")
	}
	// A key down whose default the page prevents types nothing in a browser;
	// chromedp.KeyEvent would send the character apart, so send the key alone.
	writer.do("press n", pressKey("n", "KeyN", 78))
	writer.waitFor("the Note tab is open and focused", visible("#note-text")+` && document.activeElement === document.getElementById('note-text')`)
	if eval[bool](writer, visible("#composer-text")) || eval[bool](writer, visible(`[data-testid="composer-usage"]`)) {
		t.Error("the Note tab shows the reply form or the session's usage line")
	}
	if v := eval[string](writer, `document.getElementById('note-text').value`); v != "" {
		t.Errorf("pressing n typed into the note: %q", v)
	}

	remaining := eval[string](writer, `document.getElementById('composer-actions').getAttribute('data-remaining')`)
	const note = "Refund approved by @local, tell her <tomorrow>"
	writer.do("type the note and press Ctrl+Enter",
		chromedp.SendKeys(chromedp.CSS(`#note-text`), note),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
	)
	noteJS := `document.querySelector('#thread-messages [data-testid="note"]')`
	took := colleague.waitFor("the note shows on the colleague's page", noteJS+` && `+noteJS+`.querySelector('[data-testid="note-text"]').textContent === `+js(note))
	if took > live {
		t.Errorf("the note showed after %v, want within %v", took, live)
	}
	colleague.checkNoReload()
	styled := eval[map[string]string](colleague, `(function () {
		var note = `+noteJS+`.querySelector('.bubble');
		var msg = document.querySelector('#thread-messages [data-direction="in"] .bubble');
		return {note: getComputedStyle(note).backgroundColor, msg: getComputedStyle(msg).backgroundColor,
			border: getComputedStyle(note).borderTopStyle, author: `+noteJS+`.querySelector('[data-testid="note-author"]').textContent,
			label: `+noteJS+`.querySelector('.note-label').textContent.trim(),
			mention: (`+noteJS+`.querySelector('[data-testid="note-mention"]') || {}).textContent || ''};
	})()`)
	if styled["note"] == styled["msg"] || styled["border"] != "dashed" || styled["label"] != "Internal note" {
		t.Errorf("the note is not styled apart from messages: %v", styled)
	}
	if styled["author"] != "Local agent" || styled["mention"] != "@local" {
		t.Errorf("the note's author %q and mention %q", styled["author"], styled["mention"])
	}
	writer.waitFor("the writer's page shows it too, and the Note tab is empty again",
		noteJS+` && document.getElementById('note-text').value === '' && `+visible("#note-text"))
	if n := eval[int](writer, `document.querySelectorAll('#thread-messages [data-testid="note"]').length`); n != 1 {
		t.Errorf("the writer's thread shows the note %d times", n)
	}
	// The reply side is untouched: the session still allows its messages.
	if got := eval[string](writer, `document.getElementById('composer-actions').getAttribute('data-remaining')`); got != remaining {
		t.Errorf("messages left in the session went from %s to %s with a note", remaining, got)
	}
	writer.do("press Escape, then r", chromedp.KeyEvent("\x1b"), pressKey("r", "KeyR", 82))
	writer.waitFor("r goes back to the Reply tab", visible("#composer-text")+` && !`+visible("#note-text"))

	// The client's phone got the note's event (its cursor moved past it) and
	// shows nothing of it.
	phone.waitFor("the phone's stream is past the note's event",
		`Number(document.getElementById('live-cursor').getAttribute('data-last-event-id')) >= `+strconv.FormatInt(ta.lastEventID(t), 10))
	if n := eval[int](phone, `document.querySelectorAll('#sandbox-messages [data-testid="sandbox-message-text"]').length`); n != 1 {
		t.Errorf("the phone shows %d messages, want the client's one only", n)
	}
	colleague.screenshot("note.png")
}

// pressKey presses a key as a shortcut: down and up, without the character
// chromedp.KeyEvent sends apart (a browser types nothing when the page
// prevents the key down's default).
func pressKey(key, code string, vk int64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: key, Code: code, WindowsVirtualKeyCode: vk}); err != nil {
				return err
			}
		}
		return nil
	})
}

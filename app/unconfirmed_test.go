package app

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"sessiondesk/channel"
	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/store"
)

// An unconfirmed message over the JSON API: it is listed as unconfirmed, and an
// agent settles it with "It arrived" or "Send again" (the same message row);
// two clicks at once do one thing, and a settled message answers 409.
func TestUnconfirmedResolutionsOverTheAPI(t *testing.T) {
	// No lookup during the test: the message stays unconfirmed until the agent acts.
	ra := startRouteeApp(t, channel.OutboxOptions{Backoff: 100 * time.Millisecond, CheckAfter: time.Hour})
	conv := ra.clientWritesViaRoutee(t, phoneOf(7), "Hello")
	ra.fake.AcceptThen(2, fakeroutee.ServerError, http.StatusInternalServerError)
	status := func(id int64) string { return ra.message(t, id).Status }
	path := func(id int64, action string) string {
		return "/api/v1/conversations/" + strconv.FormatInt(conv, 10) + "/messages/" + strconv.FormatInt(id, 10) + "/" + action
	}

	first := ra.agentSends(t, conv, "first")
	waitFor(t, "the first message to be unconfirmed", func() bool { return status(first) == store.StatusUnconfirmed })
	_, body := ra.do(t, "GET", "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages", "", "")
	var list struct {
		Messages []struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
		} `json:"messages"`
	}
	_ = json.Unmarshal(body, &list)
	if last := list.Messages[len(list.Messages)-1]; last.ID != first || last.Status != "unconfirmed" {
		t.Errorf("the API lists %+v, want message %d unconfirmed", last, first)
	}

	if _, page := ra.do(t, "GET", "/c/"+strconv.FormatInt(conv, 10), "", ""); !bytes.Contains(page, []byte(`data-testid="message-arrived"`)) ||
		!bytes.Contains(page, []byte(`data-testid="message-resend"`)) {
		t.Errorf("the conversation page lacks the two buttons of an unconfirmed message")
	}

	// Two clicks at once on "It arrived": one acts, the other is told.
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() { codes[i], _ = ra.do(t, "POST", path(first, "confirm-arrived"), "", "") })
	}
	wg.Wait()
	if !(codes[0] == 200 && codes[1] == 409 || codes[0] == 409 && codes[1] == 200) {
		t.Errorf("two clicks on It arrived: %v, want one 200 and one 409", codes)
	}
	if s := status(first); s != store.StatusSent || ra.fake.Count(strconv.FormatInt(first, 10)) != 1 {
		t.Errorf("after It arrived: %s, Routee got it %d times", s, ra.fake.Count(strconv.FormatInt(first, 10)))
	}
	if code, body := ra.do(t, "POST", path(first, "resend"), "", ""); code != http.StatusConflict || !json.Valid(body) {
		t.Errorf("Send again on a settled message: %d %s, want 409", code, body)
	}

	second := ra.agentSends(t, conv, "second")
	waitFor(t, "the second message to be unconfirmed", func() bool { return status(second) == store.StatusUnconfirmed })
	code, body := ra.do(t, "POST", path(second, "resend"), "", "")
	if code != http.StatusOK {
		t.Fatalf("Send again: %d %s", code, body)
	}
	waitFor(t, "the same message to go out again", func() bool {
		return status(second) == store.StatusSent && ra.fake.Count(strconv.FormatInt(second, 10)) == 2
	})
	if code, _ := ra.do(t, "POST", path(second, "confirm-arrived"), "", ""); code != http.StatusConflict {
		t.Errorf("It arrived on a sent message: %d, want 409", code)
	}
	other := "/api/v1/conversations/" + strconv.FormatInt(conv+1000, 10) + "/messages/" + strconv.FormatInt(second, 10) + "/resend"
	if code, _ := ra.do(t, "POST", other, "", ""); code != http.StatusNotFound {
		t.Errorf("another conversation's path: %d, want 404", code)
	}
}

// The page's own buttons: each form posts where the page says, as htmx does
// (204) and as a plain form does (303 back to the conversation), and a second
// click on a settled message is refused (409).
func TestUnconfirmedButtonsOnThePage(t *testing.T) {
	ra := startRouteeApp(t, channel.OutboxOptions{Backoff: 100 * time.Millisecond, CheckAfter: time.Hour})
	conv := ra.clientWritesViaRoutee(t, phoneOf(8), "Hello")
	convPath := "/c/" + strconv.FormatInt(conv, 10)
	ra.fake.AcceptThen(2, fakeroutee.ServerError, http.StatusInternalServerError)
	status := func(id int64) string { return ra.message(t, id).Status }
	// form is the action of the button testid under message id, as the page shows it.
	form := func(id int64, testid string) string {
		_, page := ra.do(t, "GET", convPath, "", "")
		doc, err := goquery.NewDocumentFromReader(bytes.NewReader(page))
		if err != nil {
			t.Fatal(err)
		}
		f := doc.Find("#msg-" + strconv.FormatInt(id, 10) + ` [data-testid="` + testid + `"]`).Closest("form")
		action, hx := f.AttrOr("action", ""), f.AttrOr("hx-post", "")
		if action == "" || action != hx {
			t.Fatalf("message %d's %s button posts to %q (htmx %q)", id, testid, action, hx)
		}
		return action
	}

	// One client's messages go out in order: the second waits behind the first.
	arrived := ra.agentSends(t, conv, "did it arrive?")
	waitFor(t, "the first message to be unconfirmed", func() bool { return status(arrived) == store.StatusUnconfirmed })

	// "It arrived" as a plain form: 303 back to the conversation, marked sent, not sent again.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	action := form(arrived, "message-arrived")
	res, err := noRedirect.Post(ra.base+action, "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != convPath {
		t.Errorf("It arrived (form): %d to %q, want 303 to %s", res.StatusCode, res.Header.Get("Location"), convPath)
	}
	if s := status(arrived); s != store.StatusSent || ra.fake.Count(strconv.FormatInt(arrived, 10)) != 1 {
		t.Errorf("after It arrived: %s, Routee got it %d times", s, ra.fake.Count(strconv.FormatInt(arrived, 10)))
	}
	if code, _ := ra.do(t, "POST", action, "", "", "HX-Request", "true"); code != http.StatusConflict {
		t.Errorf("a second click on It arrived: %d, want 409", code)
	}

	// "Send again" as htmx posts it: 204, and the same message goes out once more.
	resent := ra.agentSends(t, conv, "and this one?")
	waitFor(t, "the second message to be unconfirmed", func() bool { return status(resent) == store.StatusUnconfirmed })
	if code, body := ra.do(t, "POST", form(resent, "message-resend"), "", "", "HX-Request", "true"); code != http.StatusNoContent {
		t.Fatalf("Send again (htmx): %d %s, want 204", code, body)
	}
	waitFor(t, "the same message to go out again", func() bool {
		return status(resent) == store.StatusSent && ra.fake.Count(strconv.FormatInt(resent, 10)) == 2
	})
	if _, page := ra.do(t, "GET", convPath, "", ""); bytes.Contains(page, []byte(`data-testid="message-resend"`)) ||
		bytes.Contains(page, []byte(`data-testid="message-arrived"`)) {
		t.Error("the page still offers the buttons of settled messages")
	}
}

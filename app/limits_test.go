package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sessiondesk/handlers"
	"sessiondesk/store"
)

// manyFields generates a multipart body of n fields of size bytes each
// without holding it, and counts how much of it the HTTP client took.
type manyFields struct {
	n, size  int
	boundary string
	buf      bytes.Buffer
	i        int
	taken    int64
	mu       sync.Mutex
}

func (m *manyFields) Read(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.buf.Len() < len(p) && m.i <= m.n {
		if m.i == m.n {
			fmt.Fprintf(&m.buf, "--%s--\r\n", m.boundary)
		} else {
			fmt.Fprintf(&m.buf, "--%s\r\nContent-Disposition: form-data; name=\"field%d\"\r\n\r\n%s\r\n",
				m.boundary, m.i, strings.Repeat("v", m.size))
		}
		m.i++
	}
	n, err := m.buf.Read(p)
	m.taken += int64(n)
	return n, err
}

func (m *manyFields) Taken() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.taken
}

// A send of 10,000 fields (80 MB) is refused after the server read a small
// part of it: today's main read every field into memory (21 MB to 665 MB for
// 7,600 fields).
func TestManyFieldsRefusedWithoutReadingThem(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	body := &manyFields{n: 10_000, size: 8 << 10, boundary: "b0undary"}
	req, _ := http.NewRequest("POST", ta.base+"/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages", body)
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+body.boundary)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var e apiError
	_ = json.Unmarshal(b, &e)
	if res.StatusCode != http.StatusBadRequest || e.Code != "unknown_field" || !strings.Contains(e.Message, `"field0"`) {
		t.Fatalf("%d %s, want 400 unknown_field naming field0", res.StatusCode, b)
	}
	// The client's count includes what the sockets buffer (a few MB on
	// loopback); the server itself stopped after its first field.
	const total = 10_000 * (8<<10 + 60)
	taken := body.Taken()
	if taken > total/4 {
		t.Errorf("the client sent %d of %d bytes before the refusal; want far less", taken, total)
	}
	t.Logf("the client sent %d of %d bytes", taken, total)
	if ta.messageCount(t) != 1 {
		t.Errorf("the refused send stored messages")
	}
}

// A form body over the limit is a clear 413, not a silently empty form.
func TestFormBodyOverLimitRefused(t *testing.T) {
	ta := startApp(t)
	conv := ta.clientWrites(t, "+375298603938", "Hello")
	status, body := ta.do(t, "POST", "/c/"+strconv.FormatInt(conv, 10)+"/messages", "application/x-www-form-urlencoded",
		"text="+strings.Repeat("a", 3_000_000))
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "over 2000000 bytes") {
		t.Fatalf("%d %.300s, want 413 naming the limit", status, body)
	}
	if ta.messageCount(t) != 1 {
		t.Errorf("the refused form stored messages")
	}
}

// An upload sent a byte at a time is cut off once it falls behind the pace
// (here made short: 300 ms, then 1 KB/s) with a 408, before it is complete.
func TestSlowUploadCutOff(t *testing.T) {
	ta := startAppWith(t, Options{Bodies: handlers.BodyLimits{Grace: 300 * time.Millisecond, MinRate: 1000, Idle: 10 * time.Second}})
	conv := ta.clientWrites(t, "+375298603938", "Hello")

	conn, err := net.Dial("tcp", ta.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const slowBytes = 200 // 20 s at a byte every 100 ms: the server must stop it long before
	head := "--b0undary\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n"
	fmt.Fprintf(conn, "POST /api/v1/conversations/%d/messages HTTP/1.1\r\nHost: %s\r\n"+
		"Content-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: %d\r\n\r\n%s",
		conv, ta.Addr(), len(head)+slowBytes, head)

	type answer struct {
		res  *http.Response
		body []byte
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		answered <- answer{res: res, body: b}
	}()
	sent := 0
	var got answer
wait:
	for {
		select {
		case got = <-answered:
			break wait
		case <-time.After(100 * time.Millisecond):
			if sent < slowBytes {
				if _, err := conn.Write([]byte("x")); err == nil {
					sent++
				}
			}
		}
	}
	if got.err != nil {
		t.Fatalf("no answer: %v", got.err)
	}
	var e apiError
	_ = json.Unmarshal(got.body, &e)
	if got.res.StatusCode != http.StatusRequestTimeout || e.Code != "timeout" {
		t.Fatalf("%d %s, want 408 timeout", got.res.StatusCode, got.body)
	}
	if sent >= slowBytes {
		t.Errorf("the whole slow body was read (%d bytes) before the answer", sent)
	}
	t.Logf("cut off after %d slow bytes", sent)
}

// A refused send and an accepted send of identical bytes, at the same time:
// the refusal deletes nothing, and after the sweep the accepted message's
// bytes are still there. Today's main deleted the blob on refusal when no row
// referred to it yet, under the accepted send's feet.
func TestRefusedUploadNeverRemovesBytesOfAcceptedOne(t *testing.T) {
	ta := startApp(t)
	var path string
	type sent struct {
		id      int64
		content string
	}
	var accepted []sent
	for i := range 12 {
		if i%4 == 0 { // a new client: the unanswered limit is 5
			conv := ta.clientWrites(t, fmt.Sprintf("+3752986039%02d", i), "Send me the invoice")
			path = "/api/v1/conversations/" + strconv.FormatInt(conv, 10) + "/messages"
		}
		content := minimalPDF + fmt.Sprintf("%% copy %d\n", i)
		var wg sync.WaitGroup
		var status int
		var body []byte
		wg.Go(func() {
			status, _, body = ta.upload(t, path, part{"type", "", strings.NewReader("file")},
				part{"file", "invoice.pdf", strings.NewReader(content)})
		})
		for range 3 { // refused by its type, after its bytes were stored
			wg.Go(func() {
				if st, e, _ := ta.upload(t, path, part{"type", "", strings.NewReader("video")},
					part{"file", "invoice.pdf", strings.NewReader(content)}); st != 422 || e.Code != "invalid_type" {
					t.Errorf("refused send: %d %+v", st, e)
				}
			})
		}
		wg.Wait()
		if status != http.StatusCreated {
			t.Fatalf("accepted send %d: %d %s", i, status, body)
		}
		var out struct {
			Message struct {
				ID int64 `json:"id"`
			} `json:"message"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		var m store.Message
		if err := ta.Store.Read(context.Background(), func(r *store.Reader) (err error) {
			m, err = r.Message(context.Background(), out.Message.ID)
			return err
		}); err != nil || m.Attachment == nil {
			t.Fatalf("message %d: %+v, %v", out.Message.ID, m, err)
		}
		accepted = append(accepted, sent{m.Attachment.ID, content})
	}
	// An orphan older than the grace period goes; nothing referred to goes.
	orphan, err := ta.media.Put(strings.NewReader("an abandoned upload"), 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	ta.sweepNow(t)
	if _, err := ta.media.Path(orphan.Hash); err == nil {
		t.Error("the sweep left an orphan")
	}
	for _, a := range accepted {
		status, b := ta.do(t, "GET", "/attachments/"+strconv.FormatInt(a.id, 10), "", "")
		if status != http.StatusOK || string(b) != a.content {
			t.Errorf("attachment %d: %d, %d bytes; want its %d bytes", a.id, status, len(b), len(a.content))
		}
	}
}

// A request whose handler answers without reading its body (a wrong webhook
// secret, no route, marking a conversation read) is bounded in time
// like any other: a client announcing 100 bytes and sending none gets its
// answer, and the server closes the connection within the body's deadline
// (here Grace and Idle 1 s) instead of waiting for those bytes for ever.
func TestUnreadBodyBoundedInTime(t *testing.T) {
	ta := startAppWith(t, Options{Bodies: handlers.BodyLimits{Grace: time.Second, MinRate: 1000, Idle: time.Second}})
	conv := ta.clientWrites(t, "+375298603938", "Hello")

	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/webhooks/routee/not-the-secret-at-all/inbound", http.StatusNotFound}, // anyone the proxy lets through
		{"/healthz", http.StatusNotFound},                                       // no route for a POST
		{"/c/" + strconv.FormatInt(conv, 10) + "/read", http.StatusSeeOther},
	} {
		t.Run(tc.path, func(t *testing.T) {
			conn, err := net.Dial("tcp", ta.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nSec-Fetch-Site: same-origin\r\n"+
				"Content-Length: 100\r\n\r\n", tc.path, ta.Addr())
			br := bufio.NewReader(conn)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer within 5 s to a body that never came: %v", err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status || !res.Close {
				t.Errorf("%d (closing the connection: %v), want %d closing it", res.StatusCode, res.Close, tc.status)
			}
			// EOF from the server, not this test's own deadline.
			if _, err := io.Copy(io.Discard, br); err != nil {
				t.Errorf("the connection is still open 5 s after the request (Grace and Idle 1 s): %v", err)
			}
		})
	}
}

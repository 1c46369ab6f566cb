package app

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"sessiondesk/channel/routee/fakeroutee"
	"sessiondesk/store"
)

// Issue 9, point 12: a client's media URL, which the webhook hands over,
// never makes the inbox fetch from this machine or its network. In the
// sandbox the inbox's own admin export was one such URL; a server on
// 127.0.0.1 is another. Both downloads fail for good at once, with the reason
// on the message, and nothing is fetched.
func TestClientMediaNeverReachesPrivateAddresses(t *testing.T) {
	ta := startApp(t)
	var hits atomic.Int32
	inside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("login,action\nlocal,exported\n"))
	}))
	defer inside.Close()
	port := inside.Listener.Addr().(*net.TCPAddr).Port
	urls := []string{
		ta.base + "/admin/audit.csv",                              // the inbox itself, outside the sandbox's media path
		inside.URL + "/secret.csv",                                // plain http on loopback
		"https://localhost:" + strconv.Itoa(port) + "/secret.csv", // a name that resolves to loopback
	}
	fake := fakeroutee.New(fakeroutee.Options{AppID: "x", AppSecret: "y"})
	hooks := ta.base + "/webhooks/routee/" + ta.webhookSecret + "/inbound"
	for i, u := range urls {
		in := fakeroutee.Inbound{From: phoneOf(20 + i), Text: "see attached", MediaURL: u, FileName: "report.csv"}
		if err := fake.SendInbound(context.Background(), hooks, in); err != nil {
			t.Fatal(err)
		}
	}
	var failed []store.Attachment
	waitFor(t, "every download to fail for good", func() bool {
		failed = nil
		_ = ta.Store.Read(context.Background(), func(r *store.Reader) error {
			for i := range urls {
				c, err := r.ConversationByPhone(context.Background(), phoneOf(20+i))
				if err != nil {
					return err
				}
				msgs, _ := r.Messages(context.Background(), c.ID, 10)
				for _, m := range msgs {
					if m.Attachment != nil && m.Attachment.DownloadState == store.DownloadFailed {
						failed = append(failed, *m.Attachment)
					}
				}
			}
			return nil
		})
		return len(failed) == len(urls)
	})
	for _, a := range failed {
		if a.Attempts != 1 || a.Hash != "" {
			t.Errorf("attachment %d: %d attempts, hash %q: want refused once, nothing kept", a.ID, a.Attempts, a.Hash)
		}
		if !strings.Contains(a.DownloadError, "refused") {
			t.Errorf("attachment %d: the reason %q does not say it was refused", a.ID, a.DownloadError)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback server was fetched %d times", n)
	}
	if n := ta.blobs(t); n != 0 {
		t.Errorf("%d blobs stored", n)
	}
}

package views

import (
	"bytes"
	"context"
	"testing"
)

// BenchmarkConversationList renders a list page of 50 rows, the part every
// inbox and conversation page draws and the live hub renders per change.
func BenchmarkConversationList(b *testing.B) {
	now := at("14:00")
	demo := demoRows(now)
	page := InboxPage{Chrome: demoChrome()}
	for i := range 50 {
		r := demo[i%len(demo)]
		r.ID = int64(1000 + i)
		r.Selected = i == 0
		r.Status, r.Assignee, r.AssigneeID = "open", "Dana Ivanova", 7
		if i%7 == 0 {
			r.Status = "pending"
			r.Flags = []ContactFlag{{Flag: "blocked", Text: "blocked the business"}}
		}
		page.Rows = append(page.Rows, r)
	}
	var buf bytes.Buffer
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := ConversationList(page.Chrome, page).Render(ctx, &buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "bytes/page")
}

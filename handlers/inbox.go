package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"sessiondesk/media"
	"sessiondesk/media/upload"
	"sessiondesk/session"
	"sessiondesk/store"
	"sessiondesk/views"
)

// listLimit is how many conversations a page of the list shows; "Load more"
// (or the API's cursor) reaches the rest.
const listLimit = 50

// threadLimit is how many messages of a conversation a page shows.
const threadLimit = 300

// pathID reads a positive id from the path parameter name; a malformed one is
// a 404, like an unknown one.
func pathID(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, store.ErrNotFound
	}
	return id, nil
}

// conversationID reads the :id path parameter.
func conversationID(c echo.Context) (int64, error) { return pathID(c, "id") }

// inbox renders the three panes, with the conversation of :id open when given.
func (s *Server) inbox(c echo.Context) error {
	ctx := c.Request().Context()
	var selected int64
	if c.Param("id") != "" {
		id, err := conversationID(c)
		if err != nil {
			return err
		}
		// Opening a conversation does not mark it read: a GET changes nothing
		// (prefetchers, link previews). The page posts to /c/{id}/read once shown.
		selected = id
	}
	before, err := listCursorParam(c.QueryParam("before"), "before")
	if err != nil {
		return err
	}
	agent := currentAgent(c).ID
	q, err := s.listQuery(c, agent)
	if err != nil {
		return err
	}
	page := views.InboxPage{Chrome: s.chrome(c, "Inbox"), ListBefore: c.QueryParam("before"), List: s.listScope(q)}
	if c.QueryParam("pane") == "contact" { // a phone shows the panel instead of the thread
		page.Pane = "contact"
	}
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		var err error
		if page.LastEventID, err = r.LastEventID(ctx); err != nil {
			return err
		}
		if page.MaxMessageID, err = r.MaxMessageID(ctx); err != nil {
			return err
		}
		if page.Rows, page.ListMore, err = s.listPage(ctx, r, q, before, selected); err != nil {
			return err
		}
		counts, err := r.ViewCounts(ctx, q.Status, q.ExpiringWithin)
		if err != nil {
			return err
		}
		page.Nav = s.viewNav(counts, q)
		if page.Unread, err = r.UnreadInViews(ctx, agent); err != nil {
			return err
		}
		if page.Mentions, err = unseenMentions(ctx, r, currentAgent(c).ID); err != nil {
			return err
		}
		if err := withPrefs(ctx, r, &page.Chrome, agent, c.Request().URL.Path); err != nil {
			return err
		}
		if selected != 0 {
			cv, err := s.conversationView(ctx, r, selected)
			if err != nil {
				return err
			}
			if cv.Actions, err = s.threadActions(ctx, r, cv.ID, cv.Header.AssigneeLogin, currentAgent(c)); err != nil {
				return err
			}
			// A search result's link to an older message: reach back to it.
			if err := s.reachBack(ctx, r, &cv, c.QueryParam("around")); err != nil {
				return err
			}
			page.Selected = &cv
			page.Title = cv.Name
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, views.Inbox(page))
}

// markRead is the page's "I have shown this conversation": it marks every
// message read. The list's badge goes over the websocket like any change.
func (s *Server) markRead(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	if err := s.Store.MarkRead(c.Request().Context(), currentAgent(c).ID, id); err != nil {
		return err
	}
	if c.Request().Header.Get("HX-Request") == "true" {
		return c.NoContent(http.StatusNoContent)
	}
	return c.Redirect(http.StatusSeeOther, s.path("/c/"+strconv.FormatInt(id, 10)))
}

// listFragment answers "Load more": the next rows of the list and the link after them.
func (s *Server) listFragment(c echo.Context) error {
	ctx := c.Request().Context()
	before, err := listCursorParam(c.QueryParam("before"), "before")
	if err != nil {
		return err
	}
	selected, _ := strconv.ParseInt(c.QueryParam("conversation"), 10, 64)
	q, err := s.listQuery(c, currentAgent(c).ID)
	if err != nil {
		return err
	}
	var (
		rows []views.ConversationRow
		more views.ListLink
	)
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		rows, more, err = s.listPage(ctx, r, q, before, max(selected, 0))
		return err
	})
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, views.ListPage(s.chrome(c, ""), rows, more))
}

// listCursorParam reads a list cursor from a query parameter; "" is the top.
func listCursorParam(v, name string) (*store.ListCursor, error) {
	if v == "" {
		return nil, nil
	}
	cur, err := store.ParseListCursor(v)
	if err != nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest, name+": "+err.Error()+"; start from the top without it")
	}
	return &cur, nil
}

// listPage reads one page of q's view after before (nil: the top) and the
// link to the next; the selected conversation's row is marked, and every row
// carries the agent's read mark.
func (s *Server) listPage(ctx context.Context, r *store.Reader, q store.ListQuery, before *store.ListCursor, selected int64) ([]views.ConversationRow, views.ListLink, error) {
	convs, next, err := r.ListView(ctx, q, before, listLimit)
	if err != nil {
		return nil, views.ListLink{}, err
	}
	now := r.Now()
	rows := make([]views.ConversationRow, 0, len(convs))
	for _, lr := range convs {
		row := s.rowView(lr, now)
		row.Selected = lr.ID == selected
		row.ReadMark = lr.ReadMark
		if row.LastInID > row.ReadMark {
			row.Unread = 1
		}
		rows = append(rows, row)
	}
	var more views.ListLink
	if next != nil {
		more.Cursor = next.String()
		v := viewQuery(q)
		v.Set("before", more.Cursor)
		qs := "?" + v.Encode()
		more.Href = s.path("/" + qs)
		if selected != 0 {
			more.Href = s.path("/c/" + strconv.FormatInt(selected, 10) + qs)
		}
		more.HX = s.path("/list" + qs)
	}
	return rows, more, nil
}

// rowView is a conversation's list row as every page shows it.
func (s *Server) rowView(lr store.ListRow, now time.Time) views.ConversationRow {
	cv := lr.Conversation
	st := session.WindowAt(cv.State, s.Store.Rules(), now)
	row := views.ConversationRow{
		ID:         cv.ID,
		Name:       cv.Contact.Name,
		Phone:      cv.Contact.PhoneDisplay,
		ActivityMS: lr.LastActivityAt.UnixMilli(),
		Status:     cv.Status,
		LastInID:   cv.LastInID,
		ReadMark:   -1, // shared by every page: each page keeps its agent's mark
		Unanswered: cv.State.Unanswered,
		Badge: views.SessionBadge{
			Open:    st.Open,
			EndsAt:  st.EndsAt,
			Locked:  st.Open && st.UnansweredLeft == 0,
			Never:   st.Number == 0,
			NowUnix: now.UnixMilli(),
		},
	}
	if !cv.SessionEndsAt.IsZero() {
		row.EndsMS = cv.SessionEndsAt.UnixMilli()
	}
	if cv.Assignee != nil {
		row.Assignee = cv.Assignee.Name
		row.AssigneeID = cv.Assignee.ID
	}
	for _, f := range cv.Contact.Flags {
		row.Flags = append(row.Flags, views.ContactFlag{Flag: f, Text: store.FlagText(f)})
	}
	if cv.Last != nil {
		row.Preview = preview(*cv.Last)
		row.LastAt = cv.Last.CreatedAt.In(time.Local)
	}
	return row
}

// previewRunes bounds a row's preview. The list shows one line, and a
// client's message may run to thousands of characters, which every page and
// every live frame listing its conversation would carry.
const previewRunes = 200

// preview is the list's one-line summary of a message.
func preview(m store.Message) string {
	text := oneLine(m.Body, previewRunes)
	if text == "" && m.Kind != session.Text {
		text = "[" + string(m.Kind) + "]"
	}
	if m.Direction == store.Outbound {
		text = "You: " + text
	}
	return text
}

// oneLine is s with its runs of white space made single spaces and trimmed,
// cut after limit characters with an ellipsis. A text that is one line already
// comes back as it is, without a copy: most are, and every row draws one.
func oneLine(s string, limit int) string {
	if isOneLine(s, limit) {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), 4*limit+len("…")))
	n, space := 0, false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = n > 0
			continue
		}
		need := 1
		if space {
			need = 2
		}
		if n+need > limit {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
		n += need
	}
	return b.String()
}

// isOneLine reports whether oneLine would leave s as it is: at most limit
// characters, no white space but single spaces between words.
func isOneLine(s string, limit int) bool {
	n, prevSpace := 0, true // a leading space is one to collapse
	for _, r := range s {
		if n++; n > limit {
			return false
		}
		if r == ' ' {
			if prevSpace {
				return false
			}
			prevSpace = true
			continue
		}
		if unicode.IsSpace(r) {
			return false
		}
		prevSpace = false
	}
	return !prevSpace || s == ""
}

// conversationView reads everything the thread, panel and composer show.
func (s *Server) conversationView(ctx context.Context, r *store.Reader, id int64) (views.ConversationView, error) {
	cv, err := r.Conversation(ctx, id)
	if err != nil {
		return views.ConversationView{}, err
	}
	msgs, err := r.Messages(ctx, id, threadLimit)
	if err != nil {
		return views.ConversationView{}, err
	}
	panel, err := s.panel(ctx, r, cv)
	if err != nil {
		return views.ConversationView{}, err
	}
	notes, err := s.threadNotes(ctx, r, id, msgs)
	if err != nil {
		return views.ConversationView{}, err
	}
	v := views.ConversationView{
		ID:       id,
		Name:     cv.Contact.Name,
		Phone:    cv.Contact.PhoneDisplay,
		Header:   threadStatus(cv),
		Messages: make([]views.Message, 0, len(msgs)),
		Panel:    panel,
		Composer: s.composer(cv, r.Now()),
		Notes:    notes,
		Note:     views.NoteComposer{ConversationID: id, MaxLen: store.MaxNoteLen},
	}
	for _, m := range msgs {
		v.Messages = append(v.Messages, s.messageView(m))
	}
	if v.Paid, err = s.paidComposer(ctx, r, cv, r.Now()); err != nil {
		return views.ConversationView{}, err
	}
	return v, nil
}

// historyLimit is how many past sessions the panel and the API list.
const historyLimit = 50

// panel reads what the session panel shows: the current session and the
// ones before it, and the contact's details.
func (s *Server) panel(ctx context.Context, r *store.Reader, cv store.Conversation) (views.Panel, error) {
	sessions, err := r.Sessions(ctx, cv.ID, historyLimit+1)
	if err != nil {
		return views.Panel{}, err
	}
	if cv.Contact, err = r.Contact(ctx, cv.Contact.ID); err != nil {
		return views.Panel{}, err
	}
	p := s.panelView(cv, sessions, r.Now())
	p.Paid, err = s.paidPanel(ctx, r, cv.ID)
	return p, err
}

// panelView is the session panel of cv, whose sessions (latest first, the
// current one included) are given.
func (s *Server) panelView(cv store.Conversation, sessions []session.Session, now time.Time) views.Panel {
	rules, rates := s.Store.Rules(), s.Store.Rates()
	st := session.StatusAt(cv.State, rules, now)
	st.StartedAt, st.EndsAt = st.StartedAt.In(time.Local), st.EndsAt.In(time.Local)
	p := views.Panel{
		ConversationID: cv.ID,
		Status:         st,
		MaxPerSession:  rules.MaxPerSession,
		MaxUnanswered:  rules.MaxUnanswered,
		NowUnix:        now.UnixMilli(),
		Currency:       rates.Currency,
		Contact:        s.contactView(cv.ID, cv.Contact),
	}
	if cur := cv.State.Current; cur != nil {
		p.Cost, p.Currency = cur.Cost(), sessionCurrency(*cur, rates)
		p.EndedUnanswered = cur.Unanswered(now)
		p.Reported = reportedCost(*cur, rates)
	}
	for _, ps := range sessions[min(1, len(sessions)):] { // the first is the current one
		p.History = append(p.History, views.PastSession{
			Number: ps.Number, StartedAt: ps.StartedAt.In(time.Local), EndsAt: ps.EndsAt.In(time.Local),
			Used: ps.Used, Media: ps.Media, Cost: ps.Cost(), Currency: sessionCurrency(ps, rates),
			Unanswered: ps.Unanswered(now), Reported: reportedCost(ps, rates),
		})
	}
	return p
}

// reportedCost is what the provider reported ss cost, beside its estimate.
func reportedCost(ss session.Session, today session.Rates) *views.ReportedCost {
	d, differs := ss.CostDifference()
	return &views.ReportedCost{Amount: ss.Reported.Amount, Currency: sessionCurrency(ss, today),
		Priced: ss.Reported.Priced, Used: ss.Used, Foreign: ss.Reported.Foreign, Diff: d, Differs: differs,
		PerMessage: ss.Rates.PerMessage > 0}
}

// sessionCurrency is the currency a session was billed in, or today's while
// it was never billed.
func sessionCurrency(ss session.Session, today session.Rates) string {
	if ss.Rates.Currency != "" {
		return ss.Rates.Currency
	}
	return today.Currency
}

func (s *Server) composer(cv store.Conversation, now time.Time) views.Composer {
	rules := s.Store.Rules()
	st := session.StatusAt(cv.State, rules, now)
	st.StartedAt, st.EndsAt = st.StartedAt.In(time.Local), st.EndsAt.In(time.Local)
	comp := views.Composer{
		ConversationID: cv.ID,
		Status:         st,
		MaxUnanswered:  rules.MaxUnanswered,
		MaxTextLen:     rules.MaxTextLen,
		ContactName:    cv.Contact.Name,
		Limits: views.AttachLimits{
			ImageMax: s.Limits.ImageMax, FileMax: s.Limits.FileMax,
			ImageWarn: s.Limits.ImageWarn, FileWarn: s.Limits.FileWarn,
			ImageTypes: imageTypes(), FileTypes: media.Extensions(), NameMax: media.MaxNameLen,
		},
	}
	for _, cr := range s.Store.Settings().CannedReplies {
		comp.Canned = append(comp.Canned, views.Canned{Title: cr.Title, Text: cr.Text})
	}
	return comp
}

func (s *Server) messageView(m store.Message) views.Message {
	v := views.Message{
		ID:         m.ID,
		Out:        m.Direction == store.Outbound,
		Kind:       string(m.Kind),
		Text:       m.Body,
		At:         m.CreatedAt.In(time.Local), // the fallback's zone; the page shows the browser's
		Status:     outStatus(m),
		Reason:     m.StatusReason,
		AgentName:  m.AgentName,
		SessionNum: m.SessionNumber,
		NewSession: m.FirstOfSession,
		Paid:       paidBadge(m.Paid),
		ReplyTo:    m.ReplyTo,
	}
	if m.Direction == store.Outbound && m.Status == store.StatusQueued && m.Attempts > 0 {
		tries := "tries"
		if m.Attempts == 1 {
			tries = "try"
		}
		v.Retrying = fmt.Sprintf("Not sent yet: %d %s failed (%s); trying again.", m.Attempts, tries, m.LastError)
	}
	if a := m.Attachment; a != nil {
		v.Attachment = s.attachmentView(m.Kind, *a)
	}
	if store.Retryable(m) {
		v.RetryURL = s.path(fmt.Sprintf("/c/%d/messages/%d/retry", m.ConversationID, m.ID))
	}
	v.ArrivedURL, v.ResendURL = s.unconfirmedURLs(m)
	return v
}

// outStatus is "" for the client's messages, which have no delivery ticks.
func outStatus(m store.Message) string {
	if m.Direction == store.Inbound {
		return ""
	}
	return m.Status
}

// imageTypes are the extensions the composer's attachments go as images: the
// ones isImageName knows.
func imageTypes() []string { return []string{"jpg", "jpeg", "png"} }

// readComposer reads a conversation's composer state now.
func (s *Server) readComposer(ctx context.Context, convID int64) (views.Composer, error) {
	var comp views.Composer
	err := s.Store.Read(ctx, func(r *store.Reader) error {
		cv, err := r.Conversation(ctx, convID)
		comp = s.composer(cv, r.Now())
		return err
	})
	return comp, err
}

// sendForm is the composer's post. With htmx it answers with a fresh composer
// (the sent message itself arrives over the websocket like everyone else's);
// without JS it redirects back to the conversation.
func (s *Server) sendForm(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var (
		text    string
		sendErr error
	)
	if isMultipart(c) { // the composer with attachments
		_, _, text, sendErr = s.sendUpload(c, id)
	} else {
		// Browsers submit line breaks as CRLF; the limit counts what the client sees.
		text = strings.ReplaceAll(c.FormValue("text"), "\r\n", "\n")
		_, sendErr = s.Store.AcceptBusinessMessages(ctx, store.BusinessSend{
			ConversationID:    id,
			AgentID:           currentAgent(c).ID,
			Parts:             []session.Part{{Kind: session.Text, Text: text}},
			ConfirmNewSession: c.FormValue("confirm_new_session") == "1",
		})
	}
	// A file over the cap is a refusal the agent can act on, like the rules'.
	var upErr *upload.Error
	if errors.As(sendErr, &upErr) && upErr.Code == string(session.FileRejected) {
		sendErr = session.Refuse(session.FileRejected, upErr.Message)
	}
	var refusal *session.Refusal
	if sendErr != nil && !errors.As(sendErr, &refusal) {
		return sendErr
	}
	if sendErr == nil {
		s.checkBudget(ctx) // a send may bill a session
	}
	if c.Request().Header.Get("HX-Request") != "true" {
		if refusal != nil {
			return sendErr // rendered as an error page with the reason
		}
		return c.Redirect(http.StatusSeeOther, s.path("/c/"+strconv.FormatInt(id, 10)))
	}
	comp, err := s.readComposer(ctx, id)
	if err != nil {
		return err
	}
	if refusal != nil {
		// The refusal is part of the composer, with the draft kept. htmx swaps only
		// 2xx answers by default, so this is a 200; the API answers 409/422.
		comp.Text, comp.Error = text, refusal
	}
	return s.render(c, http.StatusOK, views.ComposerForm(s.chrome(c, ""), comp))
}

// conversationState answers the panel's refresh (when its countdown reaches
// zero) with the panel and the composer's actions, decided on the server clock.
func (s *Server) conversationState(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var comps []templ.Component
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		cv, err := r.Conversation(ctx, id)
		if err != nil {
			return err
		}
		chrome := s.chrome(c, "")
		panel, err := s.panel(ctx, r, cv)
		if err != nil {
			return err
		}
		comps = append(comps,
			views.SessionPanel(chrome, panel, true),
			views.SessionStrip(chrome, panel, true),
			views.ComposerActions(chrome, s.composer(cv, r.Now()), true))
		return nil
	})
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, comps...)
}

// messagePath reads the :id (conversation) and :mid (message) path parameters.
func messagePath(c echo.Context) (convID, msgID int64, err error) {
	if convID, err = conversationID(c); err != nil {
		return 0, 0, err
	}
	if msgID, err = pathID(c, "mid"); err != nil {
		return 0, 0, err
	}
	return convID, msgID, nil
}

// retryForm is "Send again" on a failed message. The new message arrives over
// the websocket; a refusal comes back as the composer with its reason.
func (s *Server) retryForm(c echo.Context) error {
	convID, id, err := messagePath(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	_, err = s.retry(c, convID, id, c.FormValue("confirm_new_session") == "1")
	var refusal *session.Refusal
	if err != nil && !errors.As(err, &refusal) {
		return err
	}
	if c.Request().Header.Get("HX-Request") != "true" {
		if refusal != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, s.path(fmt.Sprintf("/c/%d", convID)))
	}
	if refusal == nil {
		return c.NoContent(http.StatusNoContent)
	}
	comp, err := s.readComposer(ctx, convID)
	if err != nil {
		return err
	}
	comp.Error, comp.OOB = refusal, true
	return s.render(c, http.StatusOK, views.ComposerForm(s.chrome(c, ""), comp))
}

// retry sends a failed message of the conversation again.
func (s *Server) retry(c echo.Context, convID, id int64, confirm bool) (store.Message, error) {
	ctx := c.Request().Context()
	err := s.Store.Read(ctx, func(r *store.Reader) error {
		m, err := r.Message(ctx, id)
		if err == nil && m.ConversationID != convID {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return store.Message{}, err
	}
	return s.Store.RetryMessage(ctx, id, currentAgent(c).ID, confirm)
}

// attachmentView is what a bubble shows of an image or file.
func (s *Server) attachmentView(kind session.Kind, a store.Attachment) *views.Attachment {
	base := s.path("/attachments/" + strconv.FormatInt(a.ID, 10))
	v := &views.Attachment{
		URL:    base,
		Name:   a.Name,
		Size:   a.Size,
		Type:   strings.ToUpper(strings.TrimPrefix(path.Ext(a.Name), ".")),
		Width:  a.Width,
		Height: a.Height,
		State:  a.DownloadState,
		Error:  a.DownloadError,
		// Pending client media of kind image is still "an image" to the agent.
		Image: a.ThumbHash != "" || (kind == session.Image && a.Hash == ""),
	}
	if v.State == store.DownloadDone {
		v.State = ""
	}
	if a.ThumbHash != "" {
		v.ThumbURL = base + "/thumb"
	}
	if v.Type == "" {
		v.Type = "FILE"
	}
	return v
}

package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"sessiondesk/channel/sandbox"
	"sessiondesk/media"
	"sessiondesk/media/upload"
	"sessiondesk/phone"
	"sessiondesk/store"
	"sessiondesk/views"
)

// The sandbox phone: a page that plays Viber clients, for trying the inbox
// without a provider, and POST /sandbox/messages for scripts.

// maxClientText bounds what a sandbox client may write; Viber's own limit for
// user messages is far above a session reply's 1000 characters.
const maxClientText = 7000

// sandboxClients is how many clients the phone lists.
const sandboxClients = 100

func sandboxURL(e164, name string) string {
	q := url.Values{}
	q.Set("phone", e164)
	if name != "" {
		q.Set("name", name)
	}
	return "/sandbox?" + q.Encode()
}

// sandboxPage shows the phone, playing the client of ?phone= when given. The
// client need not exist yet: it is stored when it first writes.
func (s *Server) sandboxPage(c echo.Context) error {
	ctx := c.Request().Context()
	page := views.SandboxPage{Chrome: s.chrome(c, "Sandbox phone")}
	var selected *views.SandboxClient
	if raw := c.QueryParam("phone"); raw != "" {
		num, err := phone.Parse(raw)
		if err != nil {
			page.Error = err.Error()
		} else {
			selected = &views.SandboxClient{Phone: num.E164, Name: strings.TrimSpace(c.QueryParam("name")), Selected: true}
			// The phone is online: what was sent to it is now delivered.
			if err := s.deliverToPhone(ctx, num.E164); err != nil {
				return err
			}
		}
	}
	err := s.Store.Read(ctx, func(r *store.Reader) error {
		var err error
		if page.LastEventID, err = r.LastEventID(ctx); err != nil {
			return err
		}
		contacts, err := r.Contacts(ctx, sandboxClients)
		if err != nil {
			return err
		}
		for _, ct := range contacts {
			cl := views.SandboxClient{Name: ct.Name, Phone: ct.Phone}
			if selected != nil && ct.Phone == selected.Phone {
				cl.Selected = true
				if selected.Name == "" {
					selected.Name = ct.Name
				}
			}
			page.Clients = append(page.Clients, cl)
		}
		if selected == nil {
			return nil
		}
		if selected.Name == "" {
			selected.Name = selected.Phone
		}
		page.Selected = selected
		page.NotViber = s.Phone.IsNotViberUser(selected.Phone)
		cv, err := r.ConversationByPhone(ctx, selected.Phone)
		if errors.Is(err, store.ErrNotFound) {
			return nil // a new client: nothing written yet
		}
		if err != nil {
			return err
		}
		msgs, err := r.Messages(ctx, cv.ID, threadLimit)
		for _, m := range msgs {
			page.Messages = append(page.Messages, s.messageView(m))
		}
		return err
	})
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, views.Sandbox(page))
}

// deliverToPhone marks the business messages sent to this number delivered.
func (s *Server) deliverToPhone(ctx context.Context, e164 string) error {
	var sent []store.Message
	err := s.Store.Read(ctx, func(r *store.Reader) error {
		cv, err := r.ConversationByPhone(ctx, e164)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		msgs, err := r.Messages(ctx, cv.ID, threadLimit)
		for _, m := range msgs {
			if m.Direction == store.Outbound && m.Status == store.StatusSent {
				sent = append(sent, m)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	return s.report(ctx, sent, store.StatusDelivered)
}

// report tells the provider what the phone did with these messages.
func (s *Server) report(ctx context.Context, msgs []store.Message, status string) error {
	for _, m := range msgs {
		if s.sandboxNoViber(ctx, m) {
			continue
		}
		if err := s.Phone.Report(ctx, m, status); err != nil {
			return err
		}
	}
	return nil
}

// sandboxClient picks or creates the client the phone plays.
func (s *Server) sandboxClient(c echo.Context) error {
	name := strings.TrimSpace(c.FormValue("name"))
	num, err := phone.Parse(c.FormValue("phone"))
	if err != nil {
		return s.sandboxFormError(c, err.Error(), name, c.FormValue("phone"))
	}
	return c.Redirect(http.StatusSeeOther, s.path(sandboxURL(num.E164, name)))
}

func (s *Server) sandboxFormError(c echo.Context, msg, name, rawPhone string) error {
	ctx := c.Request().Context()
	page := views.SandboxPage{Chrome: s.chrome(c, "Sandbox phone"), Error: msg, FormName: name, FormPhone: rawPhone}
	err := s.Store.Read(ctx, func(r *store.Reader) error {
		var err error
		if page.LastEventID, err = r.LastEventID(ctx); err != nil {
			return err
		}
		contacts, err := r.Contacts(ctx, sandboxClients)
		for _, ct := range contacts {
			page.Clients = append(page.Clients, views.SandboxClient{Name: ct.Name, Phone: ct.Phone})
		}
		return err
	})
	if err != nil {
		return err
	}
	return s.render(c, http.StatusUnprocessableEntity, views.Sandbox(page))
}

// clientWrite is a message written on the sandbox phone.
type clientWrite struct {
	From string `json:"from"`
	Name string `json:"name"`
	Text string `json:"text"`
}

// receiveSandbox checks what the phone wrote and has the fake Routee deliver
// it. A photo or file is first served at a public media URL, which the inbox's
// downloader then fetches like Routee's.
func (s *Server) receiveSandbox(ctx context.Context, w clientWrite, file *upload.File) (store.Message, error) {
	num, err := phone.Parse(w.From)
	if err != nil {
		return store.Message{}, &store.InvalidError{Field: "from", Message: err.Error()}
	}
	text := strings.TrimSpace(w.Text)
	if text == "" && file == nil {
		return store.Message{}, &store.InvalidError{Field: "text", Message: "The message is empty."}
	}
	if n := utf8.RuneCountInString(text); n > maxClientText {
		return store.Message{}, &store.InvalidError{Field: "text",
			Message: fmt.Sprintf("The message has %d characters; the sandbox phone sends at most %d.", n, maxClientText)}
	}
	write := sandbox.Write{Phone: num.E164, Name: strings.TrimSpace(w.Name), Country: num.Region, Text: text,
		ReferenceTrackingID: s.sandboxReplyRef(ctx, num.E164)}
	if file != nil {
		name := media.SanitizeName(file.Name)
		a := store.NewAttachment{Hash: file.Blob.Hash, Size: file.Blob.Size, MIME: mimetype.Detect(file.Blob.Head).String(), Name: name}
		token, err := s.Store.AddLooseAttachment(ctx, a, time.Hour)
		if err != nil {
			return store.Message{}, err
		}
		write.MediaURL = s.PublicURL.String() + "/media/" + token
		if _, refusal := media.CheckImage(file.Blob.Head, file.Blob.Size, s.Limits); refusal != nil {
			write.FileName = name // a photo comes without a name, like Routee's
		}
	}
	return s.Phone.ClientWrites(ctx, write)
}

// sandboxForm is what the phone's send form holds: the client's phone and
// name, a text and one photo or file.
func (s *Server) sandboxForm() upload.Spec {
	return upload.Spec{
		Fields:      map[string]int64{"phone": 64, "name": 1 << 10, "text": maxClientText*4 + 4<<10},
		Files:       []string{"file"},
		MaxFiles:    1,
		MaxFileSize: max(s.Limits.ImageMax, s.Limits.FileMax),
	}
}

// sandboxSendForm is the phone's send button: text, a photo or file, or both.
func (s *Server) sandboxSendForm(c echo.Context) error {
	var (
		w    clientWrite
		file *upload.File
	)
	if isMultipart(c) {
		form, err := upload.Read(c.Request().Header.Get("Content-Type"), c.Request().Body, s.sandboxForm(), s.Media)
		if err != nil {
			return err
		}
		w = clientWrite{From: form.Fields["phone"], Name: form.Fields["name"], Text: form.Fields["text"]}
		if len(form.Files) > 0 {
			file = &form.Files[0]
		}
	} else {
		w = clientWrite{From: c.FormValue("phone"), Name: c.FormValue("name"), Text: c.FormValue("text")}
	}
	_, err := s.receiveSandbox(c.Request().Context(), w, file)
	var invalid *store.InvalidError
	if errors.As(err, &invalid) {
		return s.sandboxFormError(c, invalid.Message, w.Name, w.From)
	}
	if err != nil {
		return err
	}
	if c.Request().Header.Get("HX-Request") == "true" {
		return c.NoContent(http.StatusNoContent) // the message arrives over the websocket
	}
	num, _ := phone.Parse(w.From)
	return c.Redirect(http.StatusSeeOther, s.path(sandboxURL(num.E164, strings.TrimSpace(w.Name))))
}

// sandboxAPIMessage is POST /sandbox/messages for scripts:
// {"from": "+375298603938", "name": "Olga", "text": "..."}.
func (s *Server) sandboxAPIMessage(c echo.Context) error {
	var w clientWrite
	if err := decodeJSON(c, &w); err != nil {
		return err
	}
	m, err := s.receiveSandbox(c.Request().Context(), w, nil)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"message": toAPIMessage(m)})
}

// sandboxSeen is posted by the phone page when it has shown a business message.
func (s *Server) sandboxSeen(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var m store.Message
	if err := s.Store.Read(ctx, func(r *store.Reader) error {
		m, err = r.Message(ctx, id)
		return err
	}); err != nil {
		return err
	}
	if m.Direction != store.Outbound {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, "Only business messages can be seen by the client.")
	}
	if s.sandboxNoViber(ctx, m) {
		return c.NoContent(http.StatusNoContent) // reported as not a Viber user, or delivered by SMS
	}
	// Shown implies received: delivered first, so the agent sees both ticks.
	for _, status := range []string{store.StatusDelivered, store.StatusSeen} {
		if err := s.Phone.Report(ctx, m, status); err != nil {
			return err
		}
	}
	return c.NoContent(http.StatusNoContent)
}

// sandboxSocket streams the played client's chat to the phone page.
func (s *Server) sandboxSocket(c echo.Context) error {
	after, err := afterParam(c)
	if err != nil {
		return err
	}
	num, err := phone.Parse(c.QueryParam("phone"))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "phone: "+err.Error())
	}
	var conversation int64 // found once the client has written
	return s.stream(c, after, func(ctx context.Context, r *store.Reader, events []store.Event) ([]templ.Component, func(), error) {
		if conversation == 0 {
			cv, err := r.ConversationByPhone(ctx, num.E164)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, nil, err
			}
			conversation = cv.ID
		}
		var comps []templ.Component
		var delivered []store.Message
		for _, ev := range events {
			if ev.ConversationID != conversation || ev.MessageID == 0 {
				continue
			}
			m, err := r.Message(ctx, ev.MessageID)
			if err != nil {
				return nil, nil, err
			}
			if m.Direction == store.Outbound && m.Status == store.StatusSent {
				delivered = append(delivered, m)
			}
			if ev.Kind == store.EventMessage {
				comps = append(comps, views.SandboxAppend(s.messageView(m)))
			} else {
				comps = append(comps, views.SandboxBubble(s.messageView(m), true))
			}
		}
		after := func() {
			// The phone has received them.
			if err := s.report(context.WithoutCancel(ctx), delivered, store.StatusDelivered); err != nil {
				s.Log.Warn("sandbox delivery", "err", err)
			}
		}
		return comps, after, nil
	})
}

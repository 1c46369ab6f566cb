package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"sessiondesk/store"
	"sessiondesk/views"
)

// contactView is the contact card of conversation convID: its stored values
// (the details are empty when ct carries none).
func (s *Server) contactView(convID int64, ct store.Contact) views.ContactView {
	d := ct.Details
	if d == nil {
		d = &store.ContactDetails{}
	}
	vals := views.ContactValues{Name: ct.Name, Email: d.Email, ExternalID: d.ExternalID,
		Tags: strings.Join(d.Tags, ", "), Note: d.Note}
	return views.ContactView{
		// Formatted when stored, like the list's: formatting it again took 2%
		// of the conversation page's CPU.
		ID: ct.ID, Phone: ct.PhoneDisplay, Country: ct.Country, Name: ct.Name, Tags: d.Tags,
		Values:    vals,
		FormURL:   s.path("/c/" + strconv.FormatInt(convID, 10) + "/contact"),
		SearchURL: s.path("/search?q=" + url.QueryEscape(ct.Phone)),
	}
}

// splitTags reads the form's comma-separated tags; blanks between commas are
// dropped (a trailing comma is not a tag).
func splitTags(v string) []string {
	out := []string{}
	for t := range strings.SplitSeq(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// contactForm is the contact card's post: the fields it holds are saved,
// the others stay. The page's script sends only the fields the agent changed,
// so two agents editing different fields at once both keep theirs; without
// JS the form sends them all. With htmx the answer is a fresh card (with the
// refusal and the typed values when refused); without JS a redirect back,
// or the refusal as an error page.
func (s *Server) contactForm(c echo.Context) error {
	convID, err := conversationID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var ct store.Contact
	if err := s.Store.Read(ctx, func(r *store.Reader) error {
		cv, err := r.Conversation(ctx, convID)
		if err == nil {
			ct, err = r.Contact(ctx, cv.Contact.ID)
		}
		return err
	}); err != nil {
		return err
	}
	form, err := c.FormParams()
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The contact form could not be read: "+err.Error())
	}
	typed := s.contactView(convID, ct).Values
	var (
		ch   store.ContactChange
		sent []string
	)
	field := func(name string, dst *string, into **string) {
		if form.Has(name) {
			v := strings.ReplaceAll(form.Get(name), "\r\n", "\n")
			*dst, *into = v, &v
			sent = append(sent, name)
		}
	}
	field("name", &typed.Name, &ch.Name)
	field("email", &typed.Email, &ch.Email)
	field("external_id", &typed.ExternalID, &ch.ExternalID)
	field("note", &typed.Note, &ch.Note)
	if form.Has("tags") {
		typed.Tags = form.Get("tags")
		tags := splitTags(typed.Tags)
		ch.Tags = &tags
		sent = append(sent, "tags")
	}
	saved, err := s.Store.EditContact(ctx, currentAgent(c).ID, ct.ID, ch)
	var invalid *store.InvalidError
	if err != nil && !errors.As(err, &invalid) {
		return err
	}
	if c.Request().Header.Get("HX-Request") != "true" {
		if invalid != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, s.path("/c/"+strconv.FormatInt(convID, 10)))
	}
	if invalid != nil {
		v := s.contactView(convID, ct)
		v.Values, v.Sent = typed, sent
		v.Error = &views.FieldError{Field: invalid.Field, Message: invalid.Message}
		return s.render(c, http.StatusOK, views.ContactCard(s.chrome(c, ""), v, true))
	}
	return s.render(c, http.StatusOK, views.ContactCard(s.chrome(c, ""), s.contactView(convID, saved), true))
}

// apiContactBody is a contact in the JSON API.
type apiContactBody struct {
	ID             int64      `json:"id"`
	Phone          string     `json:"phone"`
	Name           string     `json:"name"`
	NameSetByAgent bool       `json:"name_set_by_agent"`
	Country        string     `json:"country"`
	Email          string     `json:"email"`
	ExternalID     string     `json:"external_id"`
	Tags           []string   `json:"tags"`
	Note           string     `json:"note"`
	ConversationID int64      `json:"conversation_id,omitempty"`
	UpdatedAt      *time.Time `json:"updated_at"`
}

func toAPIContact(ct store.Contact) apiContactBody {
	d := ct.Details
	out := apiContactBody{ID: ct.ID, Phone: ct.Phone, Name: ct.Name, NameSetByAgent: d.NameSetByAgent, Country: ct.Country,
		Email: d.Email, ExternalID: d.ExternalID, Tags: d.Tags, Note: d.Note, ConversationID: d.ConversationID}
	if !d.UpdatedAt.IsZero() {
		at := d.UpdatedAt
		out.UpdatedAt = &at
	}
	return out
}

// apiContact is GET /api/v1/contacts/{id}.
func (s *Server) apiContact(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var ct store.Contact
	if err := s.Store.Read(ctx, func(r *store.Reader) (err error) {
		ct, err = r.Contact(ctx, id)
		return err
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAPIContact(ct))
}

// apiEditContact is PATCH /api/v1/contacts/{id}: a JSON object with any of
// name, email, external_id, tags and note; the fields left out stay as they
// are, "" clears one (not the name). Unknown fields are refused (400), so a
// typo never looks like a save; phone and country come from Viber (422).
func (s *Server) apiEditContact(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := decodeJSON(c, &raw); err != nil {
		return err
	}
	if raw == nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The body must be a JSON object with any of name, email, external_id, tags and note.")
	}
	var ch store.ContactChange
	str := func(field string, dst **string) error {
		v, ok := raw[field]
		if !ok {
			return nil
		}
		var sv string
		if string(v) == "null" || json.Unmarshal(v, &sv) != nil {
			return &store.InvalidError{Field: field, Message: fmt.Sprintf("%s must be a string (\"\" clears it).", field)}
		}
		*dst = &sv
		return nil
	}
	for field := range raw {
		switch field {
		case "name", "email", "external_id", "note", "tags":
		case "phone", "country":
			return &store.InvalidError{Field: field, Message: field + " comes from Viber and cannot be changed."}
		default:
			return echo.NewHTTPError(http.StatusBadRequest,
				fmt.Sprintf("Unknown field %q: a contact's editable fields are name, email, external_id, tags and note.", field))
		}
	}
	for _, f := range []struct {
		name string
		dst  **string
	}{{"name", &ch.Name}, {"email", &ch.Email}, {"external_id", &ch.ExternalID}, {"note", &ch.Note}} {
		if err := str(f.name, f.dst); err != nil {
			return err
		}
	}
	if v, ok := raw["tags"]; ok {
		var tags []string
		if string(v) == "null" || json.Unmarshal(v, &tags) != nil {
			return &store.InvalidError{Field: "tags", Message: "tags must be an array of strings ([] clears them)."}
		}
		if tags == nil {
			tags = []string{}
		}
		ch.Tags = &tags
	}
	ct, err := s.Store.EditContact(c.Request().Context(), currentAgent(c).ID, id, ch)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAPIContact(ct))
}

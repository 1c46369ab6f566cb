package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"sessiondesk/store"
	"sessiondesk/views"
)

// A conversation's status and assignee: the thread header's forms, the
// PATCH of the JSON API, and the admin's round-robin switch. The store does
// the work; these parse, call and answer.

// threadStatus is the header's status and assignee of cv.
func threadStatus(cv store.Conversation) views.ThreadStatus {
	v := views.ThreadStatus{ConversationID: cv.ID, Status: cv.Status}
	if cv.Status == store.ConvSnoozed {
		v.SnoozedUntil = cv.SnoozedUntil.In(time.Local) // the fallback's zone; the page shows the browser's
	}
	if a := cv.Assignee; a != nil {
		v.AssigneeLogin, v.AssigneeName, v.AssigneeID = a.Login, a.Name, a.ID
	}
	return v
}

// threadActions are the header's forms of conversation id, assigned to
// assignee (a login, "" for nobody), for the signed-in agent me.
func (s *Server) threadActions(ctx context.Context, r *store.Reader, id int64, assignee string, me store.Agent) (views.ThreadActions, error) {
	agents, err := r.AssignableAgents(ctx)
	if err != nil {
		return views.ThreadActions{}, err
	}
	base := "/c/" + strconv.FormatInt(id, 10)
	a := views.ThreadActions{StatusURL: s.path(base + "/status"), AssigneeURL: s.path(base + "/assignee"), MeLogin: me.Login,
		UnreadURL: s.path(base + "/unread")}
	for _, ag := range agents {
		a.Agents = append(a.Agents, views.Option{Value: ag.Login, Label: ag.Name, Selected: ag.Login == assignee})
	}
	return a, nil
}

// snoozeUntil reads the snooze picker: an exact instant (until, RFC 3339, which
// the page's script fills in the browser's zone), or a preset, or a typed
// local time; without the script the presets and the typed time are in the
// server's zone.
func snoozeUntil(c echo.Context, now time.Time) (time.Time, error) {
	if v := c.FormValue("until"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return time.Time{}, &store.InvalidError{Field: "snoozed_until", Message: "The snooze time is not a time: " + strconv.Quote(v) + "."}
		}
		return t, nil
	}
	switch c.FormValue("snooze") {
	case "1h":
		return now.Add(time.Hour), nil
	case "4h":
		return now.Add(4 * time.Hour), nil
	case "tomorrow":
		local := now.In(time.Local)
		return time.Date(local.Year(), local.Month(), local.Day()+1, 9, 0, 0, 0, time.Local), nil
	}
	if v := c.FormValue("until_local"); v != "" {
		t, err := time.ParseInLocation("2006-01-02T15:04", v, time.Local)
		if err != nil {
			return time.Time{}, &store.InvalidError{Field: "snoozed_until", Message: "The snooze time is not a time: " + strconv.Quote(v) + "."}
		}
		return t, nil
	}
	return time.Time{}, nil // the store says a snooze needs a time
}

// statusForm is the header's status buttons and snooze picker: POST
// /c/{id}/status with status (and, for snoozed, the time).
func (s *Server) statusForm(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	u := store.ConversationUpdate{Status: c.FormValue("status")}
	if u.Status == store.ConvSnoozed {
		if u.SnoozedUntil, err = snoozeUntil(c, s.Store.Now()); err != nil {
			return err
		}
	}
	if _, err := s.Store.UpdateConversation(c.Request().Context(), id, currentAgent(c).ID, u); err != nil {
		return err
	}
	return s.formDone(c, id)
}

// assigneeForm is "Assign to me" and the select of agents: POST
// /c/{id}/assignee with assignee, a login or "" for nobody.
func (s *Server) assigneeForm(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	u := store.ConversationUpdate{Assign: true, Assignee: c.FormValue("assignee")}
	if _, err := s.Store.UpdateConversation(c.Request().Context(), id, currentAgent(c).ID, u); err != nil {
		return err
	}
	return s.formDone(c, id)
}

// formDone answers a header form: htmx gets nothing (the change comes back
// over the websocket to every page), a plain form goes back to the thread.
func (s *Server) formDone(c echo.Context, id int64) error {
	if c.Request().Header.Get("HX-Request") == "true" {
		return c.NoContent(http.StatusNoContent)
	}
	return c.Redirect(http.StatusSeeOther, s.path("/c/"+strconv.FormatInt(id, 10)))
}

// apiAssignee is a conversation's assignee in the JSON API.
type apiAssignee struct {
	Login string `json:"login"`
	Name  string `json:"name"`
}

// patchRequest is the body of PATCH /api/v1/conversations/{id}: each field
// present changes; assignee null unassigns.
type patchRequest struct {
	Status       *string         `json:"status"`
	SnoozedUntil *string         `json:"snoozed_until"`
	Assignee     json.RawMessage `json:"assignee"`
}

// apiPatchConversation is PATCH /api/v1/conversations/{id} with status,
// snoozed_until and assignee; it answers with the conversation as it is now.
func (s *Server) apiPatchConversation(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	var req patchRequest
	if err := decodeStrictJSON(c, &req, "status, snoozed_until and assignee"); err != nil {
		return err
	}
	var u store.ConversationUpdate
	if req.Status != nil {
		if *req.Status == "" {
			return &store.InvalidError{Field: "status", Message: "status is empty: use one of " + strings.Join(store.ConvStatuses(), ", ") + "."}
		}
		u.Status = *req.Status
	}
	if req.SnoozedUntil != nil {
		t, err := time.Parse(time.RFC3339, *req.SnoozedUntil)
		if err != nil {
			return echo.NewHTTPError(http.StatusBadRequest,
				"snoozed_until: want an RFC 3339 time such as 2026-11-25T09:00:00+01:00, not "+strconv.Quote(*req.SnoozedUntil)+".")
		}
		u.SnoozedUntil = t
		if u.Status == "" {
			u.Status = store.ConvSnoozed // a time alone snoozes
		}
	}
	if req.Assignee != nil {
		u.Assign = true
		if string(req.Assignee) != "null" {
			if err := json.Unmarshal(req.Assignee, &u.Assignee); err != nil {
				return echo.NewHTTPError(http.StatusBadRequest, "assignee: want an agent's login (a string) or null.")
			}
			if u.Assignee == "" {
				return &store.InvalidError{Field: "assignee", Message: "assignee is empty: give an agent's login, or null to unassign."}
			}
		}
	}
	ctx := c.Request().Context()
	if _, err := s.Store.UpdateConversation(ctx, id, currentAgent(c).ID, u); err != nil {
		return err
	}
	var out apiConversation
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		cv, err := r.Conversation(ctx, id)
		out = s.toAPIConversation(cv, r.Now())
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// decodeStrictJSON is decodeJSON that refuses fields it does not know, naming
// the ones it takes: a typo must not pass for a no-op.
func decodeStrictJSON(c echo.Context, v any, fields string) error {
	body := http.MaxBytesReader(c.Response(), c.Request().Body, maxJSONBody)
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("The body is over %d bytes.", maxJSONBody))
		}
		return echo.NewHTTPError(http.StatusBadRequest, "The body could not be read.")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return echo.NewHTTPError(http.StatusBadRequest, "The body is empty: send a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return echo.NewHTTPError(http.StatusBadRequest, "Unknown field "+name+": this takes "+fields+".")
		}
		return echo.NewHTTPError(http.StatusBadRequest, "The body is not a valid JSON object: "+err.Error())
	}
	if dec.More() {
		return echo.NewHTTPError(http.StatusBadRequest, "The body holds more than one JSON value.")
	}
	return nil
}

// adminAutoAssign is the settings page's round-robin switch: POST
// /admin/auto-assign with enabled=1 or nothing.
func (s *Server) adminAutoAssign(c echo.Context) error {
	if err := s.Store.SetAutoAssign(c.Request().Context(), currentAgent(c).ID, c.FormValue("enabled") == "1"); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, s.path("/admin/settings?saved=1"))
}

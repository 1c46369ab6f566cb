package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"

	"sessiondesk/live"
	"sessiondesk/store"
	"sessiondesk/views"
)

// Presence and notifications: the presence line the hub sends, the agent's
// notification settings (a form in the header and the JSON API), and the
// reminders of sessions about to close unanswered.

// Presence draws a conversation's presence line (live.PresenceRenderer).
func (v liveViews) Presence(ctx context.Context, w io.Writer, conversationID int64, others []live.Presence) error {
	agents := make([]views.PresenceAgent, len(others))
	for i, o := range others {
		agents[i] = views.PresenceAgent{ID: o.Agent, Name: o.Name, Typing: o.Typing}
	}
	return views.PresenceLine(conversationID, agents, true).Render(ctx, w)
}

// apiPrefs is an agent's notification settings in the API.
type apiPrefs struct {
	Sound   bool `json:"sound"`
	Desktop bool `json:"desktop"`
}

// agentPrefs reads the signed-in agent's settings.
func (s *Server) agentPrefs(ctx context.Context, agentID int64) (store.AgentPrefs, error) {
	var p store.AgentPrefs
	err := s.Store.Read(ctx, func(r *store.Reader) (err error) {
		p, err = r.AgentPrefs(ctx, agentID)
		return err
	})
	return p, err
}

// apiGetPrefs answers GET /api/v1/me/preferences.
func (s *Server) apiGetPrefs(c echo.Context) error {
	p, err := s.agentPrefs(c.Request().Context(), currentAgent(c).ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiPrefs(p))
}

// apiPatchPrefs answers PATCH /api/v1/me/preferences: {"sound": bool,
// "desktop": bool}, either or both; anything else is refused whole.
func (s *Server) apiPatchPrefs(c echo.Context) error {
	var fields map[string]json.RawMessage
	if err := decodeJSON(c, &fields); err != nil {
		return err
	}
	if fields == nil {
		return &store.InvalidError{Field: "body", Message: `want a JSON object such as {"sound": true}`}
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	var ch store.AgentPrefsChange
	for _, k := range names {
		var dst **bool
		switch k {
		case "sound":
			dst = &ch.Sound
		case "desktop":
			dst = &ch.Desktop
		default:
			return &store.InvalidError{Field: k, Message: fmt.Sprintf("%q is not a setting: the settings are sound and desktop", k)}
		}
		var b bool
		if err := json.Unmarshal(fields[k], &b); err != nil || bytes.Equal(bytes.TrimSpace(fields[k]), []byte("null")) {
			return &store.InvalidError{Field: k, Message: "want true or false"}
		}
		*dst = &b
	}
	p, err := s.Store.UpdateAgentPrefs(c.Request().Context(), currentAgent(c).ID, ch)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiPrefs(p))
}

// backPath is where saving the settings form returns: the inbox or one of
// its conversations, never anywhere else.
var backPath = regexp.MustCompile(`^/(c/[1-9][0-9]{0,18})?$`)

// savePrefsForm answers the header's settings form (POST /me/preferences).
// Cross-site posts are refused before it, like every state-changing request.
func (s *Server) savePrefsForm(c echo.Context) error {
	on := func(name string) *bool {
		v := c.FormValue(name) == "on"
		return &v
	}
	if _, err := s.Store.UpdateAgentPrefs(c.Request().Context(), currentAgent(c).ID,
		store.AgentPrefsChange{Sound: on("sound"), Desktop: on("desktop")}); err != nil {
		return err
	}
	back := c.FormValue("back")
	if !backPath.MatchString(back) {
		back = "/"
	}
	return c.Redirect(http.StatusSeeOther, s.path(back))
}

// withPrefs adds the agent's notification settings to an inbox page's chrome:
// the header's menu and the script's sound and desktop switches.
func withPrefs(ctx context.Context, r *store.Reader, ch *views.Chrome, agentID int64, path string) error {
	p, err := r.AgentPrefs(ctx, agentID)
	if err != nil {
		return err
	}
	ch.AgentID, ch.Path = agentID, path
	ch.Prefs = &views.NotifyPrefs{Sound: p.Sound, Desktop: p.Desktop}
	return nil
}

// Remind tells the agent's open pages that a session is about to close with
// the client's message unanswered; it returns how many pages got it.
func (s *Server) Remind(ctx context.Context, r store.Reminder) (int, error) {
	left := max(int(math.Ceil(r.EndsAt.Sub(s.Store.Now()).Minutes())), 1)
	name := strings.TrimSpace(r.ContactName)
	if name == "" {
		name = r.ContactPhone
	}
	notice := views.Reminder{
		Key:            fmt.Sprintf("reminder-%d", r.SessionID),
		ConversationID: r.ConversationID,
		Title:          "Session closing unanswered",
		Body:           fmt.Sprintf("%s wrote last and is still waiting; the session ends in %d min.", name, left),
	}
	var buf bytes.Buffer
	if err := views.ReminderNotice(views.Chrome{BasePath: s.BasePath}, notice).Render(ctx, &buf); err != nil {
		return 0, fmt.Errorf("render reminder: %w", err)
	}
	return s.hub.SendToAgent(r.AgentID, buf.Bytes())
}

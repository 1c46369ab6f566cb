package handlers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"sessiondesk/mention"
	"sessiondesk/session"
	"sessiondesk/store"
	"sessiondesk/views"
)

// Internal notes: the composer's Note tab, the JSON API, the agent's mentions.
// A note goes to the store's notes table only: nothing here reaches the
// provider or the session rules.

// mentionsLimit is how many mentions the mentions page lists.
const mentionsLimit = 100

// registerNotes adds the notes' routes to the signed-in group and the API.
func (s *Server) registerNotes(app, api *echo.Group) {
	app.POST("/c/:id/notes", s.noteForm)
	app.GET("/mentions", s.mentionsPage)
	app.POST("/mentions/seen", s.mentionsSeen)
	api.GET("/conversations/:id/notes", s.apiNotes)
	api.POST("/conversations/:id/notes", s.apiAddNote)
}

// noteView is a note as the thread shows it.
func (s *Server) noteView(n store.Note) views.Note {
	v := views.Note{ID: n.ID, ConversationID: n.ConversationID, Author: n.AgentName, At: n.CreatedAt.In(time.Local)}
	for _, seg := range mention.Split(n.Body, n.MentionLogins()) {
		v.Segments = append(v.Segments, views.NoteSegment{Text: seg.Text, Mention: seg.Mention})
	}
	return v
}

// threadNotes reads the notes a thread shows beside msgs (the conversation's
// last messages, oldest first): all of them when msgs is the whole
// conversation, otherwise those since its first message.
func (s *Server) threadNotes(ctx context.Context, r *store.Reader, id int64, msgs []store.Message) ([]views.Note, error) {
	var since time.Time
	if len(msgs) >= threadLimit {
		since = msgs[0].CreatedAt
	}
	notes, err := r.Notes(ctx, id, since, threadLimit)
	if err != nil {
		return nil, err
	}
	out := make([]views.Note, 0, len(notes))
	for _, n := range notes {
		out = append(out, s.noteView(n))
	}
	return out, nil
}

// unseenMentions is the header badge's count for the agent.
func unseenMentions(ctx context.Context, r *store.Reader, agentID int64) (int, error) {
	counts, err := r.UnseenMentions(ctx, []int64{agentID})
	return counts[agentID], err
}

// noteText is a submitted note: browsers send line breaks as CRLF, and the
// limit counts what the agents see.
func noteText(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// noteForm is the Note tab's post. With htmx it answers with a fresh Note tab
// (the note arrives over the websocket, like everyone else's), or the tab with
// the draft and the reason when refused; without JS it redirects back to the
// conversation, or shows the refusal as an error page.
func (s *Server) noteForm(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	text := noteText(c.FormValue("text"))
	_, err = s.Store.AddNote(c.Request().Context(), id, currentAgent(c).ID, text)
	var refusal *session.Refusal
	if err != nil && !errors.As(err, &refusal) {
		return err
	}
	if c.Request().Header.Get("HX-Request") != "true" {
		if refusal != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, s.path("/c/"+strconv.FormatInt(id, 10)))
	}
	form := views.NoteComposer{ConversationID: id, MaxLen: store.MaxNoteLen}
	if refusal != nil {
		form.Text, form.Error = text, refusal
	}
	return s.render(c, http.StatusOK, views.NoteForm(s.chrome(c, ""), form))
}

// apiNote is a note in the JSON API.
type apiNote struct {
	ID             int64     `json:"id"`
	ConversationID int64     `json:"conversation_id"`
	Author         string    `json:"author"` // the agent's login
	AuthorName     string    `json:"author_name"`
	Text           string    `json:"text"`
	CreatedAt      time.Time `json:"created_at"`
	Mentions       []string  `json:"mentions"` // the logins it mentions
}

func toAPINote(n store.Note) apiNote {
	return apiNote{ID: n.ID, ConversationID: n.ConversationID, Author: n.AgentLogin, AuthorName: n.AgentName,
		Text: n.Body, CreatedAt: n.CreatedAt, Mentions: n.MentionLogins()}
}

// apiAddNote is POST /api/v1/conversations/{id}/notes {"text": "..."}: 201
// with the note, its mentions resolved.
func (s *Server) apiAddNote(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	var req struct {
		Text string `json:"text"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	n, err := s.Store.AddNote(c.Request().Context(), id, currentAgent(c).ID, noteText(req.Text))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"note": toAPINote(n)})
}

// apiNotes is GET /api/v1/conversations/{id}/notes: its last notes, oldest first.
func (s *Server) apiNotes(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var out []apiNote
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		if _, err := r.Conversation(ctx, id); err != nil {
			return err
		}
		notes, err := r.Notes(ctx, id, time.Time{}, threadLimit)
		out = make([]apiNote, 0, len(notes))
		for _, n := range notes {
			out = append(out, toAPINote(n))
		}
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"notes": out})
}

// mentionsPage lists the notes that mention the agent. Looking changes
// nothing (a GET): "Mark all as seen" posts.
func (s *Server) mentionsPage(c echo.Context) error {
	ctx := c.Request().Context()
	agent := currentAgent(c)
	page := views.MentionsPage{Chrome: s.chrome(c, "Mentions")}
	err := s.Store.Read(ctx, func(r *store.Reader) error {
		items, err := r.MentionsOf(ctx, agent.ID, mentionsLimit)
		if err != nil {
			return err
		}
		for _, it := range items {
			page.Rows = append(page.Rows, views.MentionRow{Note: s.noteView(it.Note), ContactName: it.ContactName, Seen: it.Seen})
			page.UpTo = max(page.UpTo, it.ID)
		}
		page.Mentions, err = unseenMentions(ctx, r, agent.ID)
		return err
	})
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, views.Mentions(page))
}

// mentionsSeen marks the agent's mentions seen up to the newest the page
// listed (upto), and goes back to the list.
func (s *Server) mentionsSeen(c echo.Context) error {
	upTo, err := strconv.ParseInt(c.FormValue("upto"), 10, 64)
	if err != nil || upTo < 0 {
		return echo.NewHTTPError(http.StatusBadRequest, "upto: want the id of the newest note shown")
	}
	if _, err := s.Store.MarkMentionsSeen(c.Request().Context(), currentAgent(c).ID, upTo); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, s.path("/mentions"))
}

// Note draws a new note's bubble for the live frames.
func (v liveViews) Note(ctx context.Context, w io.Writer, n store.Note) error {
	return views.NoteAppend(v.s.noteView(n)).Render(ctx, w)
}

// Mentions draws the header badge of an agent a new note mentions.
func (v liveViews) Mentions(ctx context.Context, w io.Writer, unseen int, latest store.Note) error {
	b := views.MentionBadge{Unseen: unseen, NoteID: latest.ID, ConversationID: latest.ConversationID, Author: latest.AgentName}
	return views.MentionBadgeLink(v.chrome(), b, true).Render(ctx, w)
}

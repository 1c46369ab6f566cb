package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"sessiondesk/store"
	"sessiondesk/views"
)

// Search: the results page (/search?q=, works without JS), the list's live
// results while typing (/search/live?q=, htmx) and GET /api/v1/search.

// How many conversations each search shows.
const (
	searchPageLimit = 20
	searchLiveLimit = 10
	apiSearchMax    = store.MaxSearchResults
)

// registerSearch adds the search routes to the signed-in app and its API.
func (s *Server) registerSearch(app, api *echo.Group) {
	app.GET("/search", s.searchPage)
	app.GET("/search/live", s.searchLive)
	api.GET("/search", s.apiSearch)
}

// searchPage is GET /search?q=: the results page. Without q it shows the
// search field; text that cannot be searched is a 400 that says why.
func (s *Server) searchPage(c echo.Context) error {
	q := c.QueryParam("q")
	chrome := s.chrome(c, "Search")
	if strings.TrimSpace(q) == "" {
		return s.render(c, http.StatusOK, views.SearchPage(chrome, views.SearchView{}))
	}
	v, err := s.searchView(c, q, searchPageLimit)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if v.Error != "" {
		status = http.StatusBadRequest
	}
	chrome.Title = "Search: " + v.Query
	return s.render(c, status, views.SearchPage(chrome, v))
}

// searchLive is GET /search/live?q=: the results shown in the list while the
// agent types. Blank text answers nothing, which gives the list back; text
// that cannot be searched answers why, with 200 so that htmx shows it.
func (s *Server) searchLive(c echo.Context) error {
	q := c.QueryParam("q")
	if strings.TrimSpace(q) == "" {
		return c.HTML(http.StatusOK, "")
	}
	v, err := s.searchView(c, q, searchLiveLimit)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, views.SearchLive(s.chrome(c, ""), v))
}

// searchView runs a search for a page; a search the store refuses comes back
// in the view's Error.
func (s *Server) searchView(c echo.Context, q string, limit int) (views.SearchView, error) {
	v := views.SearchView{Query: shortText(strings.TrimSpace(q), store.MaxSearchLen)}
	sq, err := store.ParseSearch(q)
	var invalid *store.InvalidError
	if errors.As(err, &invalid) {
		v.Error = "Cannot search for this: " + invalid.Message + "."
		return v, nil
	}
	if err != nil {
		return v, err
	}
	ctx := c.Request().Context()
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		res, err := r.Search(ctx, sq, limit)
		v.Incomplete = r.SearchIncomplete()
		for _, sr := range res {
			cv := sr.Conversation
			out := views.SearchResult{ConversationID: cv.ID, Name: cv.Contact.Name,
				Phone: cv.Contact.PhoneDisplay, ContactMatch: sr.ContactMatch}
			for _, m := range sr.Matches {
				vm := views.SearchMatch{MessageID: m.MessageID, Out: m.Direction == store.Outbound, At: m.At.In(time.Local)}
				for _, p := range m.Snippet {
					vm.Parts = append(vm.Parts, views.SnippetPart{Text: p.Text, Mark: p.Match})
				}
				out.Matches = append(out.Matches, vm)
			}
			v.Results = append(v.Results, out)
		}
		return err
	})
	return v, err
}

// shortText cuts s to at most n characters, for echoing what was typed.
func shortText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// apiSearchResult is one conversation of GET /api/v1/search.
type apiSearchResult struct {
	Conversation apiConversation `json:"conversation"`
	// ContactMatch: the client's name or phone number matched.
	ContactMatch bool             `json:"contact_match"`
	Matches      []apiSearchMatch `json:"matches"`
}

// apiSearchMatch is a matching message: a snippet of its text around the
// match, and where in the snippet the matching words are.
type apiSearchMatch struct {
	MessageID int64     `json:"message_id"`
	Direction string    `json:"direction"`
	Snippet   string    `json:"snippet"`
	At        time.Time `json:"at"`
	// Highlights are [start, end) ranges of Snippet, in Unicode code points.
	Highlights [][2]int `json:"highlights"`
}

// apiSearch is GET /api/v1/search?q=&limit=: the conversations whose client
// (name, phone number) or messages match q, each with its newest matching
// messages. q is required; limit is 1 to 50, 20 by default.
func (s *Server) apiSearch(c echo.Context) error {
	limit := searchPageLimit
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > apiSearchMax {
			return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("limit: want a number from 1 to %d", apiSearchMax))
		}
		limit = n
	}
	sq, err := store.ParseSearch(c.QueryParam("q"))
	var invalid *store.InvalidError
	if errors.As(err, &invalid) {
		return echo.NewHTTPError(http.StatusBadRequest, "q: "+invalid.Message)
	}
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	out := struct {
		Results []apiSearchResult `json:"results"`
		// Incomplete: the search index is still being built (after an
		// upgrade or a restore), so older messages may be missing.
		Incomplete bool `json:"incomplete"`
	}{Results: []apiSearchResult{}}
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		res, err := r.Search(ctx, sq, limit)
		out.Incomplete = r.SearchIncomplete()
		for _, sr := range res {
			ar := apiSearchResult{Conversation: s.toAPIConversation(sr.Conversation, r.Now()),
				ContactMatch: sr.ContactMatch, Matches: []apiSearchMatch{}}
			for _, m := range sr.Matches {
				ar.Matches = append(ar.Matches, toAPISearchMatch(m))
			}
			out.Results = append(out.Results, ar)
		}
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func toAPISearchMatch(m store.SearchMatch) apiSearchMatch {
	out := apiSearchMatch{MessageID: m.MessageID, Direction: m.Direction, At: m.At, Highlights: [][2]int{}}
	var b strings.Builder
	pos := 0
	for _, p := range m.Snippet {
		n := utf8.RuneCountInString(p.Text)
		if p.Match {
			out.Highlights = append(out.Highlights, [2]int{pos, pos + n})
		}
		b.WriteString(p.Text)
		pos += n
	}
	out.Snippet = b.String()
	return out
}

// A link to a message (?around=id, from a search result) loads the thread back
// to that message and aroundContext before it, at most maxThreadAround
// messages; a message older than that opens the thread as usual.
const (
	aroundContext   = 20
	maxThreadAround = 2000
)

// reachBack makes the thread cv include the message named by around (a
// message id), when the usual last threadLimit messages do not.
func (s *Server) reachBack(ctx context.Context, r *store.Reader, cv *views.ConversationView, around string) error {
	id, err := strconv.ParseInt(around, 10, 64)
	if around == "" || err != nil || id <= 0 || len(cv.Messages) < threadLimit || cv.Messages[0].ID <= id {
		return nil // none asked, or the thread is whole or already reaches it
	}
	n, err := r.ThreadDepth(ctx, cv.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not a message of this conversation
	}
	if err != nil {
		return err
	}
	msgs, err := r.Messages(ctx, cv.ID, min(n+aroundContext, maxThreadAround))
	if err != nil {
		return err
	}
	cv.Messages = cv.Messages[:0]
	for _, m := range msgs {
		cv.Messages = append(cv.Messages, s.messageView(m))
	}
	return nil
}

package handlers

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"sessiondesk/store"
	"sessiondesk/views"
)

// The list's views (Mine, Unassigned, All, Waiting on us, Expiring, Locked,
// Closed unanswered): which one a request asks for, the sidebar with counts,
// and what the page's script needs to place live rows the way the server
// orders them.

// viewLabel names a view in the sidebar, with its key after "g".
func viewLabel(v store.View) (label, key string) {
	switch v {
	case store.ViewMine:
		return "Mine", "m"
	case store.ViewUnassigned:
		return "Unassigned", "u"
	case store.ViewWaiting:
		return "Waiting on us", "w"
	case store.ViewExpiring:
		return "Expiring", "x"
	case store.ViewLocked:
		return "Locked", "l"
	case store.ViewLost:
		return "Closed unanswered", "c"
	}
	return "All", "a"
}

// listQuery reads ?view=, ?status= and ?q= for agent; a bad value is a 400
// that says which values are known.
func (s *Server) listQuery(c echo.Context, agent int64) (store.ListQuery, error) {
	view, err := store.ParseView(c.QueryParam("view"))
	if err != nil {
		return store.ListQuery{}, echo.NewHTTPError(http.StatusBadRequest, "view: "+err.Error())
	}
	status, err := store.ParseStatusFilter(c.QueryParam("status"))
	if err != nil {
		return store.ListQuery{}, echo.NewHTTPError(http.StatusBadRequest, "status: "+err.Error())
	}
	q := store.ListQuery{View: view, Status: status, Agent: agent, ExpiringWithin: s.expiringWithin()}
	if text := c.QueryParam("q"); text != "" {
		if q.Contacts, err = store.ParseSearch(text); err != nil {
			return store.ListQuery{}, echo.NewHTTPError(http.StatusBadRequest, "q: "+err.Error())
		}
	}
	return q, nil
}

func (s *Server) expiringWithin() time.Duration {
	if s.ExpiringWithin > 0 {
		return s.ExpiringWithin
	}
	return store.DefaultExpiringWithin
}

// viewQuery is the query string that keeps q's view and status in links
// ("" for the default: All, open).
func viewQuery(q store.ListQuery) url.Values {
	v := url.Values{}
	if q.View != "" && q.View != store.ViewAll {
		v.Set("view", string(q.View))
	}
	if q.Status != "" && q.Status != store.ConvOpen {
		v.Set("status", q.Status)
	}
	return v
}

// viewNav is the sidebar for q's page: every view with its count; a view's
// link keeps the status filter.
func (s *Server) viewNav(counts store.ViewCounts, q store.ListQuery) views.ViewNav {
	var nav views.ViewNav
	for _, v := range store.Views {
		lq := q
		lq.View = v
		href := s.path("/")
		if qs := viewQuery(lq).Encode(); qs != "" {
			href += "?" + qs
		}
		label, key := viewLabel(v)
		nav.Items = append(nav.Items, views.ViewItem{
			Name: string(v), Label: label, Key: key,
			Count: counts.Of(v, q.Agent), Href: href, Current: v == q.View,
		})
	}
	return nav
}

// listScope tells the page's script what the list shows.
func (s *Server) listScope(q store.ListQuery) views.ListScope {
	scope := views.ListScope{
		View: string(q.View), Status: q.Status, Agent: q.Agent,
		ExpiringMS: q.ExpiringWithin.Milliseconds(), MaxUnanswered: s.Store.Rules().MaxUnanswered,
	}
	if qs := viewQuery(q).Encode(); qs != "" {
		scope.Query = "?" + qs
	}
	return scope
}

// markUnread is "mark as unread" (key u): the client's newest message is
// unread again for the signed-in agent only, and the page goes back to the
// list (staying on the conversation would read it again at once), in the
// view the page came from (the form's view, checked like ?view=).
func (s *Server) markUnread(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	view, err := store.ParseView(c.FormValue("view"))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "view: "+err.Error())
	}
	if err := s.Store.MarkUnread(c.Request().Context(), currentAgent(c).ID, id); err != nil {
		return err
	}
	back := s.path("/")
	if qs := viewQuery(store.ListQuery{View: view, Status: store.ConvOpen}).Encode(); qs != "" {
		back += "?" + qs
	}
	return c.Redirect(http.StatusSeeOther, back)
}

// apiMarkRead is POST /api/v1/conversations/{id}/read: every client message
// of the conversation is read for the caller (only).
func (s *Server) apiMarkRead(c echo.Context) error {
	return s.apiMark(c, s.Store.MarkRead)
}

// apiMarkUnread is POST /api/v1/conversations/{id}/unread: the client's
// newest message is unread again for the caller (only).
func (s *Server) apiMarkUnread(c echo.Context) error {
	return s.apiMark(c, s.Store.MarkUnread)
}

func (s *Server) apiMark(c echo.Context, mark func(ctx context.Context, agent, conversation int64) error) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	if err := mark(c.Request().Context(), currentAgent(c).ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

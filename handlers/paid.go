package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"sessiondesk/channel/routee"
	"sessiondesk/store"
)

// Paid messages (issue 13): the API and the composer's paid mode. Handlers
// parse, call the store or the reconciler, and answer.

// registerPaid adds the paid message routes.
func (s *Server) registerPaid(app, api *echo.Group) {
	api.GET("/conversations/:id/paid-quote", s.apiPaidQuote)
	api.GET("/conversations/:id/consent", s.apiConsent)
	api.POST("/conversations/:id/reconcile", s.apiReconcile)
	api.GET("/paid-templates", s.apiPaidTemplates)
	adm := api.Group("/admin", s.requireAdmin)
	adm.GET("/paid-settings", s.apiGetPaidSettings)
	adm.PUT("/paid-settings", s.apiPutPaidSettings)
	adm.POST("/paid-templates", s.apiAddPaidTemplate)
	adm.DELETE("/paid-templates/:tid", s.apiDeletePaidTemplate)
	adm.POST("/contacts/:id/flags/:flag/clear", s.apiClearFlag)
	adm.GET("/paid-costs", s.apiPaidCosts)
	s.registerPaidPages(app)
}

// paidRequest is the paid part of POST /api/v1/conversations/{id}/messages.
type paidRequest struct {
	Paid        bool `json:"paid"`
	ConfirmCost bool `json:"confirm_cost"`
	// ConfirmPrice, optional, is the price the agent confirmed: a different
	// price now asks again.
	ConfirmPrice *float64 `json:"confirm_price"`
	ImageURL     string   `json:"image_url"`
	Button       *struct {
		Caption string `json:"caption"`
		URL     string `json:"url"`
	} `json:"button"`
	Channel    string `json:"channel"` // "viber" (default) or "sms"
	Fallback   bool   `json:"fallback"`
	TemplateID int64  `json:"template_id"`
}

// route reads the channel choice.
func (p paidRequest) route() (string, error) {
	switch {
	case p.Fallback && p.Channel == "sms":
		return "", &store.InvalidError{Field: "fallback", Message: `"fallback" is for a Viber message; an SMS has none.`}
	case p.Fallback:
		return store.RouteFailover, nil
	case p.Channel == "" || p.Channel == "viber":
		return store.RouteViber, nil
	case p.Channel == "sms":
		return store.RouteSMS, nil
	}
	return "", &store.InvalidError{Field: "channel", Message: `"channel" is "viber" or "sms".`}
}

// costAnswer is the 409 needs_cost_confirmation body.
type costAnswer struct {
	apiError
	Price    float64 `json:"price"`
	Currency string  `json:"currency"`
	Route    string  `json:"route"`
	Country  string  `json:"country"`
}

func costConflict(c echo.Context, ce *store.CostError) error {
	return c.JSON(http.StatusConflict, costAnswer{
		apiError: apiError{Code: string(store.CodeNeedsCostConfirmation), Message: fmt.Sprintf(
			"This paid message costs %s %s. Send it again with \"confirm_cost\": true to send it; a reply from the client opens a new billed session.",
			strconv.FormatFloat(ce.Quote.Price, 'f', -1, 64), ce.Quote.Currency)},
		Price: ce.Quote.Price, Currency: ce.Quote.Currency, Route: ce.Quote.Route, Country: ce.Quote.Country,
	})
}

// paidSend builds the store's PaidSend.
func paidSend(convID, agentID int64, text string, p paidRequest) (store.PaidSend, error) {
	route, err := p.route()
	if err != nil {
		return store.PaidSend{}, err
	}
	ps := store.PaidSend{ConversationID: convID, AgentID: agentID, Text: text, ImageURL: strings.TrimSpace(p.ImageURL),
		Route: route, TemplateID: p.TemplateID, ConfirmCost: p.ConfirmCost, ConfirmedPrice: p.ConfirmPrice}
	if p.Button != nil {
		ps.ButtonCaption, ps.ButtonURL = strings.TrimSpace(p.Button.Caption), strings.TrimSpace(p.Button.URL)
	}
	return ps, nil
}

// apiPaidSend sends a paid message for POST .../messages with "paid": true.
func (s *Server) apiPaidSend(c echo.Context, convID int64, text string, p paidRequest) error {
	ps, err := paidSend(convID, currentAgent(c).ID, text, p)
	if err != nil {
		return err
	}
	m, err := s.Store.AcceptPaidMessage(c.Request().Context(), ps)
	var ce *store.CostError
	if errors.As(err, &ce) {
		return costConflict(c, ce)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"message": toAPIMessage(m)})
}

// apiPaidQuote is GET .../paid-quote?channel=viber|sms&fallback=1: the price
// the composer shows before the agent confirms.
func (s *Server) apiPaidQuote(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	p := paidRequest{Channel: c.QueryParam("channel"), Fallback: c.QueryParam("fallback") == "1" || c.QueryParam("fallback") == "true"}
	route, err := p.route()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	set, err := s.Store.PaidSettings(ctx)
	if err != nil {
		return err
	}
	var country string
	var flags []store.ContactFlag
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		cv, err := r.Conversation(ctx, id)
		if err != nil {
			return err
		}
		country = cv.Contact.Country
		flags, err = r.ConversationFlags(ctx, id)
		return err
	})
	if err != nil {
		return err
	}
	price, ok := set.Price(route, country)
	return c.JSON(http.StatusOK, map[string]any{
		"route": route, "country": country, "price": price, "priced": ok, "currency": set.Currency,
		"sms": set.SMSEnabled(), "promotional": set.Promotional, "require_template": set.RequireTemplate,
		"flags": flags,
	})
}

// apiConsent is the export of the client's last consent: their last message.
func (s *Server) apiConsent(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var out struct {
		ConversationID int64               `json:"conversation_id"`
		Phone          string              `json:"phone"`
		Consent        store.Consent       `json:"last_consent"`
		Flags          []store.ContactFlag `json:"flags"`
		ExportedAt     string              `json:"exported_at"`
	}
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		cv, err := r.Conversation(ctx, id)
		if err != nil {
			return err
		}
		out.ConversationID, out.Phone = id, cv.Contact.Phone
		if out.Consent, err = r.LastConsent(ctx, id); err != nil {
			return err
		}
		out.Flags, err = r.ConversationFlags(ctx, id)
		out.ExportedAt = r.Now().Format("2006-01-02T15:04:05Z07:00")
		return err
	})
	if err != nil {
		return err
	}
	if c.QueryParam("download") == "1" {
		c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="consent.json"`)
	}
	return c.JSON(http.StatusOK, out)
}

// apiReconcile runs "Check with Routee" and answers what it changed.
func (s *Server) apiReconcile(c echo.Context) error {
	_, res, err := s.reconcile(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// reconcile runs "Check with Routee" on the conversation of :id, for the
// page and the API alike.
func (s *Server) reconcile(c echo.Context) (int64, routee.Reconciliation, error) {
	id, err := conversationID(c)
	if err != nil {
		return 0, routee.Reconciliation{}, err
	}
	if s.Reconciler == nil {
		return 0, routee.Reconciliation{}, echo.NewHTTPError(http.StatusServiceUnavailable, "Checking with Routee is not available.")
	}
	res, err := s.Reconciler.Conversation(c.Request().Context(), id)
	return id, res, err
}

func (s *Server) apiPaidTemplates(c echo.Context) error {
	var out []store.PaidTemplate
	err := s.Store.Read(c.Request().Context(), func(r *store.Reader) error {
		var err error
		out, err = r.PaidTemplates(c.Request().Context())
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"templates": out})
}

func (s *Server) apiGetPaidSettings(c echo.Context) error {
	set, err := s.Store.PaidSettings(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, set)
}

func (s *Server) apiPutPaidSettings(c echo.Context) error {
	var set store.PaidSettings
	if err := decodeJSON(c, &set); err != nil {
		return err
	}
	saved, err := s.Store.SavePaidSettings(c.Request().Context(), currentAgent(c).ID, set)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, saved)
}

func (s *Server) apiAddPaidTemplate(c echo.Context) error {
	var req struct {
		Name string `json:"name"`
		Body string `json:"body"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	t, err := s.Store.AddPaidTemplate(c.Request().Context(), currentAgent(c).ID, req.Name, req.Body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, t)
}

func (s *Server) apiDeletePaidTemplate(c echo.Context) error {
	id, err := pathID(c, "tid")
	if err != nil {
		return err
	}
	if err := s.Store.DeletePaidTemplate(c.Request().Context(), currentAgent(c).ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) apiClearFlag(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var req struct {
		Note string `json:"note"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.Store.ClearFlag(c.Request().Context(), currentAgent(c).ID, id, c.Param("flag"), req.Note); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// paidPeriod reads ?from=YYYY-MM-DD&to=YYYY-MM-DD (UTC days, to exclusive);
// the default is the current month.
func paidPeriod(c echo.Context, now time.Time) (time.Time, time.Time, error) {
	from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	until := from.AddDate(0, 1, 0)
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &until}} {
		if v := c.QueryParam(p.name); v != "" {
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				return time.Time{}, time.Time{}, &store.InvalidError{Field: p.name, Message: p.name + ": want a date such as 2026-11-01."}
			}
			*p.dst = t
		}
	}
	if !until.After(from) {
		return time.Time{}, time.Time{}, &store.InvalidError{Field: "to", Message: "to must be after from."}
	}
	return from, until, nil
}

// apiPaidCosts is GET /api/v1/admin/paid-costs: paid messages summed by
// route, final channel and currency, quoted and billed.
func (s *Server) apiPaidCosts(c echo.Context) error {
	ctx := c.Request().Context()
	var out struct {
		From   time.Time         `json:"from"`
		To     time.Time         `json:"to"`
		Totals []store.PaidTotal `json:"totals"`
	}
	err := s.Store.Read(ctx, func(r *store.Reader) error {
		var err error
		if out.From, out.To, err = paidPeriod(c, r.Now()); err != nil {
			return err
		}
		out.Totals, err = r.PaidTotals(ctx, out.From, out.To)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

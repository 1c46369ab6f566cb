package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"sessiondesk/channel/routee"
	"sessiondesk/session"
	"sessiondesk/store"
	"sessiondesk/views"
)

// The pages' side of paid messages: the composer's paid mode, the thread's
// paid bubbles, the panel's flags and consent, and "Check with Routee".

// registerPaidPages adds the form endpoints of the pages.
func (s *Server) registerPaidPages(app *echo.Group) {
	app.POST("/c/:id/paid", s.paidForm)
	app.POST("/c/:id/reconcile", s.reconcileForm)
	app.POST("/c/:id/flags/:flag/clear", s.clearFlagForm, s.requireAdmin)
	s.registerPaidAdmin(app)
}

// paidBadge is how the thread marks a paid message.
func paidBadge(p *store.Paid) *views.PaidBadge {
	if p == nil {
		return nil
	}
	b := &views.PaidBadge{ImageURL: p.ImageURL, ButtonCaption: p.ButtonCaption, ButtonURL: p.ButtonURL}
	switch p.Route {
	case store.RouteFailover:
		b.Label = "Paid · Viber, then SMS"
	case store.RouteSMS:
		b.Label = "Paid SMS"
	default:
		b.Label = "Paid Viber message"
	}
	switch p.FinalChannel {
	case "sms":
		b.Carried = "Carried by SMS"
	case "viber":
		b.Carried = "Carried by Viber"
	}
	if p.Price != nil {
		b.Price = views.PriceText(*p.Price, p.Currency)
	} else {
		b.Price = "quoted " + views.PriceText(p.QuotedPrice, p.Currency)
	}
	return b
}

// paidComposer reads the composer's paid mode for a conversation.
func (s *Server) paidComposer(ctx context.Context, r *store.Reader, cv store.Conversation, now time.Time) (*views.PaidComposer, error) {
	set, err := s.Store.PaidSettings(ctx)
	if err != nil {
		return nil, err
	}
	flags, err := r.ConversationFlags(ctx, cv.ID)
	if err != nil {
		return nil, err
	}
	templates, err := r.PaidTemplates(ctx)
	if err != nil {
		return nil, err
	}
	st := session.StatusAt(cv.State, s.Store.Rules(), now)
	p := &views.PaidComposer{
		ConversationID: cv.ID, Offered: !st.CanSend && st.Refusal != nil && st.Refusal.Code != session.NeedsConfirmation,
		Country: cv.Contact.Country, Currency: set.Currency, SMS: set.SMSEnabled(), Promotional: set.Promotional,
		RequireTemplate: set.RequireTemplate,
	}
	price := func(route string) string {
		if v, ok := set.Price(route, cv.Contact.Country); ok {
			return views.PriceText(v, set.Currency)
		}
		return ""
	}
	p.ViberPrice, p.FailoverPrice, p.SMSPrice = price(store.RouteViber), price(store.RouteFailover), price(store.RouteSMS)
	for _, t := range templates {
		p.Templates = append(p.Templates, views.PaidTemplate{ID: t.ID, Name: t.Name, Body: t.Body})
	}
	for _, f := range flags {
		switch f.Flag {
		case store.FlagOptedOut, store.FlagBlocked:
			p.Blocked = fmt.Sprintf("The client %s (%s): a paid message goes only after they write again or an admin clears the flag in the contact panel.",
				f.Text, f.Reason)
		case store.FlagNotViberUser:
			p.NotViber = true
		default:
			p.Warnings = append(p.Warnings, fmt.Sprintf("The client %s (%s): the message may not arrive on Viber.", f.Text, f.Reason))
		}
	}
	return p, nil
}

// paidPanel reads the panel's flags and last consent.
func (s *Server) paidPanel(ctx context.Context, r *store.Reader, convID int64) (*views.PaidPanel, error) {
	flags, err := r.ConversationFlags(ctx, convID)
	if err != nil {
		return nil, err
	}
	p := &views.PaidPanel{ExportURL: s.path(fmt.Sprintf("/api/v1/conversations/%d/consent?download=1", convID))}
	for _, f := range flags {
		p.Flags = append(p.Flags, views.ContactFlag{Flag: f.Flag, Text: f.Text, Reason: f.Reason, SetAt: f.SetAt.In(time.Local),
			ClearURL: s.path(fmt.Sprintf("/c/%d/flags/%s/clear", convID, f.Flag))})
	}
	consent, err := r.LastConsent(ctx, convID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		p.ConsentAt, p.Consent = consent.At.In(time.Local), consent.Text
		if p.Consent == "" {
			p.Consent = "[" + consent.Kind + "]"
		}
	}
	return p, nil
}

// paidForm is the composer's paid mode: the first submit answers the
// confirmation with the price; the confirmed one queues the message.
func (s *Server) paidForm(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	req := paidRequest{Paid: true, ConfirmCost: c.FormValue("confirm_cost") == "1", ImageURL: c.FormValue("image_url")}
	switch c.FormValue("route") {
	case store.RouteSMS:
		req.Channel = "sms"
	case store.RouteFailover:
		req.Fallback = true
	}
	if c.FormValue("button_caption") != "" || c.FormValue("button_url") != "" {
		req.Button = &struct {
			Caption string `json:"caption"`
			URL     string `json:"url"`
		}{c.FormValue("button_caption"), c.FormValue("button_url")}
	}
	req.TemplateID, _ = strconv.ParseInt(c.FormValue("template_id"), 10, 64)
	if v, err := strconv.ParseFloat(c.FormValue("confirm_price"), 64); err == nil {
		req.ConfirmPrice = &v // the price the confirmation showed
	}
	text := strings.ReplaceAll(c.FormValue("text"), "\r\n", "\n")
	ps, err := paidSend(id, currentAgent(c).ID, text, req)
	if err == nil {
		_, err = s.Store.AcceptPaidMessage(ctx, ps)
	}
	if c.Request().Header.Get("HX-Request") != "true" && err == nil {
		return c.Redirect(http.StatusSeeOther, s.path("/c/"+strconv.FormatInt(id, 10)))
	}
	var view *views.PaidComposer
	rerr := s.Store.Read(ctx, func(r *store.Reader) error {
		cv, err := r.Conversation(ctx, id)
		if err != nil {
			return err
		}
		view, err = s.paidComposer(ctx, r, cv, r.Now())
		return err
	})
	if rerr != nil {
		return rerr
	}
	var (
		ce      *store.CostError
		refusal *session.Refusal
		invalid *store.InvalidError
	)
	keep := func() {
		view.Text, view.ImageURL, view.Route, view.TemplateID = text, req.ImageURL, ps.Route, req.TemplateID
		if req.Button != nil {
			view.ButtonCaption, view.ButtonURL = req.Button.Caption, req.Button.URL
		}
	}
	switch {
	case err == nil:
		view.Sent = true
	case errors.As(err, &ce):
		keep()
		view.Confirm = &views.PaidQuote{Price: views.PriceText(ce.Quote.Price, ce.Quote.Currency), Route: ce.Quote.Route,
			RouteTxt: paidRouteText(ce.Quote.Route), Amount: strconv.FormatFloat(ce.Quote.Price, 'f', -1, 64)}
	case errors.As(err, &refusal):
		keep()
		view.Error = refusal.Message
	case errors.As(err, &invalid):
		keep()
		view.Error = invalid.Message
	default:
		return err
	}
	return s.render(c, http.StatusOK, views.PaidForm(s.chrome(c, ""), *view))
}

func paidRouteText(route string) string {
	switch route {
	case store.RouteFailover:
		return "a paid Viber message, then an SMS if Viber cannot deliver it,"
	case store.RouteSMS:
		return "an SMS"
	}
	return "a paid Viber message"
}

// reconcileForm is "Check with Routee" in the conversation's menu.
func (s *Server) reconcileForm(c echo.Context) error {
	id, res, err := s.reconcile(c)
	if err != nil {
		return err
	}
	if c.Request().Header.Get("HX-Request") != "true" {
		return c.Redirect(http.StatusSeeOther, s.path("/c/"+strconv.FormatInt(id, 10)))
	}
	return s.render(c, http.StatusOK, views.ReconcileView(reconcileView(res)))
}

func reconcileView(res routee.Reconciliation) views.ReconcileResult {
	v := views.ReconcileResult{Checked: res.Checked, Missing: len(res.Missing), Skipped: len(res.Skipped),
		RouteeSessions: res.RouteeSessions, OurSessions: res.OurSessions, Unknown: len(res.UnknownAtRoutee), Errors: res.Errors}
	for _, ch := range res.Changes {
		line := fmt.Sprintf("Message %d: %s → %s", ch.MessageID, ch.From, ch.To)
		if ch.Reason != "" {
			line += " (" + ch.Reason + ")"
		}
		if len(ch.Flags) > 0 {
			line += "; the contact is flagged " + strings.Join(ch.Flags, ", ")
		}
		v.Changes = append(v.Changes, line)
	}
	return v
}

// clearFlagForm is an admin clearing a contact's flag from the panel.
func (s *Server) clearFlagForm(c echo.Context) error {
	id, err := conversationID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var contactID int64
	err = s.Store.Read(ctx, func(r *store.Reader) error {
		cv, err := r.Conversation(ctx, id)
		contactID = cv.Contact.ID
		return err
	})
	if err != nil {
		return err
	}
	if err := s.Store.ClearFlag(ctx, currentAgent(c).ID, contactID, c.Param("flag"), c.FormValue("note")); err != nil {
		return err
	}
	if c.Request().Header.Get("HX-Request") != "true" {
		return c.Redirect(http.StatusSeeOther, s.path("/c/"+strconv.FormatInt(id, 10)))
	}
	return c.NoContent(http.StatusNoContent)
}

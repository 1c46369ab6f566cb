package handlers

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"sessiondesk/store"
	"sessiondesk/views"
)

// The admin page of paid messages: prices, SMS sender, what is allowed, and
// the templates. Plain forms, like the other admin pages.

func (s *Server) registerPaidAdmin(app *echo.Group) {
	adm := app.Group("/admin/paid", s.requireAdmin)
	adm.GET("", s.adminPaid)
	adm.POST("", s.adminSavePaid)
	adm.POST("/templates", s.adminAddTemplate)
	adm.POST("/templates/:tid/delete", s.adminDeleteTemplate)
}

// ratesText writes rates one "XX price" per line, "*" last.
func ratesText(rates map[string]float64) string {
	keys := make([]string, 0, len(rates))
	for k := range rates {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[j] == "*" || (keys[i] != "*" && keys[i] < keys[j]) })
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s\n", k, strconv.FormatFloat(rates[k], 'f', -1, 64))
	}
	return b.String()
}

// parseRates reads the form's "XX price" lines.
func parseRates(field, text string) (map[string]float64, error) {
	out := make(map[string]float64)
	for i, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(strings.Replace(f[len(f)-1], ",", ".", 1), 64)
		if len(f) != 2 || err != nil {
			return nil, &store.InvalidError{Field: field, Message: fmt.Sprintf("Line %d: write a country code and a price, such as \"BY 0.031\".", i+1)}
		}
		out[f[0]] = v
	}
	return out, nil
}

func (s *Server) adminPaidPage(c echo.Context, set store.PaidSettings) (views.AdminPaidPage, error) {
	p := views.AdminPaidPage{Chrome: s.chrome(c, "Paid messages"), Currency: set.Currency,
		ViberRates: ratesText(set.ViberRates), SMSRates: ratesText(set.SMSRates), SMSSender: set.SMSSender,
		Promotional: set.Promotional, RequireTemplate: set.RequireTemplate}
	err := s.Store.Read(c.Request().Context(), func(r *store.Reader) error {
		ts, err := r.PaidTemplates(c.Request().Context())
		if err != nil {
			return err
		}
		for _, t := range ts {
			p.Templates = append(p.Templates, views.PaidTemplate{ID: t.ID, Name: t.Name, Body: t.Body})
		}
		now := r.Now()
		from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		totals, err := r.PaidTotals(c.Request().Context(), from, from.AddDate(0, 1, 0))
		for _, t := range totals {
			p.Totals = append(p.Totals, paidTotalText(t))
		}
		return err
	})
	return p, err
}

func (s *Server) adminPaid(c echo.Context) error {
	set, err := s.Store.PaidSettings(c.Request().Context())
	if err != nil {
		return err
	}
	p, err := s.adminPaidPage(c, set)
	if err != nil {
		return err
	}
	p.Saved = c.QueryParam("saved") == "1"
	return s.render(c, http.StatusOK, views.AdminPaid(p))
}

func (s *Server) adminSavePaid(c echo.Context) error {
	set := store.PaidSettings{Currency: c.FormValue("currency"), SMSSender: c.FormValue("sms_sender"),
		Promotional: c.FormValue("promotional") == "1", RequireTemplate: c.FormValue("require_template") == "1"}
	var err error
	if set.ViberRates, err = parseRates("viber_rates", c.FormValue("viber_rates")); err == nil {
		set.SMSRates, err = parseRates("sms_rates", c.FormValue("sms_rates"))
	}
	if err == nil {
		_, err = s.Store.SavePaidSettings(c.Request().Context(), currentAgent(c).ID, set)
	}
	var invalid *store.InvalidError
	if errors.As(err, &invalid) {
		p, perr := s.adminPaidPage(c, set)
		if perr != nil {
			return perr
		}
		p.ViberRates, p.SMSRates, p.Error = c.FormValue("viber_rates"), c.FormValue("sms_rates"), invalid.Message
		return s.render(c, http.StatusUnprocessableEntity, views.AdminPaid(p))
	}
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, s.path("/admin/paid?saved=1"))
}

func (s *Server) adminAddTemplate(c echo.Context) error {
	if _, err := s.Store.AddPaidTemplate(c.Request().Context(), currentAgent(c).ID, c.FormValue("name"), c.FormValue("body")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, s.path("/admin/paid?saved=1"))
}

func (s *Server) adminDeleteTemplate(c echo.Context) error {
	id, err := pathID(c, "tid")
	if err != nil {
		return err
	}
	if err := s.Store.DeletePaidTemplate(c.Request().Context(), currentAgent(c).ID, id); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, s.path("/admin/paid?saved=1"))
}

// paidTotalText is one line of the month's paid messages.
func paidTotalText(t store.PaidTotal) string {
	line := fmt.Sprintf("%d %s", t.Count, paidRouteName(t.Route))
	if t.Channel != "" {
		line += ", carried by " + strings.ToUpper(t.Channel[:1]) + t.Channel[1:]
	}
	line += ": quoted " + views.PriceText(math.Round(t.Quoted*1e6)/1e6, t.Currency)
	if t.Reported > 0 {
		line += fmt.Sprintf(", billed %s for %d reported", views.PriceText(math.Round(t.Billed*1e6)/1e6, t.Currency), t.Reported)
	}
	return line
}

func paidRouteName(route string) string {
	switch route {
	case store.RouteFailover:
		return "Viber-then-SMS"
	case store.RouteSMS:
		return "SMS"
	}
	return "paid Viber"
}

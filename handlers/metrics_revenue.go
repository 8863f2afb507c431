package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/models"
)

// metricsRevenue reports revenue per month and store, members against anonymous sales:
// GET /metrics/revenue?from=&to=&store= (dates, to exclusive). Without dates, the current month
// and the twelve before it (models.RevenueRange); with from alone, up to the end of this month.
func (s *Server) metricsRevenue(c echo.Context) error {
	from, to, err := s.revenueRange(c.QueryParam("from"), c.QueryParam("to"))
	if err != nil {
		return err
	}
	rows, err := s.db.Revenue(c.Request().Context(), from, to, c.QueryParam("store"))
	if err != nil {
		return err
	}
	for i := range rows {
		finite(&rows[i].MemberShare, &rows[i].AOVMembers, &rows[i].AOVAnonymous)
	}
	if rows == nil {
		rows = []models.RevenueRow{}
	}
	return c.JSON(http.StatusOK, map[string]any{
		"from": from.Format(time.DateOnly), "to": to.Format(time.DateOnly), "rows": rows})
}

// revenueRange reads the from and to dates of a revenue report, each defaulting as
// models.RevenueRange does for today in the shop's time zone.
func (s *Server) revenueRange(fromParam, toParam string) (from, to time.Time, err error) {
	from, to = models.RevenueRange(s.db.Now().In(s.tz))
	if toParam != "" {
		if to, err = parseDate("to", toParam); err != nil {
			return
		}
		if fromParam == "" {
			from, _ = models.RevenueRange(to.AddDate(0, 0, -1))
		}
	}
	if fromParam != "" {
		from, err = parseDate("from", fromParam)
	}
	return
}

// metricsCategories reports per category what a segment's members bought in the 365 days before
// as_of: GET /metrics/categories?segment=&as_of=. segment is named as in GET /metrics/segments
// (all by default); as_of is a date (the instant it begins in the shop's time zone), now when
// absent.
func (s *Server) metricsCategories(c echo.Context) error {
	asOf := s.db.Now().In(s.tz)
	if v := c.QueryParam("as_of"); v != "" {
		d, err := parseDate("as_of", v)
		if err != nil {
			return err
		}
		asOf = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, s.tz)
	}
	rep, err := segments.Categories(c.Request().Context(), s.db, c.QueryParam("segment"), asOf)
	if err != nil {
		return err
	}
	for i := range rep.Categories {
		finite(&rep.Categories[i].RepeatRate)
	}
	return c.JSON(http.StatusOK, rep)
}

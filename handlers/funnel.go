package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

// funnelDefaultDays is the range the funnel shows when from is left out.
const funnelDefaultDays = 30

// joinFunnel shows the join funnel per day, store and source, with totals. to defaults to
// today in REGULARS_TIMEZONE, from to the 30 days ending at to.
func (s *Server) joinFunnel(c echo.Context) error {
	y, m, d := s.db.Now().In(s.tz).Date()
	to := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	fe := models.FieldErrors{}
	if v := c.QueryParam("to"); v != "" {
		var err error
		if to, err = time.Parse(time.DateOnly, v); err != nil {
			fe.Add("to", "must be a date YYYY-MM-DD")
		}
	}
	from := to.AddDate(0, 0, -(funnelDefaultDays - 1))
	if v := c.QueryParam("from"); v != "" {
		var err error
		if from, err = time.Parse(time.DateOnly, v); err != nil {
			fe.Add("from", "must be a date YYYY-MM-DD")
		}
	}
	if err := fe.Err("invalid funnel query"); err != nil {
		return err
	}
	store := c.QueryParam("store")
	days, totals, err := s.db.JoinFunnel(c.Request().Context(), from, to, store)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{
		"from": from.Format(time.DateOnly), "to": to.Format(time.DateOnly), "store": store,
		"days": days, "totals": totals,
	})
}

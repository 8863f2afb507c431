package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns/tracking"
)

// bounceWebhook records a bounce reported by the mail provider. The provider's webhook is
// configured with an admin API token (Authorization: Bearer …).
func (s *Server) bounceWebhook(c echo.Context) error {
	var in tracking.BounceInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	out, err := tracking.RecordBounce(c.Request().Context(), s.db, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

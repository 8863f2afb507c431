package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

// createRedemption is POST /redemptions: idempotent by (store, id) as transactions are.
func (s *Server) createRedemption(c echo.Context) error {
	var in models.RedemptionInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	r, outcome, err := s.db.Redeem(c.Request().Context(), principal(c), in)
	if err != nil {
		return err
	}
	if outcome == models.Replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
		return c.JSON(http.StatusOK, r)
	}
	return c.JSON(http.StatusCreated, r)
}

func (s *Server) cancelRedemption(c echo.Context) error {
	r, err := s.db.CancelRedemption(c.Request().Context(), principal(c), c.Param("store"), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

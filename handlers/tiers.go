package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

func (s *Server) listTiers(c echo.Context) error {
	tiers, err := s.db.FindTiers(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tierList(tiers))
}

func (s *Server) replaceTiers(c echo.Context) error {
	var in struct {
		Tiers *[]models.TierInput `json:"tiers"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Tiers == nil {
		return &models.Error{Code: models.EINVALID, Message: "invalid tiers",
			Fields: map[string]string{"tiers": "is required: the whole ladder, [] for none"}}
	}
	tiers, err := s.db.ReplaceTiers(c.Request().Context(), *in.Tiers)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tierList(tiers))
}

// tierList is the body of both tier routes; an empty ladder is [], not null.
func tierList(tiers []models.Tier) map[string]any {
	if tiers == nil {
		tiers = []models.Tier{}
	}
	return map[string]any{"tiers": tiers}
}

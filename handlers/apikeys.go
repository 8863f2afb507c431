package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

// listAPIKeys lists every API key with its use and state; never a token or its hash.
func (s *Server) listAPIKeys(c echo.Context) error {
	keys, err := s.db.FindAPIKeys(c.Request().Context())
	if err != nil {
		return err
	}
	if keys == nil {
		keys = []models.APIKeyInfo{} // an empty list, not null
	}
	return c.JSON(http.StatusOK, map[string]any{"keys": keys})
}

// revokeAPIKey revokes a key: every replica refuses it within models.RevocationCheckEvery.
func (s *Server) revokeAPIKey(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return models.Errorf(models.ENOTFOUND, "no API key %q", c.Param("id"))
	}
	k, err := s.db.RevokeAPIKey(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, k)
}

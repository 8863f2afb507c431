package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

func (s *Server) createStore(c echo.Context) error {
	var in models.StoreInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	st, err := s.db.CreateStore(c.Request().Context(), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, st)
}

func (s *Server) listStores(c echo.Context) error {
	stores, err := s.db.FindStores(c.Request().Context())
	if err != nil {
		return err
	}
	if stores == nil {
		stores = []models.Store{} // an empty list, not null
	}
	return c.JSON(http.StatusOK, map[string]any{"stores": stores})
}

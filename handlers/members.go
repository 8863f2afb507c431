package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

func (s *Server) createMember(c echo.Context) error {
	var in models.MemberInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p := principal(c)
	ev := models.ConsentEvidence{Source: "till", IP: c.RealIP(), UserAgent: p.Role + ":" + p.Name}
	if p.Role == models.RoleAdmin {
		ev.Source = "admin"
	}
	m, err := s.db.CreateMember(c.Request().Context(), p, in, ev)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, m)
}

func (s *Server) lookupMember(c echo.Context) error {
	m, err := s.db.LookupMember(c.Request().Context(), c.QueryParam("card"), c.QueryParam("email"), c.QueryParam("phone"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

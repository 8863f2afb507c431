package handlers

import (
	"net/http"
	"strconv"

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
	if m.MarketingConsent == models.ConsentPending && s.club.MailQueued != nil {
		s.club.MailQueued() // the consent confirmation mail waits in the queue
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

// memberID reads the :id path parameter; anything but a positive integer names no member.
func memberID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, models.Errorf(models.ENOTFOUND, "no member %q", c.Param("id"))
	}
	return id, nil
}

func (s *Server) getMember(c echo.Context) error {
	id, err := memberID(c)
	if err != nil {
		return err
	}
	m, err := s.db.FindMemberByID(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

// updateMember is the admin's PATCH. An admin may correct details and withdraw marketing
// consent, but not give it: consent is the member's own answer (the till, the join form or
// their preferences page), never the shop's.
func (s *Server) updateMember(c echo.Context) error {
	id, err := memberID(c)
	if err != nil {
		return err
	}
	var in models.PreferencesInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.MarketingConsent != nil && *in.MarketingConsent {
		return &models.Error{Code: models.EINVALID, Message: "invalid member update",
			Fields: map[string]string{"marketing_consent": "only the member can give consent; an admin may only withdraw it (false)"}}
	}
	p := principal(c)
	ev := models.ConsentEvidence{Source: "admin", IP: c.RealIP(), UserAgent: p.Role + ":" + p.Name}
	m, err := s.db.UpdatePreferences(c.Request().Context(), id, in, ev)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

func (s *Server) eraseMember(c echo.Context) error {
	id, err := memberID(c)
	if err != nil {
		return err
	}
	if err := s.db.EraseMember(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) exportMember(c echo.Context) error {
	id, err := memberID(c)
	if err != nil {
		return err
	}
	x, err := s.db.ExportMember(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, x)
}

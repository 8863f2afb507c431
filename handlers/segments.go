package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/models"
)

// defaultMembersPage is the page size of GET /segments/{id}/members without ?limit=.
const defaultMembersPage = 100

// segmentID reads the :id path parameter; anything but a positive integer names no segment.
func segmentID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, models.Errorf(models.ENOTFOUND, "no segment %q", c.Param("id"))
	}
	return id, nil
}

func (s *Server) listSegments(c echo.Context) error {
	list, err := segments.List(c.Request().Context(), s.db)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"segments": list})
}

// segmentFields is the field registry, for the console's segment builder.
func (s *Server) segmentFields(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"fields": segments.Fields()})
}

func (s *Server) createSegment(c echo.Context) error {
	var in segments.SavedInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	saved, err := segments.Create(c.Request().Context(), s.db, in)
	if err != nil {
		return err
	}
	// The answer holds the live counts and sample, as GET does, so the console need not ask again.
	d, err := segments.Get(c.Request().Context(), s.db, saved.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, d)
}

func (s *Server) getSegment(c echo.Context) error {
	id, err := segmentID(c)
	if err != nil {
		return err
	}
	d, err := segments.Get(c.Request().Context(), s.db, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) updateSegment(c echo.Context) error {
	id, err := segmentID(c)
	if err != nil {
		return err
	}
	var in segments.SavedPatch
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if _, err := segments.Update(c.Request().Context(), s.db, id, in); err != nil {
		return err
	}
	d, err := segments.Get(c.Request().Context(), s.db, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) deleteSegment(c echo.Context) error {
	id, err := segmentID(c)
	if err != nil {
		return err
	}
	if err := segments.Delete(c.Request().Context(), s.db, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) segmentMembers(c echo.Context) error {
	id, err := segmentID(c)
	if err != nil {
		return err
	}
	fe := models.FieldErrors{}
	limit, after := defaultMembersPage, int64(0)
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			fe.Add("limit", "must be an integer")
		}
		limit = n
	}
	if v := c.QueryParam("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			fe.Add("after", "must be a member id")
		}
		after = n
	}
	if err := fe.Err("invalid page"); err != nil {
		return err
	}
	page, err := segments.Members(c.Request().Context(), s.db, id, limit, after)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

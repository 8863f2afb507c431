package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/regulars/regulars/campaigns/feedback"
	"github.com/regulars/regulars/flows"
	"github.com/regulars/regulars/models"
)

// flowID reads the :id path parameter; anything but a positive integer is not found.
func flowID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, models.Errorf(models.ENOTFOUND, "no flow %q", c.Param("id"))
	}
	return id, nil
}

// flowInput reads a flow request body: JSON within the body limit, then flows.ParseInput's
// strict checks with JSON paths.
func flowInput(c echo.Context) (*flows.Input, error) {
	var raw json.RawMessage
	if err := decodeJSON(c, &raw); err != nil {
		return nil, err
	}
	return flows.ParseInput(raw)
}

func (s *Server) listFlows(c echo.Context) error {
	list, err := flows.FindFlows(c.Request().Context(), s.db)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"flows": list})
}

func (s *Server) createFlow(c echo.Context) error {
	in, err := flowInput(c)
	if err != nil {
		return err
	}
	out, err := flows.Create(c.Request().Context(), s.db, s.campaigns.From, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) getFlow(c echo.Context) error {
	id, err := flowID(c)
	if err != nil {
		return err
	}
	out, err := flows.FindFlowByID(c.Request().Context(), s.db, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) updateFlow(c echo.Context) error {
	id, err := flowID(c)
	if err != nil {
		return err
	}
	in, err := flowInput(c)
	if err != nil {
		return err
	}
	out, err := flows.Update(c.Request().Context(), s.db, s.campaigns.From, id, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) activateFlow(c echo.Context) error { return s.flowState(c, flows.Activate) }
func (s *Server) pauseFlow(c echo.Context) error    { return s.flowState(c, flows.Pause) }

func (s *Server) flowState(c echo.Context, change func(ctx context.Context, db *models.DB, id int64) (*flows.Flow, error)) error {
	id, err := flowID(c)
	if err != nil {
		return err
	}
	out, err := change(c.Request().Context(), s.db, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) flowStats(c echo.Context) error {
	id, err := flowID(c)
	if err != nil {
		return err
	}
	out, err := flows.FindFlowStats(c.Request().Context(), s.db, id, s.tracking.AttributionDays)
	if err != nil {
		return err
	}
	paused, err := feedback.FlowAutoPause(c.Request().Context(), s.db, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct {
		*flows.Stats
		AutoPaused *feedback.AutoPause `json:"auto_paused"`
	}{out, paused})
}

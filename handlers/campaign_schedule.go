package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/dispatch"
	"github.com/regulars/regulars/models"
)

// scheduleCampaign sets a campaign's schedule: {send_at} or {cron, timezone}.
func (s *Server) scheduleCampaign(c echo.Context) error {
	id, err := campaignID(c)
	if err != nil {
		return err
	}
	var body struct {
		SendAt   *string `json:"send_at"`
		Cron     *string `json:"cron"`
		Timezone *string `json:"timezone"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	in := dispatch.ScheduleInput{Cron: body.Cron, Timezone: body.Timezone}
	if body.SendAt != nil {
		at, err := time.Parse(time.RFC3339, *body.SendAt)
		if err != nil {
			return &models.Error{Code: models.EINVALID, Message: "invalid schedule",
				Fields: map[string]string{"send_at": "must be an RFC 3339 time such as 2026-12-01T09:00:00+01:00"}}
		}
		in.SendAt = &at
	}
	out, err := dispatch.Schedule(c.Request().Context(), s.db, id, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// sendCampaignNow makes a one-off run at the current time (dispatch.SendNow): 200 with the
// campaign scheduled for now; its run starts within about two seconds.
func (s *Server) sendCampaignNow(c echo.Context) error {
	return s.campaignStateChange(dispatch.SendNow)(c)
}

func (s *Server) pauseCampaign(c echo.Context) error { return s.campaignStateChange(dispatch.Pause)(c) }
func (s *Server) resumeCampaign(c echo.Context) error {
	return s.campaignStateChange(dispatch.Resume)(c)
}
func (s *Server) cancelCampaign(c echo.Context) error {
	return s.campaignStateChange(dispatch.Cancel)(c)
}

// campaignStateChange serves send now, pause, resume and cancel, which take no body.
func (s *Server) campaignStateChange(change func(context.Context, *models.DB, int64) (*campaigns.Campaign, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := campaignID(c)
		if err != nil {
			return err
		}
		out, err := change(c.Request().Context(), s.db, id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, out)
	}
}

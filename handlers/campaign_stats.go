package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns/feedback"
	"github.com/regulars/regulars/campaigns/tracking"
)

// TrackingOptions configure the campaign statistics.
type TrackingOptions struct {
	// AttributionDays is N of the attribution window (REGULARS_ATTRIBUTION_DAYS); 0: 7.
	AttributionDays int
	// CostPerMail is the cost of one mail in minor units (REGULARS_COST_PER_MAIL); 0: no ROI.
	CostPerMail int64
}

func (s *Server) campaignStats(c echo.Context) error {
	id, err := campaignID(c)
	if err != nil {
		return err
	}
	out, err := tracking.FindCampaignStats(c.Request().Context(), s.db, id, tracking.StatsOptions{
		AttributionDays: s.tracking.AttributionDays, CostPerMail: s.tracking.CostPerMail})
	if err != nil {
		return err
	}
	paused, err := feedback.CampaignAutoPause(c.Request().Context(), s.db, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct {
		*tracking.Stats
		AutoPaused *feedback.AutoPause `json:"auto_paused"`
	}{out, paused})
}

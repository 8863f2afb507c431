package handlers

import (
	"context"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns/feedback"
	"github.com/regulars/regulars/models"
)

// autoPauseNotice is the report page's one-line notice: notice (after a redirect) when set,
// else why the auto-pause rule stopped the campaign or flow id (find: feedback's
// CampaignAutoPause or FlowAutoPause), else nothing. A failed read is logged, never the page's
// failure.
func (cn *console) autoPauseNotice(c echo.Context, notice string,
	find func(context.Context, *models.DB, int64) (*feedback.AutoPause, error), id int64) string {
	if notice != "" {
		return notice
	}
	p, err := find(c.Request().Context(), cn.s.db, id)
	if err != nil {
		cn.s.log.Error("auto-pause notice", "id", id, "err", err)
		return ""
	}
	if p == nil {
		return ""
	}
	return "Paused automatically on " + p.At.In(cn.s.tz).Format("2 Jan 2006 15:04") + ": " + p.Reason +
		". Clean the list, then resume."
}

package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/models"
)

// CampaignOptions configure the campaign routes.
type CampaignOptions struct {
	// Mail delivers test sends; without it POST /campaigns/{id}/test fails with 500.
	Mail mailer.Sender
	// BaseURL is the public address of the server (REGULARS_BASE_URL), for the links in
	// previews and test sends.
	BaseURL string
	// From is the author of campaigns that name none (REGULARS_MAIL_FROM).
	From string
	// Shop fills the console's starter templates (REGULARS_SHOP_*); a zero Shop: the name in
	// From and the default colour.
	Shop campaigns.Shop
}

func (s *Server) campaignConfig() campaigns.Config {
	return campaigns.Config{BaseURL: s.campaigns.BaseURL, DefaultFrom: s.campaigns.From}
}

// campaignID reads the :id path parameter; anything but a positive integer is not found.
func campaignID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, models.Errorf(models.ENOTFOUND, "no campaign %q", c.Param("id"))
	}
	return id, nil
}

func (s *Server) listCampaigns(c echo.Context) error {
	list, err := campaigns.List(c.Request().Context(), s.db)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"campaigns": list})
}

func (s *Server) createCampaign(c echo.Context) error {
	var in campaigns.Input
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	out, err := campaigns.Create(c.Request().Context(), s.db, s.campaigns.From, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) getCampaign(c echo.Context) error {
	id, err := campaignID(c)
	if err != nil {
		return err
	}
	out, err := campaigns.Get(c.Request().Context(), s.db, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) updateCampaign(c echo.Context) error {
	id, err := campaignID(c)
	if err != nil {
		return err
	}
	var in campaigns.Input
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	out, err := campaigns.Update(c.Request().Context(), s.db, s.campaigns.From, id, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) previewCampaign(c echo.Context) error {
	id, err := campaignID(c)
	if err != nil {
		return err
	}
	var in struct {
		MemberID *int64 `json:"member_id"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.MemberID == nil {
		return &models.Error{Code: models.EINVALID, Message: "invalid preview",
			Fields: map[string]string{"member_id": "is required"}}
	}
	out, err := campaigns.Preview(c.Request().Context(), s.db, s.campaignConfig(), id, *in.MemberID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) testCampaign(c echo.Context) error {
	id, err := campaignID(c)
	if err != nil {
		return err
	}
	var in struct {
		Addresses []string `json:"addresses"`
		MemberID  *int64   `json:"member_id"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	n, err := s.testSend(c, apiMarketer(c), id, in.Addresses, in.MemberID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]int{"sent": n})
}

package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

func (s *Server) getRewardProgram(c echo.Context) error {
	p, err := s.db.FindRewardProgram(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) setRewardProgram(c echo.Context) error {
	var in models.RewardProgramInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p, err := s.db.SetRewardProgram(c.Request().Context(), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) listRewards(c echo.Context) error {
	rewards, err := s.db.FindRewards(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"rewards": rewards})
}

func (s *Server) createReward(c echo.Context) error {
	var in models.RewardInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	r, err := s.db.CreateReward(c.Request().Context(), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

func (s *Server) updateReward(c echo.Context) error {
	var in models.RewardInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	r, err := s.db.UpdateReward(c.Request().Context(), c.Param("code"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (s *Server) createVoucher(c echo.Context) error {
	id, err := memberID(c)
	if err != nil {
		return err
	}
	var in models.VoucherInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	v, err := s.db.CreateVoucher(c.Request().Context(), id, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, v)
}

// memberPoints is a member's balance and a page of the ledger, newest first: ?limit= (1-500,
// default 50) and ?before= (the next_before of the page before).
func (s *Server) memberPoints(c echo.Context) error {
	id, err := memberID(c)
	if err != nil {
		return err
	}
	fe := models.FieldErrors{}
	limit, before := models.DefaultPointsPage, int64(0)
	if v := c.QueryParam("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil {
			fe.Add("limit", "must be an integer")
		}
	}
	if v := c.QueryParam("before"); v != "" {
		if before, err = strconv.ParseInt(v, 10, 64); err != nil || before <= 0 {
			fe.Add("before", "must be the next_before of the page before")
		}
	}
	if err := fe.Err("invalid page"); err != nil {
		return err
	}
	page, err := s.db.FindMemberPoints(c.Request().Context(), id, limit, before)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

// rewardsLiability reports the points outstanding as of ?as_of= (an RFC 3339 time; now when
// left out).
func (s *Server) rewardsLiability(c echo.Context) error {
	asOf := s.db.Now()
	if v := c.QueryParam("as_of"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return &models.Error{Code: models.EINVALID, Message: "invalid as_of",
				Fields: map[string]string{"as_of": "must be an RFC 3339 time with offset, such as 2026-12-31T23:59:59+01:00"}}
		}
		asOf = t
	}
	l, err := s.db.FindRewardsLiability(c.Request().Context(), asOf)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, l)
}

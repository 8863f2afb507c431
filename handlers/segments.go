package handlers

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

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

// listSegments shows the cached counts with counted_at; a segment not counted yet has nulls and
// is counted in the background.
func (s *Server) listSegments(c echo.Context) error {
	list, err := segments.List(c.Request().Context(), s.db)
	if err != nil {
		return err
	}
	s.countUncounted(list)
	return c.JSON(http.StatusOK, map[string]any{"segments": list})
}

// countUncounted counts, in the background, the listed segments whose rules have no counts yet
// (new since the last round, or listed for the first time after an upgrade), so that the next
// view shows them rather than waiting for the next round of jobs.CountSegments. A segment
// another request or replica is already counting is skipped at once.
func (s *Server) countUncounted(list []segments.Counted) {
	var ids []int64
	for _, sc := range list {
		if sc.CountedAt == nil {
			ids = append(ids, sc.ID)
		}
	}
	if len(ids) > 0 {
		// Any count of the current rules will do: another view may have had them counted since.
		s.countLater(ids, time.Unix(0, 0), false)
	}
}

// countLater recounts segments ids in the background, one after the other, each under
// segments.CountTimeout rather than the request's statement limit: a slow segment gets its
// counts even though no page may wait for them. notBefore and wait are segments.Recount's. One
// background count runs at a time in the process (countSlot): with wait the count queues for
// its turn, without it the count is left to a later view or to jobs.CountSegments when another
// is running, so that page views never hold more than one connection with counts.
func (s *Server) countLater(ids []int64, notBefore time.Time, wait bool) {
	if !wait {
		select {
		case s.countSlot <- struct{}{}:
		default:
			return
		}
	}
	go func() {
		if wait {
			s.countSlot <- struct{}{}
		}
		defer func() { <-s.countSlot }()
		for _, id := range ids {
			ctx, cancel := context.WithTimeout(context.Background(), segments.CountTimeout)
			_, err := segments.Recount(ctx, s.db, id, notBefore, wait)
			cancel()
			if err != nil {
				s.log.Warn("segment count failed", "segment", id, "err", err)
			}
		}
	}()
}

// countSaved recounts a segment just saved, in the background: the answer's live count may not
// finish within the statement limit, and the lists must not show the old rules' counts for
// long. It waits for a count of the old rules in progress, then counts unless a count at or
// after the save (the answer's own) is already cached.
func (s *Server) countSaved(id int64, savedAt time.Time) {
	s.countLater([]int64{id}, savedAt, true)
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
	s.countSaved(saved.ID, saved.UpdatedAt)
	return s.savedSegment(c, http.StatusCreated, saved)
}

// uncountedDetail is a segment just saved whose rules took too long to count while the request
// waited: null counts and no sample (they are counted in the background; see GET /segments).
type uncountedDetail struct {
	segments.Saved
	Members  *int64                  `json:"members"`
	Mailable *int64                  `json:"mailable"`
	Sample   []segments.SampleMember `json:"sample"`
}

// savedSegment answers a save with the segment's live counts and sample, as GET does, so the
// console need not ask again. The save has happened, so a count that takes more than half the
// statement limit must not turn the answer into an error (a client would retry and meet its
// own segment's name): the answer then has null counts.
func (s *Server) savedSegment(c echo.Context, status int, saved *segments.Saved) error {
	ctx := c.Request().Context()
	liveCtx, cancel := context.WithTimeout(ctx, s.statementLimit/2)
	d, err := segments.Get(liveCtx, s.db, saved.ID)
	cancel()
	switch {
	case err == nil:
		return c.JSON(status, d)
	case ctx.Err() == nil && errors.Is(liveCtx.Err(), context.DeadlineExceeded):
		return c.JSON(status, uncountedDetail{Saved: *saved, Sample: []segments.SampleMember{}})
	}
	return err
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
	saved, err := segments.Update(c.Request().Context(), s.db, id, in)
	if err != nil {
		return err
	}
	s.countSaved(id, saved.UpdatedAt)
	return s.savedSegment(c, http.StatusOK, saved)
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

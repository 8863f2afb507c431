package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// longRunning are the routes exempt from the statement limit, by method and route path: they
// start work that takes minutes by design (a metrics run is about a minute at 1M members,
// docs/benchmarks.md) and lift the write deadline for it (allowLongRun). Their statements
// still stop when the client goes away, through the request's own context. Jobs (the nightly
// metrics, campaign dispatch, imports, the demo fill) never run under a request context, so the
// limit does not reach them.
var longRunning = map[string]bool{
	http.MethodPost + " /api/v1/metrics/run":  true,
	http.MethodPost + " /console/metrics/run": true,
}

// statementDeadline gives every request a context deadline of the statement limit
// (REGULARS_STATEMENT_TIMEOUT). Every statement runs with the request's context, and the pool
// sends PostgreSQL a cancel request when that context ends (models.cancelOnServer), so a slow
// query stops on the server at the deadline, or as soon as the client goes away (net/http
// cancels the request's context then). A request that failed for either reason is marked here,
// where the two can still be told apart, for handleError.
func (s *Server) statementDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if longRunning[c.Request().Method+" "+c.Path()] {
			return next(c)
		}
		limit := s.statementLimit
		parent := c.Request().Context()
		ctx, cancel := context.WithTimeout(parent, limit)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		err := next(c)
		// The error page (handleError, after this returns) may read the database again: give
		// it back the request's own context rather than the one about to be cancelled.
		c.SetRequest(c.Request().WithContext(parent))
		if err == nil {
			return nil
		}
		switch {
		case parent.Err() != nil:
			return &clientGoneError{err: err}
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return &statementTimeoutError{limit: limit, err: err}
		}
		return err
	}
}

// statementTimeoutError is a request that ran out of its statement limit.
type statementTimeoutError struct {
	limit time.Duration
	err   error
}

func (e *statementTimeoutError) Error() string {
	return fmt.Sprintf("request over its %v statement limit: %v", e.limit, e.err)
}

func (e *statementTimeoutError) Unwrap() error { return e.err }

// clientGoneError is a request whose client went away before the answer.
type clientGoneError struct{ err error }

func (e *clientGoneError) Error() string { return "client went away: " + e.err.Error() }

func (e *clientGoneError) Unwrap() error { return e.err }

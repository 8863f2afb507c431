package handlers

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns"
)

// testSendsPerHour is how many addresses one marketer (an API key or a console user) may send
// test mails to an hour. A test send goes to any address a marketer types, with our DKIM
// signature, so without a limit it would be a way to mail strangers in bulk.
const testSendsPerHour = 50

// testSend is campaigns.TestSend counted against marketer's hourly allowance. Beyond it, it sets
// Retry-After and returns ERATELIMITED (429) without sending anything.
func (s *Server) testSend(c echo.Context, marketer string, id int64, addresses []string, sample *int64) (int, error) {
	ctx := c.Request().Context()
	send := func() (int, error) {
		return campaigns.TestSend(ctx, s.db, s.campaigns.Mail, s.campaignConfig(), id, addresses, sample)
	}
	n := len(addresses)
	if n == 0 || n > campaigns.MaxTestTargets {
		return send() // refused by TestSend (422 naming the field) before any mail: nothing to count
	}
	reservation, retryAfter, err := s.db.ReserveTestSends(ctx, marketer, n, testSendsPerHour, time.Hour)
	if err != nil {
		if retryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
		}
		return 0, err
	}
	sent, err := send()
	if sent < n {
		// Addresses never mailed (invalid, refused, repeated) do not use up the allowance; given
		// back even when the client has gone away.
		if rerr := s.db.ReleaseTestSends(context.WithoutCancel(ctx), reservation, n-sent); rerr != nil && err == nil {
			err = rerr
		}
	}
	return sent, err
}

// apiMarketer names the API key of this request for the test-send allowance.
func apiMarketer(c echo.Context) string {
	if p := principal(c); p != nil {
		return "key:" + strconv.FormatInt(p.KeyID, 10)
	}
	return "key:?"
}

// consoleMarketer names the console user of this request for the test-send allowance.
func consoleMarketer(c echo.Context) string {
	if u := currentConsoleUser(c); u != nil {
		return "user:" + strconv.FormatInt(u.ID, 10)
	}
	return "user:?"
}

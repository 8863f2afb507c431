package handlers

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns/tracking"
)

// pixelGIF is a transparent 1×1 GIF, the open-tracking image.
var pixelGIF = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// trackingSecret is the key of click and open tokens: the club's link secret
// (REGULARS_SECRET), the one the dispatcher signs with. Without one no token is accepted.
func (s *Server) trackingSecret() []byte { return s.club.Secret }

// trackingHeaders: the answers are personal (a token names a member), so not cached, and the
// token must not leak to the target site through Referer.
func trackingHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// click records a click on a tracked link and redirects to the link's stored URL. A bad
// token, or one naming a link not in the run's campaign, is the 404 page: the target is never
// read from the request, so /c/ is no open redirect.
func (s *Server) click(c echo.Context) error {
	trackingHeaders(c.Response().Header())
	secret := s.trackingSecret()
	if len(secret) == 0 {
		return echo.ErrNotFound
	}
	ref, err := tracking.VerifyClick(secret, c.Param("token"))
	if err != nil {
		return echo.ErrNotFound
	}
	target, err := tracking.RecordClick(c.Request().Context(), s.db, ref)
	if err != nil {
		if isNotFound(err) {
			return echo.ErrNotFound
		}
		return err
	}
	return c.Redirect(http.StatusFound, target)
}

// open records an open (when the campaign tracks opens) and answers the 1×1 image.
func (s *Server) open(c echo.Context) error {
	trackingHeaders(c.Response().Header())
	secret := s.trackingSecret()
	token, ok := strings.CutSuffix(c.Param("file"), ".gif")
	if len(secret) == 0 || !ok {
		return echo.ErrNotFound
	}
	ref, err := tracking.VerifyOpen(secret, token)
	if err != nil {
		return echo.ErrNotFound
	}
	if _, err := tracking.RecordOpen(c.Request().Context(), s.db, ref); err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "image/gif", pixelGIF)
}

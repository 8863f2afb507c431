package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Console form bodies are capped per route before anything reads them: without a cap, Go's form
// parser copies a multipart upload to a temporary file in full, so anyone (no login needed)
// could fill the disk through POST /console/login.
const (
	// consoleLoginBodyLimit fits an email, a password, the form token and a next path.
	consoleLoginBodyLimit = 8 << 10
	// consoleCampaignBodyLimit fits the campaign editor's HTML and text, each up to the API's
	// 1 MiB, form-encoded (which can grow them by half or more).
	consoleCampaignBodyLimit = 4 << 20
	// consoleSegmentBodyLimit fits a segment's rule tree at the API's 1 MiB, form-encoded.
	consoleSegmentBodyLimit = 2 << 20
	// consoleFormBodyLimit is every other console form: a few short fields.
	consoleFormBodyLimit = 64 << 10
)

// consoleBodyLimit is the largest body the console route accepts.
func consoleBodyLimit(route string) int64 {
	switch route {
	case "/console/login", "/console/logout":
		return consoleLoginBodyLimit
	case "/console/campaigns", "/console/campaigns/:id", "/console/flows", "/console/flows/:id":
		return consoleCampaignBodyLimit
	case "/console/segments", "/console/segments/:id":
		return consoleSegmentBodyLimit
	}
	return consoleFormBodyLimit
}

// limitConsoleBody refuses a body over the route's limit (413) before it is read, and parses a
// posted form within that limit. The form's memory limit equals the body limit, so no part of a
// multipart body can ever be written to a temporary file.
func limitConsoleBody(c echo.Context) error {
	r := c.Request()
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	limit := consoleBodyLimit(c.Path())
	tooLarge := echo.NewHTTPError(http.StatusRequestEntityTooLarge,
		fmt.Sprintf("The form is too large (over %d KiB). Shorten it and try again.", limit>>10))
	if r.ContentLength > limit {
		return tooLarge // refused on the header alone: nothing of the body is read
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
	var err error
	switch ct := r.Header.Get(echo.HeaderContentType); {
	case strings.HasPrefix(ct, echo.MIMEMultipartForm):
		err = r.ParseMultipartForm(limit)
	case strings.HasPrefix(ct, echo.MIMEApplicationForm):
		err = r.ParseForm()
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge
		}
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.").SetInternal(err)
	}
	return nil
}

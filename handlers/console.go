package handlers

// The marketers' console under /console/: server-rendered pages from templates/console, behind a
// login with server-side sessions. Its routes are in routes.go; each area's handlers are in its
// own file: console_auth.go (login, logout, sessions, roles), console_dashboard.go,
// console_segments.go, console_campaigns.go, console_members.go, and the owner's pages
// console_stores.go, console_keys.go, console_users.go, console_audit.go.

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// console holds what the console handlers need beyond the Server.
type console struct {
	s *Server
}

// consolePage is what every console template gets: the layout reads User, CSRF, Title, Nav and
// Flash; the page reads Data.
type consolePage struct {
	User  *consoleUser
	CSRF  string // the session's CSRF token, for every form's hidden _csrf field
	Title string
	Nav   string // dashboard, segments, campaigns, flows, members, rewards, stores, keys, users, audit, account: the highlighted menu entry
	Flash string // a one-line notice after a redirect ("Campaign scheduled")
	Data  any
	// MailPreview: the page shows a mail in a sandboxed srcdoc frame, which inherits the page's
	// Content-Security-Policy; mail HTML is styled inline and may show remote images (a logo),
	// so such a page allows inline styles and https images (scripts stay 'self' only).
	MailPreview bool
}

// consoleUser is the logged-in console user as pages see it.
type consoleUser struct {
	ID    int64
	Email string
	Role  string // admin or marketer
}

// render writes a console page with status.
func (cn *console) render(c echo.Context, status int, name string, page consolePage) error {
	if page.User == nil {
		page.User = currentConsoleUser(c)
	}
	if page.CSRF == "" {
		page.CSRF = consoleCSRF(c)
	}
	consoleHeaders(c.Response().Header())
	if page.MailPreview {
		c.Response().Header().Set("Content-Security-Policy", mailPreviewCSP)
	}
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	return cn.s.templates.Console(c.Response(), name, cn.s.tz, page)
}

// consoleHeaders are the security headers of every console response. Scripts only from our own
// static files (no inline script), so an injected value can never run.
func consoleHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// mailPreviewCSP is consoleHeaders' policy with inline styles and https images, for pages with a
// mail preview (consolePage.MailPreview). With images only from this server, data: and https
// (no other scheme), and no script but our own, inline CSS cannot run or exfiltrate anything.
const mailPreviewCSP = "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Messages of the console's error pages where the API's own would not do.
const (
	consoleInternalMessage  = "Something went wrong on our side; the request id in the logs has details."
	consoleNotFoundMessage  = "There is no such page in the console."
	campaignNotFoundMessage = "There is no such campaign."
)

// errorView is the console error page's data.
type errorView struct {
	Status  int
	Heading string
	Message string
}

// campaignErrorData is the campaign pages' error page's data.
type campaignErrorData struct {
	Status  int
	Message string
}

// renderFailure shows a failed console request as a console page, in the layout of the user's
// session when there is one; the campaign pages have an error page of their own that leads
// back to the campaigns.
func (cn *console) renderFailure(c echo.Context, f failure) error {
	if c.Request().Method == http.MethodHead {
		consoleHeaders(c.Response().Header())
		return c.NoContent(f.status)
	}
	status, message := f.status, f.body.Message
	if f.unexpected {
		message = consoleInternalMessage
	}
	if strings.HasPrefix(c.Path(), "/console/campaigns") {
		if status == http.StatusNotFound {
			message = campaignNotFoundMessage
		}
		return cn.render(c, status, "campaign_error", consolePage{Title: http.StatusText(status), Nav: "campaigns",
			Data: campaignErrorData{Status: status, Message: message}})
	}
	heading := http.StatusText(status)
	switch status {
	case http.StatusNotFound:
		message = consoleNotFoundMessage
	case http.StatusForbidden:
		heading = "Not allowed"
	}
	return cn.render(c, status, "error", consolePage{Title: heading,
		Data: errorView{Status: status, Heading: heading, Message: message}})
}

package handlers

// STUB: being written (login, logout, sessions, CSRF, roles, lock-out).

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

func (cn *console) authRoutes(g *echo.Group) {}

// session loads the session from its cookie (if any) into the context and checks the CSRF token
// of every POST.
func (cn *console) session(next echo.HandlerFunc) echo.HandlerFunc { return next }

// require lets only logged-in users with one of roles through; others go to the login page (no
// session) or get 403 (wrong role).
func (cn *console) require(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/console/login") }
	}
}

// currentConsoleUser is the logged-in user of this request, or nil.
func currentConsoleUser(c echo.Context) *consoleUser { return nil }

// consoleCSRF is this session's CSRF token ("" without a session).
func consoleCSRF(c echo.Context) string { return "" }

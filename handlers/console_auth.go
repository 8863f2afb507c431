package handlers

// Console login, logout, sessions, CSRF and roles.
//
// A session is a server-side row (models.CreateSession) named by a random token in the
// "regulars_console" cookie (HttpOnly, SameSite=Lax, Secure when the base URL is https). Every
// POST under /console must carry the session's CSRF token, in the form field _csrf or the header
// X-CSRF-Token. The login form, posted before there is a session, is protected by a double-submit
// token instead: GET /console/login sets it in a cookie and in the form, and the POST must bring
// both, equal.

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/regulars/regulars/models"
	"golang.org/x/time/rate"
)

const (
	consoleCookie      = "regulars_console"       // the session token
	consoleLoginCookie = "regulars_console_login" // the login form's double-submit token
	ctxConsoleSession  = "console.session"        // *models.ConsoleSession
	ctxConsoleExpired  = "console.expired"        // bool: the cookie named a session that ended
)

// loginAttemptsPerMinute is how many login attempts one IP address may make a minute. The
// per-account lock-out stops guessing one password; this stops one address trying many accounts.
const loginAttemptsPerMinute = 20

// loginRateLimit limits POST /console/login per client IP (429 with Retry-After).
func loginRateLimit() echo.MiddlewareFunc {
	store := middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
		Rate: rate.Limit(float64(loginAttemptsPerMinute) / 60), Burst: loginAttemptsPerMinute, ExpiresIn: 3 * time.Minute,
	})
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store:               store,
		IdentifierExtractor: func(c echo.Context) (string, error) { return c.RealIP(), nil },
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			c.Response().Header().Set("Retry-After", strconv.Itoa(60/loginAttemptsPerMinute))
			return echo.NewHTTPError(http.StatusTooManyRequests, "too many login attempts from this address; try again in a minute")
		},
		ErrorHandler: func(c echo.Context, err error) error { return err },
	})
}

// secureCookies reports whether cookies get the Secure flag: when the server is reached over
// https (its configured base URL), so that a plain-http laptop demo still works.
func (cn *console) secureCookies() bool {
	return strings.HasPrefix(strings.ToLower(cn.s.club.BaseURL), "https://")
}

// session limits the body of every POST (console_limits.go), loads the session from its cookie
// (if any) into the context and checks the CSRF token of every POST (and other unsafe method).
// The session stays in the context for the error page (console.renderFailure).
func (cn *console) session(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := limitConsoleBody(c); err != nil { // first: loadSession reads the form's _csrf
			return err
		}
		return cn.loadSession(c, next)
	}
}

func (cn *console) loadSession(c echo.Context, next echo.HandlerFunc) error {
	req := c.Request()
	var sess *models.ConsoleSession
	if ck, err := req.Cookie(consoleCookie); err == nil && ck.Value != "" {
		sess, err = cn.s.db.LookupSession(req.Context(), ck.Value)
		switch {
		case err == nil:
			c.Set(ctxConsoleSession, sess)
		case errors.Is(err, models.ErrSessionExpired):
			c.Set(ctxConsoleExpired, true)
			cn.clearCookie(c, consoleCookie, "/console")
		case errors.Is(err, models.ErrNoSession):
			cn.clearCookie(c, consoleCookie, "/console")
		default:
			return err
		}
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return next(c)
	}
	if c.Path() == "/console/login" {
		return next(c) // checked by its double-submit token (login)
	}
	if sess == nil {
		// Nothing to forge without a session; require sends the caller to the login page.
		return next(c)
	}
	given := req.Header.Get("X-CSRF-Token")
	if given == "" {
		given = c.FormValue("_csrf")
	}
	if !tokensEqual(given, sess.CSRF) {
		return echo.NewHTTPError(http.StatusForbidden,
			"This form did not come from your console session, or the page was too old. Go back, reload the page and try again.")
	}
	return next(c)
}

// tokensEqual compares two tokens in constant time; an empty token never matches.
func tokensEqual(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// require lets only logged-in users with one of roles through; others go to the login page (no
// session) or get 403 (wrong role).
func (cn *console) require(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			u := currentConsoleUser(c)
			if u == nil {
				if strings.HasPrefix(c.Request().URL.Path, "/console/api/") {
					return echo.NewHTTPError(http.StatusUnauthorized, "log in to the console first")
				}
				return c.Redirect(http.StatusSeeOther, loginURL(c))
			}
			for _, r := range roles {
				if u.Role == r {
					return next(c)
				}
			}
			return echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("You need the %s role for this page or action.", strings.Join(roles, " or ")))
		}
	}
}

// loginURL is the login page that brings the caller back here afterwards (for GETs) and says
// why they are asked to log in again.
func loginURL(c echo.Context) string {
	q := url.Values{}
	if c.Request().Method == http.MethodGet {
		q.Set("next", c.Request().URL.RequestURI())
	}
	if expired, _ := c.Get(ctxConsoleExpired).(bool); expired {
		q.Set("expired", "1")
	}
	if len(q) == 0 {
		return "/console/login"
	}
	return "/console/login?" + q.Encode()
}

// safeNext is where to go after logging in: next when it is a console path on this server, else
// the dashboard. Anything else (another host, "//evil", backslashes) could make the login an open
// redirect.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/console/") && !strings.HasPrefix(next, "/console/login") &&
		!strings.ContainsAny(next, "\\\r\n") && !strings.Contains(next, "/../") && !strings.HasSuffix(next, "/..") {
		if u, err := url.Parse(next); err == nil && u.Host == "" && u.Scheme == "" {
			return next
		}
	}
	return "/console/"
}

// currentConsoleUser is the logged-in user of this request, or nil.
func currentConsoleUser(c echo.Context) *consoleUser {
	s, _ := c.Get(ctxConsoleSession).(*models.ConsoleSession)
	if s == nil {
		return nil
	}
	return &consoleUser{ID: s.User.ID, Email: s.User.Email, Role: s.User.Role}
}

// consoleCSRF is this session's CSRF token ("" without a session).
func consoleCSRF(c echo.Context) string {
	if s, _ := c.Get(ctxConsoleSession).(*models.ConsoleSession); s != nil {
		return s.CSRF
	}
	return ""
}

// loginView is the login page's data.
type loginView struct {
	Email  string
	Next   string
	Error  string
	Notice string
}

// loginForm shows the login form with a fresh double-submit token (or the one the browser has,
// so that two open login tabs both work).
func (cn *console) loginForm(c echo.Context) error {
	if currentConsoleUser(c) != nil {
		return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
	}
	v := loginView{Next: c.QueryParam("next")}
	switch {
	case c.QueryParam("expired") != "":
		v.Notice = "Your session expired. Log in again to continue."
	case c.QueryParam("out") != "":
		v.Notice = "You are logged out."
	}
	return cn.renderLogin(c, http.StatusOK, v)
}

// renderLogin writes the login page with a double-submit token in the form and the cookie.
func (cn *console) renderLogin(c echo.Context, status int, v loginView) error {
	token := ""
	if ck, err := c.Cookie(consoleLoginCookie); err == nil && len(ck.Value) == 43 {
		token = ck.Value
	} else {
		var err error
		if token, err = models.RandomToken(); err != nil {
			return err
		}
	}
	c.SetCookie(&http.Cookie{Name: consoleLoginCookie, Value: token, Path: "/console/login",
		MaxAge: int(models.SessionIdle.Seconds()), HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: cn.secureCookies()})
	return cn.render(c, status, "login", consolePage{Title: "Log in", CSRF: token, Flash: v.Notice, Data: v})
}

// login checks the form and starts a new session (a new id, even when the browser had one).
func (cn *console) login(c echo.Context) error {
	ctx := c.Request().Context()
	v := loginView{Email: strings.TrimSpace(c.FormValue("email")), Next: c.FormValue("next")}
	ck, err := c.Cookie(consoleLoginCookie)
	if err != nil || !tokensEqual(ck.Value, c.FormValue("_csrf")) {
		v.Error = "The login form was too old. Please try again."
		return cn.renderLogin(c, http.StatusForbidden, v)
	}
	u, err := cn.s.db.AuthenticateUser(ctx, v.Email, c.FormValue("password"))
	if errors.Is(err, models.ErrWrongLogin) || errors.Is(err, models.ErrAccountLocked) {
		cn.s.log.InfoContext(ctx, "console login failed", "email", v.Email, "locked", errors.Is(err, models.ErrAccountLocked),
			"ip", c.RealIP())
		v.Error = "The email or password is wrong."
		return cn.renderLogin(c, http.StatusUnauthorized, v)
	}
	if err != nil {
		return err
	}
	if old, err := c.Cookie(consoleCookie); err == nil && old.Value != "" {
		if err := cn.s.db.DeleteSession(ctx, old.Value); err != nil {
			return err
		}
	}
	token, _, err := cn.s.db.CreateSession(ctx, u.ID)
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{Name: consoleCookie, Value: token, Path: "/console",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: cn.secureCookies()})
	cn.clearCookie(c, consoleLoginCookie, "/console/login")
	c.Set(ctxAuditUser, u) // the audit log records the login as this user's (audit.go)
	cn.s.log.InfoContext(ctx, "console login", "user", u.Email, "role", u.Role)
	return c.Redirect(http.StatusSeeOther, safeNext(v.Next))
}

// logout ends the session (its CSRF token checked by session) and forgets the cookie.
func (cn *console) logout(c echo.Context) error {
	if ck, err := c.Cookie(consoleCookie); err == nil && ck.Value != "" && currentConsoleUser(c) != nil {
		if err := cn.s.db.DeleteSession(c.Request().Context(), ck.Value); err != nil {
			return err
		}
	}
	cn.clearCookie(c, consoleCookie, "/console")
	return c.Redirect(http.StatusSeeOther, "/console/login?out=1")
}

func (cn *console) clearCookie(c echo.Context, name, path string) {
	c.SetCookie(&http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: cn.secureCookies()})
}

package handlers

// Console pages of the staff logins: the admin's list (invite by setting a password, disable and
// enable, reset a password, change a role) and every user's own account page (change one's own
// password, the current one asked first). models/users_admin.go holds the rules: always one
// enabled admin left; a disabled user's sessions end at once; a reset ends the user's sessions.

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

// usersView is the staff page's data.
type usersView struct {
	Users  []models.ConsoleUser
	Self   int64
	Form   userForm // the invitation form
	Failed int64    // the user whose row's form failed (0: none; -1: the invitation)
	Error  string
	Errors map[string]string // the failed row's field errors
}

// userForm is the invitation form as typed (never the password).
type userForm struct {
	Email, Role string
	Errors      map[string]string
}

const inviteForm = -1

func (cn *console) usersView(c echo.Context) (*usersView, error) {
	users, err := cn.s.db.FindUsers(c.Request().Context())
	if err != nil {
		return nil, err
	}
	return &usersView{Users: users, Self: currentConsoleUser(c).ID,
		Form: userForm{Role: models.RoleMarketer, Errors: map[string]string{}}, Errors: map[string]string{}}, nil
}

var userFlashes = map[string]string{
	"invited":  "Login created: tell them their password, and ask them to change it on their account page.",
	"disabled": "Login disabled: they are logged out and cannot log in.",
	"enabled":  "Login enabled.",
	"password": "Password set: the user was logged out everywhere.",
	"role":     "Role changed.",
}

func (cn *console) users(c echo.Context) error {
	v, err := cn.usersView(c)
	if err != nil {
		return err
	}
	return cn.render(c, http.StatusOK, "users", consolePage{Title: "Staff logins", Nav: "users",
		Flash: userFlashes[c.QueryParam("done")], Data: v})
}

// inviteUser creates a login with the password the admin typed.
func (cn *console) inviteUser(c echo.Context) error {
	f := userForm{Email: strings.TrimSpace(c.FormValue("email")), Role: c.FormValue("role"), Errors: map[string]string{}}
	_, err := cn.s.db.CreateUser(c.Request().Context(), f.Email, f.Role, c.FormValue("password"))
	if err == nil {
		return c.Redirect(http.StatusSeeOther, "/console/users?done=invited")
	}
	if !fieldErrorsInto(err, f.Errors, nil) {
		return err
	}
	v, verr := cn.usersView(c)
	if verr != nil {
		return verr
	}
	v.Form, v.Failed, v.Error = f, inviteForm, "The login was not created: correct the fields marked below."
	return cn.render(c, formStatus(c, err), "users", consolePage{Title: "Staff logins", Nav: "users", Data: v})
}

// userAction is one of the forms on a user's row: it changes user :id and says done.
func (cn *console) userAction(done string, change func(c echo.Context, id int64) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id <= 0 {
			return models.Errorf(models.ENOTFOUND, "no console user %q", c.Param("id"))
		}
		err = change(c, id)
		if err == nil {
			return c.Redirect(http.StatusSeeOther, "/console/users?done="+done)
		}
		var domain *models.Error
		code := models.ErrorCode(err)
		if code != models.EINVALID && code != models.ECONFLICT {
			return err
		}
		v, verr := cn.usersView(c)
		if verr != nil {
			return verr
		}
		v.Failed = id
		fieldErrorsInto(err, v.Errors, nil)
		if errors.As(err, &domain) {
			v.Error = domain.Message
		}
		if code == models.EINVALID {
			v.Error = "Not saved: correct the field marked below."
		}
		return cn.render(c, formStatus(c, err), "users", consolePage{Title: "Staff logins", Nav: "users", Data: v})
	}
}

func (cn *console) disableUser(c echo.Context, id int64) error {
	return cn.s.db.DisableUser(c.Request().Context(), id)
}

func (cn *console) enableUser(c echo.Context, id int64) error {
	return cn.s.db.EnableUser(c.Request().Context(), id)
}

func (cn *console) resetUserPassword(c echo.Context, id int64) error {
	return cn.s.db.ResetUserPassword(c.Request().Context(), id, c.FormValue("password"))
}

func (cn *console) setUserRole(c echo.Context, id int64) error {
	return cn.s.db.SetUserRole(c.Request().Context(), id, c.FormValue("role"))
}

// accountView is the own account page's data.
type accountView struct {
	Errors map[string]string
	Error  string
}

func (cn *console) account(c echo.Context) error {
	flash := ""
	if c.QueryParam("changed") != "" {
		flash = "Password changed. Your other sessions were logged out."
	}
	return cn.render(c, http.StatusOK, "account", consolePage{Title: "Your account", Nav: "account", Flash: flash,
		Data: accountView{Errors: map[string]string{}}})
}

// changeOwnPassword sets the user's password once the current one is right; this session stays.
func (cn *console) changeOwnPassword(c echo.Context) error {
	token := ""
	if ck, err := c.Cookie(consoleCookie); err == nil {
		token = ck.Value
	}
	v := accountView{Errors: map[string]string{}}
	password := c.FormValue("password")
	if password != c.FormValue("password_again") {
		v.Errors["password_again"] = "is not the same as the new password"
	}
	var err error
	if len(v.Errors) == 0 {
		err = cn.s.db.ChangeOwnPassword(c.Request().Context(), currentConsoleUser(c).ID, c.FormValue("current_password"), password, token)
		if err == nil {
			return c.Redirect(http.StatusSeeOther, "/console/account?changed=1")
		}
		if !fieldErrorsInto(err, v.Errors, nil) {
			return err
		}
	}
	v.Error = "Your password was not changed: correct the fields marked below."
	return cn.render(c, http.StatusUnprocessableEntity, "account", consolePage{Title: "Your account", Nav: "account", Data: v})
}

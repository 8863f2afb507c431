package handlers

// Console page of the tills' API keys (admin): list the register keys (never a token), create
// one (its token is shown once, in the answer to the form, with a curl line that posts a sale
// with it) and revoke one (refused on every replica within models.RevocationCheckEvery).

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

// tillKeysView is the till keys page's data.
type tillKeysView struct {
	Keys    []models.APIKeyInfo
	Stores  []models.Store
	Form    tillKeyForm
	Created *createdTillKey // the key just created, with its token: shown this once
	Error   string
}

// tillKeyForm is the new key's form as typed, with its errors.
type tillKeyForm struct {
	Name, Store string
	Errors      map[string]string
}

// createdTillKey is a key just created.
type createdTillKey struct {
	Name, Store, Token string
	Curl               string // a shell command that posts a test sale with the token
}

func (cn *console) tillKeysView(c echo.Context) (*tillKeysView, error) {
	ctx := c.Request().Context()
	keys, err := cn.s.db.FindAPIKeys(ctx)
	if err != nil {
		return nil, err
	}
	v := &tillKeysView{Form: tillKeyForm{Errors: map[string]string{}}}
	for i := len(keys) - 1; i >= 0; i-- { // newest first
		if keys[i].Role == models.RoleRegister {
			v.Keys = append(v.Keys, keys[i])
		}
	}
	if v.Stores, err = cn.s.db.FindStores(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

func (cn *console) tillKeys(c echo.Context) error {
	v, err := cn.tillKeysView(c)
	if err != nil {
		return err
	}
	flash := ""
	if c.QueryParam("revoked") != "" {
		flash = "Key revoked: tills using it are refused from now on."
	}
	return cn.render(c, http.StatusOK, "keys", consolePage{Title: "Till keys", Nav: "keys", Flash: flash, Data: v})
}

// createTillKey makes a register key for the store chosen and shows its token once (no redirect:
// the token must never be in a URL, and a reload must not show it again; the page is no-store).
func (cn *console) createTillKey(c echo.Context) error {
	ctx := c.Request().Context()
	f := tillKeyForm{Name: strings.TrimSpace(c.FormValue("name")), Store: strings.TrimSpace(c.FormValue("store")),
		Errors: map[string]string{}}
	token, err := cn.s.db.CreateAPIKey(ctx, models.RoleRegister, f.Store, f.Name)
	if models.ErrorCode(err) == models.ENOTFOUND {
		err = &models.Error{Code: models.EINVALID, Message: "no such store", Fields: map[string]string{"store": "is not one of your stores"}}
	}
	if err != nil && !fieldErrorsInto(err, f.Errors, nil) {
		return err
	}
	v, verr := cn.tillKeysView(c)
	if verr != nil {
		return verr
	}
	if err != nil {
		v.Form, v.Error = f, "The key was not created: correct the fields marked below."
		return cn.render(c, http.StatusUnprocessableEntity, "keys", consolePage{Title: "Till keys", Nav: "keys", Data: v})
	}
	st, err := cn.s.db.FindStoreByCode(ctx, f.Store)
	if err != nil {
		return err
	}
	v.Created = &createdTillKey{Name: f.Name, Store: f.Store, Token: token,
		Curl: saleCurl(cn.baseURL(c), token, st, cn.s.db.Now())}
	return cn.render(c, http.StatusCreated, "keys", consolePage{Title: "Till keys", Nav: "keys", Data: v})
}

// revokeTillKey revokes key :id.
func (cn *console) revokeTillKey(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return models.Errorf(models.ENOTFOUND, "no API key %q", c.Param("id"))
	}
	if _, err := cn.s.db.RevokeAPIKey(c.Request().Context(), id); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/console/keys?revoked=1")
}

// baseURL is the server's public address: REGULARS_BASE_URL, or else the address this request
// came to.
func (cn *console) baseURL(c echo.Context) string {
	if b := strings.TrimRight(cn.s.club.BaseURL, "/"); b != "" {
		return b
	}
	return c.Scheme() + "://" + c.Request().Host
}

// saleCurl is a curl command that posts a small test sale (1.00 in the store's currency, no
// member) for store st with token to the server at base.
func saleCurl(base, token string, st *models.Store, now time.Time) string {
	body := fmt.Sprintf(`{"id": "TEST-%d", "store": %q, "register": "test", "kind": "sale", "occurred_at": %q, "amount": 100, "currency": %q}`,
		now.Unix(), st.Code, now.In(st.Location()).Format(time.RFC3339), st.Currency)
	return "curl -sS -X POST " + shellQuote(base+"/api/v1/transactions") +
		" -H " + shellQuote("Authorization: Bearer "+token) +
		" -H 'Content-Type: application/json' -d " + shellQuote(body)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

package handlers

// Console page of the shop's stores (admin): list, create, rename, move to another time zone,
// and change the currency while a store has no sales (models.UpdateStore says why only then).

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

// storeForm is one store's form as typed, with its errors.
type storeForm struct {
	Code, Name, Timezone, Currency string
	HasSales                       bool
	Errors                         map[string]string
}

// storesView is the stores page's data.
type storesView struct {
	Stores []storeForm
	New    storeForm
	Failed string // the code of the form that failed ("" none; "+new" the new store's)
	Error  string
}

const newStoreForm = "+new"

func (cn *console) storesView(c echo.Context) (*storesView, error) {
	stores, err := cn.s.db.FindStoreInfos(c.Request().Context())
	if err != nil {
		return nil, err
	}
	v := &storesView{New: storeForm{Errors: map[string]string{}}}
	for _, s := range stores {
		v.Stores = append(v.Stores, storeForm{Code: s.Code, Name: s.Name, Timezone: s.Timezone, Currency: s.Currency,
			HasSales: s.HasSales, Errors: map[string]string{}})
	}
	return v, nil
}

func (cn *console) stores(c echo.Context) error {
	v, err := cn.storesView(c)
	if err != nil {
		return err
	}
	flash := ""
	switch c.QueryParam("saved") {
	case "new":
		flash = "Store created."
	case "store":
		flash = "Store saved."
	}
	return cn.render(c, http.StatusOK, "stores", consolePage{Title: "Stores", Nav: "stores", Flash: flash, Data: v})
}

// storeFormOf reads the posted store form.
func storeFormOf(c echo.Context) storeForm {
	return storeForm{Code: strings.TrimSpace(c.FormValue("code")), Name: strings.TrimSpace(c.FormValue("name")),
		Timezone: strings.TrimSpace(c.FormValue("timezone")), Currency: strings.ToUpper(strings.TrimSpace(c.FormValue("currency"))),
		Errors: map[string]string{}}
}

// createStoreForm adds a store (as POST /api/v1/stores does).
func (cn *console) createStoreForm(c echo.Context) error {
	f := storeFormOf(c)
	_, err := cn.s.db.CreateStore(c.Request().Context(), models.StoreInput{Code: f.Code, Name: f.Name, Timezone: f.Timezone, Currency: f.Currency})
	if err == nil {
		return c.Redirect(http.StatusSeeOther, "/console/stores?saved=new")
	}
	return cn.storeFailed(c, err, newStoreForm, f)
}

// updateStoreForm saves store :code's name, time zone and currency.
func (cn *console) updateStoreForm(c echo.Context) error {
	code := c.Param("code")
	f := storeFormOf(c)
	f.Code = code
	_, err := cn.s.db.UpdateStore(c.Request().Context(), code, models.StoreUpdate{Name: f.Name, Timezone: f.Timezone, Currency: f.Currency})
	if err == nil {
		return c.Redirect(http.StatusSeeOther, "/console/stores?saved=store")
	}
	return cn.storeFailed(c, err, code, f)
}

// storeFailed shows the stores page again with form f (of which) as typed and err's reasons: 422
// for invalid input, 409 for a taken code or a currency that cannot change.
func (cn *console) storeFailed(c echo.Context, err error, which string, f storeForm) error {
	if !fieldErrorsInto(err, f.Errors, nil) {
		return err
	}
	v, verr := cn.storesView(c)
	if verr != nil {
		return verr
	}
	v.Failed, v.Error = which, "The store was not saved: correct the fields marked below."
	if which == newStoreForm {
		v.New = f
	} else {
		for i := range v.Stores {
			if v.Stores[i].Code == which {
				f.HasSales = v.Stores[i].HasSales
				v.Stores[i] = f
			}
		}
	}
	return cn.render(c, formStatus(c, err), "stores", consolePage{Title: "Stores", Nav: "stores", Data: v})
}

// formStatus is the status of a console form refused for err: the API's for the same error (422
// invalid, 409 conflict).
func formStatus(c echo.Context, err error) int {
	return failureOf(c.Request().Context(), err).status
}

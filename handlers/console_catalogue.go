package handlers

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

// catalogueOption is one choice of a segment builder picker: the value the rule takes and what a
// person reads.
type catalogueOption struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

// cataloguePickerSize is how many choices a picker lists at once.
const cataloguePickerSize = 12

// catalogueOptions answers the segment builder's pickers: GET
// /console/api/catalogue?field=bought_sku|bought_category|bought_brand&query= gives
// {"options": [{value, label}]} from the catalogue: products by sku prefix or name, category or
// brand (models.FindProducts) for bought_sku, the distinct categories or brands containing the
// query otherwise (models.FindCatalogueValues).
func (cn *console) catalogueOptions(c echo.Context) error {
	ctx := c.Request().Context()
	query := c.QueryParam("query")
	options := []catalogueOption{}
	switch field := c.QueryParam("field"); field {
	case "bought_sku":
		products, err := cn.s.db.FindProducts(ctx, query, cataloguePickerSize)
		if err != nil {
			return err
		}
		for _, p := range products {
			label := p.SKU + " – " + p.Name
			if details := strings.Trim(p.Category+", "+p.Brand, ", "); details != "" {
				label += " (" + details + ")"
			}
			options = append(options, catalogueOption{Value: p.SKU, Label: label})
		}
	case "bought_category", "bought_brand":
		values, err := cn.s.db.FindCatalogueValues(ctx, strings.TrimPrefix(field, "bought_"), query, cataloguePickerSize)
		if err != nil {
			return err
		}
		for _, v := range values {
			unit := " products"
			if v.Products == 1 {
				unit = " product"
			}
			options = append(options, catalogueOption{Value: v.Value, Label: v.Value + " (" + strconv.FormatInt(v.Products, 10) + unit + ")"})
		}
	default:
		return &models.Error{Code: models.EINVALID, Message: "invalid catalogue search",
			Fields: map[string]string{"field": "must be bought_sku, bought_category or bought_brand"}}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"options": options})
}

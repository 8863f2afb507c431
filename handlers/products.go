package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

// defaultProductSearch is how many products GET /products returns without a limit: a picker's
// list.
const defaultProductSearch = 20

// upsertProducts stores up to 1000 products by sku, all or none (models.UpsertProducts).
func (s *Server) upsertProducts(c echo.Context) error {
	var in struct {
		Products *[]models.ProductInput `json:"products"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Products == nil {
		return &models.Error{Code: models.EINVALID, Message: "invalid products",
			Fields: map[string]string{"products": "is required: a list of up to 1000 products"}}
	}
	res, err := s.db.UpsertProducts(c.Request().Context(), *in.Products)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// searchProducts finds products by sku prefix or name, category or brand, for the segment
// builder's pickers.
func (s *Server) searchProducts(c echo.Context) error {
	limit := defaultProductSearch
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return &models.Error{Code: models.EINVALID, Message: "invalid product search",
				Fields: map[string]string{"limit": "must be an integer"}}
		}
		limit = n
	}
	products, err := s.db.FindProducts(c.Request().Context(), c.QueryParam("query"), limit)
	if err != nil {
		return err
	}
	if products == nil {
		products = []models.Product{}
	}
	return c.JSON(http.StatusOK, map[string]any{"products": products})
}

package models

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// CatalogueValue is one category or brand of the catalogue, for the segment builder's pickers:
// the spelling to show (categories and brands are compared in any case; the first spelling in
// byte order stands for all) and how many products carry it.
type CatalogueValue struct {
	Value    string `json:"value"`
	Products int64  `json:"products"`
}

// catalogueColumns are the columns FindCatalogueValues may list, by the name callers use. A
// fixed map: the column name goes into the SQL text.
var catalogueColumns = map[string]string{"category": "category", "brand": "brand"}

// FindCatalogueValues lists up to limit (1 to MaxProductSearch) distinct categories or brands
// (column "category" or "brand") containing query in any case, those starting with it first,
// then alphabetically; empty ones are left out. Like FindProducts, a scan of the catalogue.
func (db *DB) FindCatalogueValues(ctx context.Context, column, query string, limit int) ([]CatalogueValue, error) {
	col, ok := catalogueColumns[column]
	if !ok {
		return nil, &Error{Code: EINVALID, Message: "invalid catalogue search",
			Fields: map[string]string{"field": "must be category or brand"}}
	}
	if limit < 1 || limit > MaxProductSearch {
		return nil, &Error{Code: EINVALID, Message: "invalid catalogue search",
			Fields: map[string]string{"limit": fmt.Sprintf("must be between 1 and %d", MaxProductSearch)}}
	}
	q := strings.ToLower(strings.TrimSpace(query))
	rows, err := db.Pool.Query(ctx, `
		SELECT min(`+col+` COLLATE "C"), count(*) FROM products
		WHERE `+col+` <> '' AND strpos(lower(`+col+`), $1) > 0
		GROUP BY lower(`+col+`)
		ORDER BY NOT starts_with(lower(`+col+`), $1), lower(`+col+`) COLLATE "C"
		LIMIT $2`, q, limit)
	if err != nil {
		return nil, fmt.Errorf("find catalogue %s: %w", column, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CatalogueValue, error) {
		var v CatalogueValue
		err := r.Scan(&v.Value, &v.Products)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("find catalogue %s: %w", column, err)
	}
	return out, nil
}

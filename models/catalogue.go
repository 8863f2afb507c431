package models

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// The product catalogue (issue 16): sku, name, category, brand, price and, when known, cost.
// Products are upserted by sku, from the API (UpsertProducts, up to MaxProductsPerCall) or a CSV
// file (ImportProductsCSV); both check every product with checkProduct and store all or nothing.
// Receipt lines are not tied to it: a line whose sku is unknown still counts.

// MaxProductsPerCall bounds one PUT /products.
const MaxProductsPerCall = 1000

// MaxProductSearch is the most products FindProducts returns.
const MaxProductSearch = 100

// Product is one catalogue entry.
type Product struct {
	SKU        string    `json:"sku"`
	Name       string    `json:"name"`
	Category   string    `json:"category"`
	Brand      string    `json:"brand"`
	PriceMinor int64     `json:"price_minor"`
	CostMinor  *int64    `json:"cost_minor"` // nil: cost not known
	UpdatedAt  time.Time `json:"updated_at"`
}

// ProductInput is a product as the API or an import file gives it.
type ProductInput struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Category   string `json:"category"`
	Brand      string `json:"brand"`
	PriceMinor Int    `json:"price_minor"`
	CostMinor  Int    `json:"cost_minor"` // absent or null: cost not known
}

// productRow is a checked product, ready to store.
type productRow struct {
	sku, name, category, brand string
	price                      int64
	cost                       *int64
}

// checkProduct validates in, adding problems under prefix ("products.3." or "" for a file line).
// A sku follows the till's rule for item skus, so every catalogue sku can appear on a receipt.
func checkProduct(in *ProductInput, prefix string, fe FieldErrors) productRow {
	if in.SKU == "" {
		fe.Add(prefix+"sku", "is required")
	} else if !validID(in.SKU) {
		fe.Add(prefix+"sku", "must be 1-64 printable characters without surrounding spaces")
	}
	text := func(name, v string, required bool, maxLen int) string {
		v = strings.TrimSpace(v)
		switch n := utf8.RuneCountInString(v); {
		case !utf8.ValidString(v):
			fe.Add(prefix+name, "must be UTF-8 text")
		case required && n == 0:
			fe.Add(prefix+name, "is required")
		case n > maxLen:
			fe.Add(prefix+name, fmt.Sprintf("must be at most %d characters", maxLen))
		}
		return v
	}
	row := productRow{sku: in.SKU, name: text("name", in.Name, true, 200),
		category: text("category", in.Category, false, 100), brand: text("brand", in.Brand, false, 100)}
	switch p := in.PriceMinor; {
	case !p.Present:
		fe.Add(prefix+"price_minor", "is required")
	case p.Bad != "":
		fe.Add(prefix+"price_minor", p.Bad)
	case p.Value < 0:
		fe.Add(prefix+"price_minor", "must be 0 or more")
	default:
		row.price = p.Value
	}
	switch c := in.CostMinor; {
	case !c.Present:
	case c.Bad != "":
		fe.Add(prefix+"cost_minor", c.Bad)
	case c.Value < 0:
		fe.Add(prefix+"cost_minor", "must be 0 or more")
	default:
		row.cost = &c.Value
	}
	return row
}

// upsertProductsSQL stores the staged products: new skus are inserted, known ones updated when
// anything differs (updated_at then moves); an identical product is left alone. xmax = 0 tells an
// inserted row from an updated one.
const upsertProductsSQL = `
WITH up AS (
    INSERT INTO products AS p (sku, name, category, brand, price_minor, cost_minor, updated_at)
    SELECT sku, name, category, brand, price_minor, cost_minor, $1 FROM import_products
    ON CONFLICT (sku) DO UPDATE
        SET name = excluded.name, category = excluded.category, brand = excluded.brand,
            price_minor = excluded.price_minor, cost_minor = excluded.cost_minor, updated_at = excluded.updated_at
        WHERE (p.name, p.category, p.brand, p.price_minor, p.cost_minor)
              IS DISTINCT FROM (excluded.name, excluded.category, excluded.brand, excluded.price_minor, excluded.cost_minor)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up`

const createProductStagingSQL = `
CREATE TEMP TABLE import_products (
    sku text NOT NULL, name text NOT NULL, category text NOT NULL, brand text NOT NULL,
    price_minor bigint NOT NULL, cost_minor bigint
) ON COMMIT DROP`

var productStagingColumns = []string{"sku", "name", "category", "brand", "price_minor", "cost_minor"}

// ProductImportResult counts what an upsert of products did.
type ProductImportResult struct {
	Read      int64 `json:"read"`
	Inserted  int64 `json:"inserted"`
	Updated   int64 `json:"updated"`
	Unchanged int64 `json:"unchanged"`
}

// UpsertProducts checks every product (errors name "products.3.price_minor") and stores them
// all, or none when any is invalid. A sku may appear once per call.
func (db *DB) UpsertProducts(ctx context.Context, in []ProductInput) (*ProductImportResult, error) {
	fe := FieldErrors{}
	if len(in) > MaxProductsPerCall {
		fe.Add("products", fmt.Sprintf("at most %d products per call", MaxProductsPerCall))
		return nil, fe.Err("invalid products")
	}
	rows := make([]productRow, len(in))
	seen := make(map[string]int, len(in))
	for i := range in {
		at := "products." + strconv.Itoa(i) + "."
		rows[i] = checkProduct(&in[i], at, fe)
		if j, ok := seen[in[i].SKU]; ok && in[i].SKU != "" {
			fe.Add(at+"sku", fmt.Sprintf("is also products.%d", j))
		}
		seen[in[i].SKU] = i
	}
	if err := fe.Err("invalid products"); err != nil {
		return nil, err
	}
	next := 0
	return db.storeProducts(ctx, "upsert products", func(values []any) bool {
		if next == len(rows) {
			return false
		}
		rows[next].fill(values)
		next++
		return true
	}, nil)
}

func (r *productRow) fill(v []any) {
	v[0], v[1], v[2], v[3], v[4], v[5] = r.sku, r.name, r.category, r.brand, r.price, nil
	if r.cost != nil {
		v[5] = *r.cost
	}
}

// storeProducts copies the rows next yields into a staging table and upserts them, in one
// transaction. After the copy, check (when set) may refuse the whole lot.
func (db *DB) storeProducts(ctx context.Context, what string, next func(values []any) bool, check func() error) (*ProductImportResult, error) {
	res := &ProductImportResult{}
	src := &productCopy{next: next, values: make([]any, len(productStagingColumns)), check: check}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, createProductStagingSQL); err != nil {
			return fmt.Errorf("%s: create staging table: %w", what, err)
		}
		n, copyErr := tx.CopyFrom(ctx, pgx.Identifier{"import_products"}, productStagingColumns, src)
		if src.err != nil {
			return src.err
		}
		if copyErr != nil {
			return fmt.Errorf("%s: copy: %w", what, copyErr)
		}
		res.Read = n
		if err := tx.QueryRow(ctx, upsertProductsSQL, db.Now()).Scan(&res.Inserted, &res.Updated); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Unchanged = res.Read - res.Inserted - res.Updated
	return res, nil
}

// productCopy is the pgx.CopyFromSource of storeProducts.
type productCopy struct {
	next   func(values []any) bool
	values []any
	check  func() error
	err    error
}

func (p *productCopy) Next() bool {
	if p.next(p.values) {
		return true
	}
	if p.check != nil {
		p.err = p.check()
	}
	return false
}

func (p *productCopy) Values() ([]any, error) { return p.values, nil }

func (p *productCopy) Err() error { return p.err }

var (
	productCSVColumns         = []string{"sku", "name", "category", "brand", "price_minor"}
	productCSVOptionalColumns = []string{"cost_minor"}
)

// ImportProductsCSV upserts the products of a CSV file with the header
// sku,name,category,brand,price_minor (and optionally cost_minor), read like the other import
// files (openCSV: a comma, semicolon or tab separator, a byte-order mark and CRLF line ends are fine). Every line is checked as
// PUT /products checks a product, and a sku may appear on one line only; any bad line and
// nothing is stored, and the error (an *ImportError) names the first bad lines and columns.
func (db *DB) ImportProductsCSV(ctx context.Context, r io.Reader, opts ...CSVOption) (*ProductImportResult, error) {
	f, err := openCSV(r, productCSVColumns, productCSVOptionalColumns, opts...)
	if err != nil {
		return nil, err
	}
	var bad badLines
	var fatal error
	seen := map[string]int{}
	next := func(values []any) bool {
		for {
			rec, line, err := f.next()
			if err == io.EOF {
				return false
			}
			var le *LineError
			if errors.As(err, &le) {
				bad.add(le.Line, le.Fields)
				continue
			}
			if err != nil {
				fatal = fmt.Errorf("import products: read line %d: %w", line, err)
				return false
			}
			in := ProductInput{SKU: f.get(rec, "sku"), Name: f.get(rec, "name"), Category: f.get(rec, "category"),
				Brand: f.get(rec, "brand"), PriceMinor: parseMinor(strings.TrimSpace(f.get(rec, "price_minor"))),
				CostMinor: parseMinor(strings.TrimSpace(f.get(rec, "cost_minor")))}
			fe := FieldErrors{}
			row := checkProduct(&in, "", fe)
			if first, ok := seen[in.SKU]; ok && in.SKU != "" {
				fe.Add("sku", fmt.Sprintf("is also on line %d", first))
			} else if in.SKU != "" {
				seen[in.SKU] = line
			}
			if len(fe) > 0 {
				bad.add(line, fe)
				continue
			}
			if bad.total > 0 { // nothing will be stored: only look for more bad lines
				continue
			}
			row.fill(values)
			return true
		}
	}
	check := func() error {
		if fatal != nil {
			return fatal
		}
		return bad.err(EINVALID)
	}
	return db.storeProducts(ctx, "import products", next, check)
}

// FindProducts returns up to limit products, for the segment builder's pickers: with a query,
// those whose sku starts with it or whose name, category or brand contains it, ignoring case,
// sku-prefix matches first; without one, the first by sku. A sequential scan of products: a
// shop's catalogue of some 100,000 rows is scanned in milliseconds, and a picker asks once per
// keystroke pause.
func (db *DB) FindProducts(ctx context.Context, query string, limit int) ([]Product, error) {
	if limit < 1 || limit > MaxProductSearch {
		return nil, &Error{Code: EINVALID, Message: "invalid product search",
			Fields: map[string]string{"limit": fmt.Sprintf("must be between 1 and %d", MaxProductSearch)}}
	}
	q := strings.ToLower(strings.TrimSpace(query))
	rows, err := db.Pool.Query(ctx, `
		SELECT sku, name, category, brand, price_minor, cost_minor, updated_at FROM products
		WHERE $1 = '' OR starts_with(lower(sku), $1) OR strpos(lower(name), $1) > 0
		   OR strpos(lower(category), $1) > 0 OR strpos(lower(brand), $1) > 0
		ORDER BY NOT starts_with(lower(sku), $1), sku
		LIMIT $2`, q, limit)
	if err != nil {
		return nil, fmt.Errorf("find products: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Product, error) {
		var p Product
		err := r.Scan(&p.SKU, &p.Name, &p.Category, &p.Brand, &p.PriceMinor, &p.CostMinor, &p.UpdatedAt)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("find products: %w", err)
	}
	return out, nil
}

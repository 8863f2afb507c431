package models_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

func importProducts(t *testing.T, db *models.DB, content string) (*models.ProductImportResult, error) {
	t.Helper()
	return db.ImportProductsCSV(context.Background(), strings.NewReader(content))
}

// catalogue returns the stored products as "sku name category brand price cost" lines, by sku.
func catalogue(t *testing.T, db *models.DB) string {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `
		SELECT concat_ws(' ', sku, name, category, brand, price_minor, coalesce(cost_minor::text, '-')) FROM products ORDER BY sku`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return strings.Join(out, "\n")
}

func TestImportProducts(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)

	t.Run("a file with a byte-order mark, CRLF and an optional cost column loads", func(t *testing.T) {
		res, err := importProducts(t, db, "\ufeffsku,name,category,brand,price_minor,cost_minor\r\n"+
			"LP-1,Latte,Coffee,House,4500,1200\r\n"+
			"\"BN,2\",\"Bun, cinnamon\",Bakery,House,3500,\r\n")
		if err != nil {
			t.Fatal(err)
		}
		if *res != (models.ProductImportResult{Read: 2, Inserted: 2}) {
			t.Errorf("got %+v, want 2 read and inserted", *res)
		}
		want := "BN,2 Bun, cinnamon Bakery House 3500 -\nLP-1 Latte Coffee House 4500 1200"
		if got := catalogue(t, db); got != want {
			t.Errorf("catalogue:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("a second file updates by sku, inserts new skus and leaves identical ones alone", func(t *testing.T) {
		res, err := importProducts(t, db, "sku,name,category,brand,price_minor\n"+
			"LP-1,Latte,coffee,House,4900\n"+ // category case and price changed, cost now unknown
			"\"BN,2\",\"Bun, cinnamon\",Bakery,House,3500\n"+
			"TEA-1,Tea,Coffee,Leaf & Co,3000\n")
		if err != nil {
			t.Fatal(err)
		}
		if *res != (models.ProductImportResult{Read: 3, Inserted: 1, Updated: 1, Unchanged: 1}) {
			t.Errorf("got %+v, want 3 read: 1 inserted, 1 updated, 1 unchanged", *res)
		}
		want := "BN,2 Bun, cinnamon Bakery House 3500 -\nLP-1 Latte coffee House 4900 -\nTEA-1 Tea Coffee Leaf & Co 3000 -"
		if got := catalogue(t, db); got != want {
			t.Errorf("catalogue:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("any bad line and nothing is stored; the error names lines and columns", func(t *testing.T) {
		before := catalogue(t, db)
		_, err := importProducts(t, db, "sku,name,category,brand,price_minor,cost_minor\n"+
			"NEW-1,Good,Cat,Brand,100,50\n"+
			"NEW-2,,Cat,Brand,100,\n"+ // line 3: no name
			"NEW-3,Decimal,Cat,Brand,1.50,\n"+ // line 4: a decimal price
			"NEW-1,Again,Cat,Brand,100,\n"+ // line 5: the sku of line 2
			"NEW-4,Cost,Cat,Brand,100,-1\n"+ // line 6: a negative cost
			"NEW-5,Short,Cat\n"+ // line 7: too few fields
			" NEW-6,Spaces,Cat,Brand,100,\n") // line 8: a sku with a leading space
		ie := wantBadLines(t, err, models.EINVALID, 3, 4, 5, 6, 7, 8)
		for i, field := range []string{"name", "price_minor", "sku", "cost_minor", "line", "sku"} {
			if ie.Lines[i].Fields[field] == "" {
				t.Errorf("line %d: got %v, want a problem with %s", ie.Lines[i].Line, ie.Lines[i].Fields, field)
			}
		}
		if !strings.Contains(ie.Lines[2].Fields["sku"], "line 2") {
			t.Errorf("a repeated sku should name its first line: %v", ie.Lines[2].Fields)
		}
		if got := catalogue(t, db); got != before {
			t.Errorf("the catalogue changed:\n%s", got)
		}
	})
	t.Run("a header without price_minor or with an unknown column is refused", func(t *testing.T) {
		for _, header := range []string{"sku,name,category,brand\n", "sku,name,category,brand,price_minor,colour\n"} {
			_, err := importProducts(t, db, header+"X,Y,Z,W,1\n")
			wantBadLines(t, err, models.EINVALID, 1)
		}
	})
}

func TestUpsertAndFindProducts(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	in := func(sku, name, category, brand string, price int64) models.ProductInput {
		return models.ProductInput{SKU: sku, Name: name, Category: category, Brand: brand, PriceMinor: models.NewInt(price)}
	}
	res, err := db.UpsertProducts(ctx, []models.ProductInput{
		in("LP-1", "Latte", "Coffee", "House", 4500),
		in("LP-2", "Lungo", "Coffee", "House", 3900),
		in("CK-1", "Carrot cake", "Bakery", "Nonna's", 5200),
	})
	if err != nil || res.Inserted != 3 {
		t.Fatalf("upsert: %+v %v", res, err)
	}

	t.Run("an invalid product names its index and stores nothing", func(t *testing.T) {
		_, err := db.UpsertProducts(ctx, []models.ProductInput{
			in("LP-1", "Latte", "Coffee", "House", 1),
			{SKU: "X-1", Name: "No price"},
			in("X-2", "Negative", "", "", -5),
			in("LP-1", "Latte again", "", "", 1),
		})
		var e *models.Error
		if !errors.As(err, &e) || e.Code != models.EINVALID {
			t.Fatalf("got %v, want invalid", err)
		}
		for _, field := range []string{"products.1.price_minor", "products.2.price_minor", "products.3.sku"} {
			if e.Fields[field] == "" {
				t.Errorf("no problem named %s: %v", field, e.Fields)
			}
		}
		if got := catalogue(t, db); strings.Contains(got, "LP-1 Latte Coffee House 1 ") {
			t.Errorf("stored despite the error:\n%s", got)
		}
	})
	t.Run("more than 1000 products are refused", func(t *testing.T) {
		_, err := db.UpsertProducts(ctx, make([]models.ProductInput, models.MaxProductsPerCall+1))
		if models.ErrorCode(err) != models.EINVALID {
			t.Errorf("got %v, want invalid", err)
		}
	})

	search := func(t *testing.T, q string, limit int) string {
		t.Helper()
		ps, err := db.FindProducts(ctx, q, limit)
		if err != nil {
			t.Fatal(err)
		}
		var skus []string
		for _, p := range ps {
			skus = append(skus, p.SKU)
		}
		return strings.Join(skus, " ")
	}
	for _, tc := range []struct {
		name, query string
		limit       int
		want        string
	}{
		{"an empty query lists by sku", "", 10, "CK-1 LP-1 LP-2"},
		{"a sku prefix, any case", "lp-", 10, "LP-1 LP-2"},
		{"a name substring, any case", "CAKE", 10, "CK-1"},
		{"a category substring", "offe", 10, "LP-1 LP-2"},
		{"a sku prefix before a category match", "lp", 10, "LP-1 LP-2"},
		{"a brand with an apostrophe", "nonna's", 10, "CK-1"},
		{"sku prefix matches come before category matches", "c", 10, "CK-1 LP-1 LP-2"},
		{"the limit", "", 2, "CK-1 LP-1"},
		{"a LIKE wildcard is literal", "%", 10, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := search(t, tc.query, tc.limit); got != tc.want {
				t.Errorf("got [%s], want [%s]", got, tc.want)
			}
		})
	}
	t.Run("a limit out of range is refused", func(t *testing.T) {
		if _, err := db.FindProducts(ctx, "", 0); models.ErrorCode(err) != models.EINVALID {
			t.Errorf("got %v", err)
		}
	})
}

package main

import (
	"testing"

	"github.com/regulars/regulars/models/dbtest"
)

func TestImportProductsCommand(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.URL(t)
	good := writeFile(t, "p.csv", "sku,name,category,brand,price_minor,cost_minor\r\n"+
		"LP-1,Latte,Coffee,House,4500,1200\r\n"+
		"CK-1,\"Cake, carrot\",Bakery,Nonna's,5200,\r\n")
	changed := writeFile(t, "p2.csv", "sku,name,category,brand,price_minor\n"+
		"LP-1,Latte,Coffee,House,4900\n"+
		"CK-1,\"Cake, carrot\",Bakery,Nonna's,5200\n"+
		"TEA-1,Tea,Coffee,Leaf,3000\n")
	bad := writeFile(t, "bad.csv", "sku,name,category,brand,price_minor\n"+
		"NEW-1,New,Coffee,House,100\n"+
		"NEW-2,New,Coffee,House,1.50\n")
	runSteps(t, dbURL, []cmdStep{
		{"a catalogue is imported", []string{"import", "products", good}, "imported 2 products (2 new, 0 updated, 0 unchanged)", ""},
		{"a second file upserts by sku", []string{"import", "products", changed}, "imported 3 products (1 new, 1 updated, 1 unchanged)", ""},
		{"a bad line is named with its column", []string{"import", "products", bad}, "", "line 3: price_minor"},
	})
}

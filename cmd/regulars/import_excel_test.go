package main

import (
	"context"
	"strings"
	"testing"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// excel writes lines as Excel in a Norwegian locale saves "CSV UTF-8": a byte-order mark,
// semicolons between the fields (the comma is the decimal separator there) and CRLF line ends.
func excel(lines ...string) string {
	return "\ufeff" + strings.Join(lines, "\r\n") + "\r\n"
}

// TestImportExcelFiles imports a Norwegian Excel file of each kind through the command, with
// the separator detected from the header, and with --delimiter set right and wrong.
func TestImportExcelFiles(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.URL(t)
	db, err := models.Open(context.Background(), dbURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.CreateStore(context.Background(), models.StoreInput{Code: "oslo-1", Name: "Grünerløkka", Timezone: "Europe/Oslo", Currency: "NOK"}); err != nil {
		t.Fatal(err)
	}
	members := writeFile(t, "medlemmer.csv", excel(
		"card;email;name;phone;home_store;joined_at;marketing_consent",
		"2900000000018;bjørn@example.com;Bjørn Ærø;;oslo-1;2025-05-01;true",
		`2900000000025;åse@example.com;"Åse Øvrebø; jr.";+4791234567;oslo-1;2025-06-01;false`))
	txns := writeFile(t, "kvitteringer.csv", excel(
		"id;store;register;kind;occurred_at;amount;currency;member_card;member_email",
		"K-1;oslo-1;kasse-1;sale;2026-01-01T10:00:00+01:00;12950;NOK;2900000000018;",
		"K-2;oslo-1;kasse-1;sale;2026-01-02T10:00:00+01:00;4500;NOK;;åse@example.com"))
	products := writeFile(t, "varer.csv", excel(
		"sku;name;category;brand;price_minor",
		"BL-1;Blåbærmuffins;Bakst;Bakeriet på hjørnet;3900",
		"KF-1;Kaffe, filter;Kaffe;Husets;3500"))
	tabs := writeFile(t, "varer.tsv", "\ufeffsku\tname\tcategory\tbrand\tprice_minor\r\nSM-1\tSmørbrød\tMat\tHusets\t8900\r\n")
	runSteps(t, dbURL, []cmdStep{
		{"a members file with semicolons, a BOM and CRLF is read", []string{"import", "members", members}, "imported 2 rows (2 new", ""},
		{"a transactions file with semicolons is read", []string{"import", "transactions", txns}, "imported 2 rows (2 new", ""},
		{"a products file with semicolons is read", []string{"import", "products", products}, "imported 2 products (2 new", ""},
		{"a tab-separated file is read", []string{"import", "products", tabs}, "imported 1 product", ""},
		{"--delimiter set to the file's separator reads it", []string{"import", "products", "--delimiter", ";", products}, "imported 2 products (0 new, 0 updated, 2 unchanged)", ""},
		{"--delimiter tab reads a tab file", []string{"import", "products", "--delimiter", `\t`, tabs}, "imported 1 product", ""},
		{"a wrong --delimiter names the separator seen and suggests the right one",
			[]string{"import", "members", "--delimiter", ",", members}, "",
			`unknown column "card;email;name;phone;home_store;joined_at;marketing_consent" (separator ","; use --delimiter ";"?)`},
		{"a --delimiter of another character is refused", []string{"import", "members", "--delimiter", "|", members}, "", `--delimiter must be`},
	})
	t.Run("the names keep their letters", func(t *testing.T) {
		var names []string
		rows, err := db.Pool.Query(context.Background(), `SELECT name FROM members ORDER BY card`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		var product string
		if err := db.Pool.QueryRow(context.Background(), `SELECT name FROM products WHERE sku = 'BL-1'`).Scan(&product); err != nil {
			t.Fatal(err)
		}
		if strings.Join(names, "|") != "Bjørn Ærø|Åse Øvrebø; jr." || product != "Blåbærmuffins" {
			t.Errorf("members %q, product %q", names, product)
		}
	})
}

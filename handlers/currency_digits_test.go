package handlers

import (
	"context"
	"testing"

	"github.com/regulars/regulars/models/dbtest"
	"github.com/regulars/regulars/templates"
)

// TestMinorDigitsAgreeInSQLAndGo: the points rule's currency_minor_digits (SQL) and the
// console's money format (templates.MinorDigits, from x/text) give every ISO code the same
// number of minor digits, so a point per krone is the krone the console shows.
func TestMinorDigitsAgreeInSQLAndGo(t *testing.T) {
	db := dbtest.New(t)
	var codes []string
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			for c := 'A'; c <= 'Z'; c++ {
				codes = append(codes, string([]rune{a, b, c}))
			}
		}
	}
	rows, err := db.Pool.Query(context.Background(), `SELECT c, currency_minor_digits(c) FROM unnest($1::text[]) c`, codes)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var code string
		var sql int
		if err := rows.Scan(&code, &sql); err != nil {
			t.Fatal(err)
		}
		if goDigits := templates.MinorDigits(code); goDigits != sql {
			t.Errorf("%s: %d minor digits in SQL, %d in Go", code, sql, goDigits)
		}
	}
}

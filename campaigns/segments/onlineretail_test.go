package segments

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// onlineRetail is the UCI "Online Retail" data set (../shared/data/online-retail/README.md): a
// year of a UK gift shop's invoice lines, InvoiceNo,StockCode,Description,Quantity,InvoiceDate,
// UnitPrice,CustomerID,Country. REGULARS_ONLINE_RETAIL names another copy.
const onlineRetail = "../../../shared/data/online-retail/online_retail.csv.gz"

// retailRow is one invoice line of the sample.
type retailRow struct {
	invoice, sku, description, customer string
	qty                                 int
	at                                  time.Time
	priceMinor                          int64
}

// retailCategory is the rule that gives the real data's products a category: the last word of
// the description, upper case, without the punctuation around it ("WHITE HANGING HEART T-LIGHT
// HOLDER" is HOLDER, "RED WOOLLY HOTTIE WHITE HEART." is HEART); "" for an empty description.
func retailCategory(description string) string {
	words := strings.Fields(description)
	if len(words) == 0 {
		return ""
	}
	return strings.ToUpper(strings.Trim(words[len(words)-1], ".,;:!?\"'()"))
}

// readRetail reads the first n lines of the data set, times in London.
func readRetail(t *testing.T, n int) []retailRow {
	t.Helper()
	path := os.Getenv("REGULARS_ONLINE_RETAIL")
	if path == "" {
		path = onlineRetail
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("no %s", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	r := csv.NewReader(gz)
	if _, err := r.Read(); err != nil { // the header
		t.Fatal(err)
	}
	rows := make([]retailRow, 0, n)
	for len(rows) < n {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		qty, err1 := strconv.Atoi(rec[3])
		at, err2 := time.ParseInLocation(time.DateTime, rec[4], london)
		price, err3 := strconv.ParseFloat(rec[5], 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("line %d: %v", len(rows)+2, err)
		}
		// CustomerID is written as 17850 (or 17850.0 by some converters); "" when anonymous.
		customer := strings.TrimSuffix(rec[6], ".0")
		rows = append(rows, retailRow{invoice: rec[0], sku: rec[1], description: strings.TrimSpace(rec[2]), customer: customer,
			qty: qty, at: at, priceMinor: int64(math.Round(price * 100))})
	}
	return rows
}

// TestBoughtOnRealReceipts loads the first 100,000 lines of the real data set (three months,
// about 5,000 invoices) and compares bought_sku and bought_category counts with counts made in Go
// straight from the CSV lines. The catalogue goes in through the products import (a CSV written
// from the data: first description and price of each stock code, category by retailCategory).
// Every invoice is a transaction of one store: cancellations (InvoiceNo C…) are refunds without
// lines, which name no sale (the data does not say which), so they take nothing back; lines with
// a quantity under 1 on a sale (stock adjustments) are left out; lines without a CustomerID are
// anonymous sales, which count for nobody.
func TestBoughtOnRealReceipts(t *testing.T) {
	t.Parallel()
	rows := readRetail(t, 100_000)
	db := dbtest.New(t)
	ctx := context.Background()
	london, _ := time.LoadLocation("Europe/London")
	asOf := time.Date(2011, 3, 1, 0, 0, 0, 0, london) // the day after the sample's last invoice

	category, _, _ := loadRetail(t, db, rows)

	// buyers counts, straight from the CSV lines, the customers with a line on a sale in the
	// window that the match accepts.
	buyers := func(days int, match func(r retailRow) bool) int64 {
		from := asOf.AddDate(0, 0, -days)
		who := map[string]bool{}
		for _, r := range rows {
			if r.customer != "" && !strings.HasPrefix(r.invoice, "C") && r.qty > 0 &&
				!r.at.Before(from) && r.at.Before(asOf) && match(r) {
				who[r.customer] = true
			}
		}
		return int64(len(who))
	}
	for _, tc := range []struct {
		rules string
		days  int
		match func(r retailRow) bool
	}{
		{`{"field": "bought_sku", "op": "eq", "value": "85123A"}`, 365, func(r retailRow) bool { return r.sku == "85123A" }},
		{`{"field": "bought_sku", "op": "eq", "value": "85123A", "within_days": 30}`, 30, func(r retailRow) bool { return r.sku == "85123A" }},
		{`{"field": "bought_sku", "op": "in", "value": ["22423", "47566", "POST"]}`, 365, func(r retailRow) bool {
			return r.sku == "22423" || r.sku == "47566" || r.sku == "POST"
		}},
		{`{"field": "bought_category", "op": "eq", "value": "holder"}`, 365, func(r retailRow) bool { return category[r.sku] == "HOLDER" }},
	} {
		t.Run(tc.rules, func(t *testing.T) {
			want := buyers(tc.days, tc.match)
			got, err := Count(ctx, db, mustParse(t, tc.rules), asOf)
			if err != nil {
				t.Fatal(err)
			}
			if got != want || want == 0 {
				t.Errorf("the segment has %d members, the CSV %d buyers", got, want)
			}
			t.Logf("%d buyers", got)
		})
	}
}

// retailInvoice is one invoice of the sample: a transaction of the store uk-1.
type retailInvoice struct {
	customer string // "" when anonymous
	at       time.Time
	amount   int64       // Σ |qty| × price over all its lines
	lines    []retailRow // the receipt lines stored: a sale's lines of a quantity of 1 or more
}

// stored is the amount stored for the invoice: at least 1, as transactions require.
func (inv *retailInvoice) stored() int64 { return max(inv.amount, 1) }

// refund tells a cancellation (InvoiceNo C…), stored as a refund, from a sale.
func refund(invoice string) bool { return strings.HasPrefix(invoice, "C") }

// loadRetail stores rows as TestBoughtOnRealReceipts describes: the catalogue through the
// products import (the first description and price of each stock code, the category by
// retailCategory), a member per customer, an invoice per transaction of the one store uk-1
// (Europe/London, GBP), and the sales' receipt lines. It returns each sku's category, the
// invoices by number and their numbers in order of appearance.
func loadRetail(t *testing.T, db *models.DB, rows []retailRow) (category map[string]string, invoices map[string]*retailInvoice, order []string) {
	t.Helper()
	ctx := context.Background()
	// The catalogue, through the import.
	var catalogue bytes.Buffer
	w := csv.NewWriter(&catalogue)
	_ = w.Write([]string{"sku", "name", "category", "brand", "price_minor"})
	category = map[string]string{}
	for _, r := range rows {
		if _, ok := category[r.sku]; ok {
			continue
		}
		category[r.sku] = retailCategory(r.description)
		name := r.description
		if name == "" {
			name = r.sku
		}
		_ = w.Write([]string{r.sku, name, category[r.sku], "", strconv.FormatInt(max(r.priceMinor, 0), 10)})
	}
	w.Flush()
	res, err := db.ImportProductsCSV(ctx, &catalogue)
	if err != nil {
		t.Fatalf("import the catalogue: %v", err)
	}
	if res.Inserted != int64(len(category)) {
		t.Fatalf("imported %d products, want %d", res.Inserted, len(category))
	}

	// Members, one per customer, and the invoices.
	var storeID int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO stores (code, name, timezone, currency) VALUES ('uk-1', 'UK', 'Europe/London', 'GBP') RETURNING id`).Scan(&storeID); err != nil {
		t.Fatal(err)
	}
	invoices = map[string]*retailInvoice{}
	for _, r := range rows {
		inv := invoices[r.invoice]
		if inv == nil {
			inv = &retailInvoice{customer: r.customer, at: r.at}
			invoices[r.invoice] = inv
			order = append(order, r.invoice)
		}
		inv.amount += int64(math.Abs(float64(r.qty))) * r.priceMinor
		if !strings.HasPrefix(r.invoice, "C") && r.qty > 0 {
			inv.lines = append(inv.lines, r)
		}
	}
	memberOf := map[string]int64{}
	for _, no := range order {
		c := invoices[no].customer
		if _, ok := memberOf[c]; ok || c == "" {
			continue
		}
		var id int64
		if err := db.Pool.QueryRow(ctx, `INSERT INTO members (card, name, status, source) VALUES (lpad($1, 13, '0'), $1, 'active', 'test') RETURNING id`, c).Scan(&id); err != nil {
			t.Fatal(err)
		}
		memberOf[c] = id
	}
	i := 0
	n, err := db.Pool.CopyFrom(ctx, pgx.Identifier{"transactions"},
		[]string{"store_id", "txn_id", "kind", "occurred_at", "amount_minor", "currency", "member_id", "content_hash"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(order) {
				return nil, nil
			}
			no := order[i]
			inv := invoices[no]
			i++
			kind := "sale"
			if strings.HasPrefix(no, "C") {
				kind = "refund"
			}
			var member any
			if id, ok := memberOf[inv.customer]; ok {
				member = id
			}
			return []any{storeID, no, kind, inv.at, inv.stored(), "GBP", member, []byte{0}}, nil
		}))
	if err != nil || n != int64(len(order)) {
		t.Fatalf("copy %d invoices: %d, %v", len(order), n, err)
	}
	var items [][]any
	for _, no := range order {
		for l, r := range invoices[no].lines {
			items = append(items, []any{no, l + 1, r.sku, r.qty, max(r.priceMinor, 0)})
		}
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE lines (txn_id text, line int, sku text, qty int, price bigint)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"lines"}, []string{"txn_id", "line", "sku", "qty", "price"}, pgx.CopyFromRows(items)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `
		INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor)
		SELECT t.id, l.line, l.sku, l.qty, l.price FROM lines l JOIN transactions t ON t.txn_id = l.txn_id;
		ANALYZE`); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d lines: %d invoices, %d customers, %d products, %d receipt lines", len(rows), len(order), len(memberOf), len(category), len(items))

	return category, invoices, order
}

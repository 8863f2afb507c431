// Command gencsv writes a large, deterministic transactions file for benchmarking the import:
// in the import format (`regulars import transactions`), or with the transactions table's own
// columns for psql's \copy, so that both load the same rows.
//
//	gencsv -rows 1000000 -format import > txns.csv
//	gencsv -rows 1000000 -format table > txns-table.csv
//	gencsv -members 1000000 -stores 10 -format members > members.csv
//	gencsv -members 1000000 -stores 10 -rows 10000000 -format retail > txns.csv
//	gencsv -format products -products 5000 > products.csv
//	gencsv -members 1000000 -stores 10 -rows 10000000 -format retail -lines lines.csv > txns.csv
//
// The members and retail formats (retail.go) make a club for the metrics benchmark: members
// with valid cards and home stores, and purchases that come back as real customers do. The
// products format and -lines (catalogue.go) add a catalogue and the receipts' lines.
//
// The table format assumes the stores oslo-1, oslo-2, bergen-1 and trondheim-1 have the ids 1
// to 4 (created in that order in a fresh database), and writes a stand-in content hash of the
// same size as the real one: \copy does not validate or hash anything.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/regulars/regulars/models"
)

var stores = []string{"oslo-1", "oslo-2", "bergen-1", "trondheim-1"}

func main() {
	rows := flag.Int("rows", 1_000_000, "number of transactions")
	format := flag.String("format", "import", "import (the import CSV), table (the transactions table's columns, for \\copy), members (a members import CSV), retail (an import CSV of purchases by those members) or products (a products import CSV)")
	seed := flag.Uint64("seed", 1, "random seed")
	club := clubFlags{}
	flag.IntVar(&club.members, "members", 1_000_000, "members and retail: number of members")
	flag.IntVar(&club.stores, "stores", 10, "members and retail: number of stores, named store-01, store-02, ...")
	flag.Float64Var(&club.anonymous, "anonymous", 0.25, "retail: share of sales without a member")
	flag.Float64Var(&club.refunds, "refunds", 0.02, "retail: share of rows that refund an earlier sale")
	cat := catalogueFlags{}
	flag.IntVar(&cat.products, "products", 5000, "products and retail -lines: number of products")
	flag.IntVar(&cat.categories, "categories", 40, "products and retail -lines: number of categories")
	flag.IntVar(&cat.brands, "brands", 200, "products and retail -lines: number of brands")
	flag.Float64Var(&cat.unknownCost, "unknown-cost", 0.1, "products and retail -lines: share of products without a cost")
	linesFile := flag.String("lines", "", "retail: also write every transaction's receipt lines to this file (amounts become the sums of the lines)")
	flag.Parse()
	if *format != "import" && *format != "table" && *format != "members" && *format != "retail" && *format != "products" {
		fmt.Fprintln(os.Stderr, "gencsv: -format must be import, table, members, retail or products")
		os.Exit(2)
	}
	if cat.products < 1 || cat.categories < 1 || cat.brands < 1 {
		fmt.Fprintln(os.Stderr, "gencsv: -products, -categories and -brands must be at least 1")
		os.Exit(2)
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	var err error
	switch *format {
	case "members":
		err = generateMembers(w, club, *seed)
	case "products":
		err = generateProducts(w, cat, *seed)
	case "retail":
		err = generateRetailFiles(w, *rows, club, cat, *seed, *linesFile)
	default:
		err = generate(w, *rows, *format == "table", *seed)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gencsv:", err)
		os.Exit(1)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "gencsv:", err)
		os.Exit(1)
	}
}

func generate(w io.Writer, rows int, table bool, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 42))
	cards := make([]string, 50_000)
	for i := range cards {
		digits := "29" + fmt.Sprintf("%010d", rng.Int64N(10_000_000_000))
		cards[i] = models.WithCheckDigit(digits)
	}
	oslo := time.FixedZone("+01:00", 3600)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, oslo)
	span := int64(2 * 365 * 24 * time.Hour / time.Second)
	if table {
		fmt.Fprintln(w, "store_id,txn_id,register,kind,occurred_at,amount_minor,currency,member_card,member_email,content_hash")
	} else {
		fmt.Fprintln(w, "id,store,register,kind,occurred_at,amount,currency,member_card,member_email")
	}
	var line []byte
	for i := range rows {
		store := i % len(stores)
		id := "B-" + fmt.Sprintf("%07d", i/len(stores)+1)
		at := start.Add(time.Duration(rng.Int64N(span)) * time.Second).Format(time.RFC3339)
		amount := strconv.FormatInt(100+rng.Int64N(50_000), 10)
		card, email := "", ""
		switch x := rng.IntN(10); {
		case x < 6:
			card = cards[rng.IntN(len(cards))]
		case x < 7:
			email = "customer" + strconv.Itoa(rng.IntN(20_000)) + "@example.com"
		}
		register := "till-" + strconv.Itoa(1+rng.IntN(2))
		line = line[:0]
		if table {
			line = strconv.AppendInt(line, int64(store+1), 10)
		} else {
			line = append(line, stores[store]...)
		}
		line = append(line, ',')
		if !table { // the import format starts with the id
			line = append([]byte(id+","), line...)
		} else {
			line = append(line, id...)
			line = append(line, ',')
		}
		line = append(line, register+",sale,"+at+","+amount+",NOK,"+card+","+email...)
		if table {
			h := sha256.Sum256(line)
			line = append(line, ",\\x"+hex.EncodeToString(h[:])...)
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return nil
}

// generateRetailFiles writes the retail format, and the receipt lines to linesFile when named.
func generateRetailFiles(w io.Writer, rows int, club clubFlags, cat catalogueFlags, seed uint64, linesFile string) error {
	if linesFile == "" {
		return generateRetail(w, rows, club, seed, nil, nil)
	}
	f, err := os.Create(linesFile)
	if err != nil {
		return err
	}
	lw := bufio.NewWriterSize(f, 1<<20)
	err = generateRetail(w, rows, club, seed, newBasket(buildCatalogue(cat, seed), seed), lw)
	if ferr := lw.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

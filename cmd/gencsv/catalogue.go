package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
)

// The catalogue and receipt lines of the retail format (issue 16): a deterministic catalogue of
// products in categories and brands, with a cost for most, and receipt lines drawn from it so
// that a sale's amount is the sum of its lines. -format products writes the catalogue (the
// `regulars import products` CSV); -format retail with -lines FILE also writes every
// transaction's lines to FILE (store,txn_id,line,sku,qty,unit_price_minor), which
// scripts/bench-catalogue.sh loads with \copy and one INSERT joining the transactions by
// (store, txn_id): the transactions import has no lines column.

// catalogueFlags shape the catalogue.
type catalogueFlags struct {
	products, categories, brands int
	unknownCost                  float64 // share of products without a cost
}

// product is one generated catalogue entry.
type product struct {
	sku, category, brand string
	price                int64
	cost                 int64 // -1: not known
}

// buildCatalogue draws the products. Prices are lognormal around 60 NOK; a known cost is 35-75 %
// of the price. Categories and brands are spread over the popularity ranks (rank i goes to
// category i×7919 mod categories), so every category has popular and rare products.
func buildCatalogue(c catalogueFlags, seed uint64) []product {
	rng := rand.New(rand.NewPCG(seed, 13))
	ps := make([]product, c.products)
	for i := range ps {
		p := &ps[i]
		p.sku = fmt.Sprintf("SKU-%06d", i+1)
		p.category = fmt.Sprintf("Category %02d", (i*7919)%c.categories+1)
		p.brand = fmt.Sprintf("Brand %03d", (i*104729)%c.brands+1)
		p.price = int64(math.Round(6000 * math.Exp(0.8*rng.NormFloat64())))
		p.price = min(max(p.price, 500), 500_000)
		p.cost = -1
		if rng.Float64() >= c.unknownCost {
			p.cost = int64(float64(p.price) * (0.35 + 0.4*rng.Float64()))
		}
	}
	return ps
}

// generateProducts writes the products import CSV (regulars import products); an unknown cost
// is an empty cost_minor.
func generateProducts(w io.Writer, c catalogueFlags, seed uint64) error {
	if _, err := fmt.Fprintln(w, "sku,name,category,brand,price_minor,cost_minor"); err != nil {
		return err
	}
	var line []byte
	for i, p := range buildCatalogue(c, seed) {
		line = append(line[:0], p.sku...)
		line = append(line, ",Product "...)
		line = strconv.AppendInt(line, int64(i+1), 10)
		line = append(line, ","+p.category+","+p.brand+","...)
		line = strconv.AppendInt(line, p.price, 10)
		line = append(line, ',')
		if p.cost >= 0 {
			line = strconv.AppendInt(line, p.cost, 10)
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return nil
}

// basket draws a sale's lines from the catalogue: 1 + a geometric number of lines (2.5 on
// average, so 10M transactions make about 25M lines), products by a Zipf-like popularity
// (weight 1/rank^0.8), 1 unit four times in five, else 2 or 3.
type basket struct {
	products []product
	cum      []float64
	rng      *rand.Rand
}

func newBasket(ps []product, seed uint64) *basket {
	b := &basket{products: ps, cum: make([]float64, len(ps)), rng: rand.New(rand.NewPCG(seed, 17))}
	total := 0.0
	for i := range ps {
		total += 1 / math.Pow(float64(i+1), 0.8)
		b.cum[i] = total
	}
	return b
}

// receiptLine is one line of a receipt.
type receiptLine struct {
	product *product
	qty     int64
}

// draw returns a sale's lines and their sum, reusing lines' storage.
func (b *basket) draw(lines []receiptLine) ([]receiptLine, int64) {
	lines = lines[:0]
	var sum int64
	for n := 0; n == 0 || b.rng.Float64() < 0.6; n++ {
		p := &b.products[min(sort.SearchFloat64s(b.cum, b.rng.Float64()*b.cum[len(b.cum)-1]), len(b.cum)-1)]
		qty := int64(1)
		if b.rng.IntN(5) == 0 {
			qty = 2 + int64(b.rng.IntN(2))
		}
		lines = append(lines, receiptLine{product: p, qty: qty})
		sum += qty * p.price
	}
	return lines, sum
}

// writeLines writes a transaction's lines in the lines file's format.
func writeLines(w io.Writer, buf []byte, store, txnID string, lines []receiptLine) ([]byte, error) {
	buf = buf[:0]
	for i, l := range lines {
		buf = append(buf, store+","+txnID+","...)
		buf = strconv.AppendInt(buf, int64(i+1), 10)
		buf = append(buf, ","+l.product.sku+","...)
		buf = strconv.AppendInt(buf, l.qty, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, l.product.price, 10)
		buf = append(buf, '\n')
	}
	_, err := w.Write(buf)
	return buf, err
}

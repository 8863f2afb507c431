package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/regulars/regulars/models"
)

// clubFlags shape the members and retail formats.
type clubFlags struct {
	members, stores    int
	anonymous, refunds float64
}

// member is one generated club member. Both formats rebuild the same members from the seed,
// so the purchases of the retail file name the cards of the members file.
type member struct {
	card      string
	store     int
	joined    time.Time
	from, to  time.Time // when the member buys: from joining (or the first sale day) until dropping out
	weight    float64   // purchase rate × active time, the member's expected share of member sales
	consented bool
}

var (
	clubZone   = time.FixedZone("+01:00", 3600)
	joinStart  = time.Date(2023, 1, 1, 0, 0, 0, 0, clubZone) // members join over 3 years
	salesStart = time.Date(2024, 1, 1, 0, 0, 0, 0, clubZone) // and buy over the last 2
	salesEnd   = time.Date(2026, 1, 1, 0, 0, 0, 0, clubZone)
)

func storeCode(i int) string { return fmt.Sprintf("store-%02d", i+1) }

// buildClub draws the members. Purchase behaviour follows the BG/NBD story: each member buys at
// a lognormal rate (most rarely, a few often, so orders per member are overdispersed, Poisson
// given the rate), and half of them drop out at a uniform time within their active span.
func buildClub(c clubFlags, seed uint64) []member {
	rng := rand.New(rand.NewPCG(seed, 7))
	joinSpan := salesEnd.Sub(joinStart)
	ms := make([]member, c.members)
	for i := range ms {
		m := &ms[i]
		m.card = models.WithCheckDigit("29" + fmt.Sprintf("%010d", i+1))
		m.store = rng.IntN(c.stores)
		m.joined = joinStart.Add(time.Duration(rng.Int64N(int64(joinSpan/time.Second))) * time.Second)
		m.from = m.joined
		if m.from.Before(salesStart) {
			m.from = salesStart
		}
		m.to = salesEnd
		if rng.IntN(2) == 0 {
			m.to = m.from.Add(time.Duration(rng.Float64() * float64(salesEnd.Sub(m.from))))
		}
		rate := math.Exp(rng.NormFloat64())
		m.weight = rate * m.to.Sub(m.from).Hours()
		m.consented = rng.IntN(3) > 0
	}
	return ms
}

// generateMembers writes the members import CSV (regulars import members).
func generateMembers(w io.Writer, c clubFlags, seed uint64) error {
	if _, err := fmt.Fprintln(w, "card,email,name,phone,home_store,joined_at,marketing_consent"); err != nil {
		return err
	}
	var line []byte
	for i, m := range buildClub(c, seed) {
		line = append(line[:0], m.card...)
		line = append(line, ",member"...)
		line = strconv.AppendInt(line, int64(i+1), 10)
		line = append(line, "@example.com,Member "...)
		line = strconv.AppendInt(line, int64(i+1), 10)
		line = append(line, ",,"...)
		line = append(line, storeCode(m.store)...)
		line = append(line, ',')
		line = m.joined.AppendFormat(line, time.RFC3339)
		line = append(line, ',')
		line = strconv.AppendBool(line, m.consented)
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return nil
}

// generateRetail writes rows transactions in the import format with a refunds column: a share
// c.anonymous of the sales without a member, the others by a member drawn in proportion to its
// weight at a uniform time in its active span, at its home store four times in five; a share
// c.refunds of the rows refund an earlier sale of the same store in full, up to 14 days later.
// With a basket (catalogue.go), every transaction's lines go to linesW: a sale's amount is then
// the sum of its lines, and a refund has the lines of the sale it refunds.
func generateRetail(w io.Writer, rows int, c clubFlags, seed uint64, b *basket, linesW io.Writer) error {
	ms := buildClub(c, seed)
	cum := make([]float64, len(ms))
	total := 0.0
	for i, m := range ms {
		total += m.weight
		cum[i] = total
	}
	rng := rand.New(rand.NewPCG(seed, 11))
	if _, err := fmt.Fprintln(w, "id,store,register,kind,occurred_at,amount,currency,member_card,member_email,refunds"); err != nil {
		return err
	}
	if b != nil {
		if _, err := fmt.Fprintln(linesW, "store,txn_id,line,sku,qty,unit_price_minor"); err != nil {
			return err
		}
	}
	type sale struct {
		id, store, card, amount string
		at                      time.Time
		lines                   []receiptLine
	}
	var drawn []receiptLine
	var lineBuf []byte
	var recent []sale // a ring of recent sales to refund
	var line []byte
	salesSpan := int64(salesEnd.Sub(salesStart) / time.Second)
	for i := range rows {
		id := "R-" + strconv.Itoa(i+1)
		line = append(line[:0], id...)
		line = append(line, ',')
		if len(recent) > 0 && rng.Float64() < c.refunds {
			k := rng.IntN(len(recent)) // each sale is refunded at most once
			s := recent[k]
			recent[k] = recent[len(recent)-1]
			recent = recent[:len(recent)-1]
			at := s.at.Add(time.Duration(rng.Int64N(14*24*3600)) * time.Second)
			if !at.Before(salesEnd) {
				at = s.at
			}
			line = append(line, s.store...)
			line = append(line, ",till-1,refund,"...)
			line = at.AppendFormat(line, time.RFC3339)
			line = append(line, ","+s.amount+",NOK,"+s.card+",,"+s.id+"\n"...)
			if b != nil {
				var err error
				if lineBuf, err = writeLines(linesW, lineBuf, s.store, id, s.lines); err != nil {
					return err
				}
			}
		} else {
			var s sale
			if rng.Float64() < c.anonymous {
				s.store = storeCode(rng.IntN(c.stores))
				s.at = salesStart.Add(time.Duration(rng.Int64N(salesSpan)) * time.Second)
			} else {
				m := ms[sort.SearchFloat64s(cum, rng.Float64()*total)]
				s.card = m.card
				s.store = storeCode(m.store)
				if rng.IntN(5) == 0 {
					s.store = storeCode(rng.IntN(c.stores))
				}
				s.at = m.from.Add(time.Duration(rng.Float64() * float64(m.to.Sub(m.from))))
			}
			s.id = id
			s.amount = strconv.FormatInt(100+rng.Int64N(50_000), 10)
			if b != nil {
				var sum int64
				drawn, sum = b.draw(drawn)
				s.lines = slices.Clone(drawn)
				s.amount = strconv.FormatInt(sum, 10)
				var err error
				if lineBuf, err = writeLines(linesW, lineBuf, s.store, id, s.lines); err != nil {
					return err
				}
			}
			line = append(line, s.store...)
			line = append(line, ",till-"+strconv.Itoa(1+rng.IntN(2))+",sale,"...)
			line = s.at.AppendFormat(line, time.RFC3339)
			line = append(line, ","+s.amount+",NOK,"+s.card+",,\n"...)
			if len(recent) < 10_000 {
				recent = append(recent, s)
			} else {
				recent[rng.IntN(len(recent))] = s
			}
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return nil
}

package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/regulars/regulars/models"
)

// mix is the share of each kind of transaction the registers post, as weights.
type mix struct {
	Member, Anonymous, Refund int
}

// parseMix reads "member=40,anonymous=55,refund=5": member-card sales, anonymous sales, and
// refunds of a sale the same register made earlier.
func parseMix(s string) (mix, error) {
	var m mix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if !ok || err != nil || n < 0 {
			return m, fmt.Errorf("-mix %q: each part must be kind=weight with a weight >= 0, e.g. member=40,anonymous=55,refund=5", s)
		}
		switch strings.TrimSpace(key) {
		case "member":
			m.Member = n
		case "anonymous", "anon":
			m.Anonymous = n
		case "refund":
			m.Refund = n
		default:
			return m, fmt.Errorf("-mix %q: unknown kind %q (member, anonymous, refund)", s, key)
		}
	}
	if m.Member+m.Anonymous+m.Refund == 0 {
		return m, fmt.Errorf("-mix %q: the weights add up to 0", s)
	}
	return m, nil
}

// sale is what a register remembers of a sale it made, to refund it later.
type sale struct {
	id     string
	amount int64
	card   string
}

// register is one simulated till: its own id sequence, random source and recent sales.
type register struct {
	store    string
	name     string
	currency string
	loc      *time.Location
	idPrefix string
	seq      int64
	rng      *rand.Rand
	mix      mix
	cards    []string
	// recent is a ring of sales the server acknowledged, the pool refunds are drawn from.
	recent []sale
	next   int
}

const recentSales = 256

// remember records an acknowledged sale as refundable.
func (r *register) remember(s sale) {
	if len(r.recent) < recentSales {
		r.recent = append(r.recent, s)
		return
	}
	r.recent[r.next] = s
	r.next = (r.next + 1) % recentSales
}

// appendTransaction appends one transaction's JSON to buf and returns the sale to remember if
// the server accepts it (a zero sale for a refund). Every string written is from a known-safe
// alphabet (store codes, generated ids and SKUs, currency codes, digits), so no escaping is
// needed; building bytes by hand keeps the generator's CPU out of the server's way on a small
// machine.
func (r *register) appendTransaction(buf []byte, now time.Time) ([]byte, sale) {
	r.seq++
	id := r.idPrefix + strconv.FormatInt(r.seq, 10)
	kind := "sale"
	var card, refunds string
	amount := 2_000 + r.rng.Int64N(198_001) // 20.00 .. 2,000.00 in major units
	w := r.rng.IntN(r.mix.Member + r.mix.Anonymous + r.mix.Refund)
	switch {
	case w < r.mix.Refund && len(r.recent) > 0:
		orig := r.recent[r.rng.IntN(len(r.recent))]
		kind, refunds, card = "refund", orig.id, orig.card
		amount = min(amount, orig.amount)
	case w < r.mix.Refund+r.mix.Member:
		card = r.cards[r.rng.IntN(len(r.cards))]
	}
	// Tills post a moment after the purchase, in the store's own zone and offset.
	at := now.Add(-time.Duration(r.rng.IntN(30)) * time.Second).In(r.loc)

	buf = append(buf, `{"id":"`...)
	buf = append(buf, id...)
	buf = append(buf, `","store":"`...)
	buf = append(buf, r.store...)
	buf = append(buf, `","register":"`...)
	buf = append(buf, r.name...)
	buf = append(buf, `","kind":"`...)
	buf = append(buf, kind...)
	buf = append(buf, `","occurred_at":"`...)
	buf = at.AppendFormat(buf, time.RFC3339)
	buf = append(buf, `","amount":`...)
	buf = strconv.AppendInt(buf, amount, 10)
	buf = append(buf, `,"currency":"`...)
	buf = append(buf, r.currency...)
	buf = append(buf, '"')
	if card != "" {
		buf = append(buf, `,"member":{"card":"`...)
		buf = append(buf, card...)
		buf = append(buf, `"}`...)
	}
	if refunds != "" {
		buf = append(buf, `,"refunds":"`...)
		buf = append(buf, refunds...)
		buf = append(buf, '"')
	}
	buf = append(buf, `,"items":[`...)
	buf = r.appendItems(buf, amount)
	buf = append(buf, "]}"...)
	if kind == "refund" {
		return buf, sale{}
	}
	return buf, sale{id: id, amount: amount, card: card}
}

// appendRedemption appends one redemption's JSON to buf: reward bought with points by a member
// drawn from the card pool, with the register's next id. Like appendTransaction it writes only
// known-safe strings (the reward code is checked by validRewardCode).
func (r *register) appendRedemption(buf []byte, reward string) []byte {
	r.seq++
	buf = append(buf, `{"id":"`...)
	buf = append(buf, r.idPrefix...)
	buf = strconv.AppendInt(buf, r.seq, 10)
	buf = append(buf, `","store":"`...)
	buf = append(buf, r.store...)
	buf = append(buf, `","member":{"card":"`...)
	buf = append(buf, r.cards[r.rng.IntN(len(r.cards))]...)
	buf = append(buf, `"},"reward":"`...)
	buf = append(buf, reward...)
	buf = append(buf, `"}`...)
	return buf
}

// validRewardCode is the shape of a reward code (migrations/00019_rewards.sql): safe to write
// into JSON unescaped.
func validRewardCode(s string) bool {
	if len(s) < 1 || len(s) > 32 || s[0] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// appendItems writes 1-5 receipt lines whose qty × unit_price add up to amount.
func (r *register) appendItems(buf []byte, amount int64) []byte {
	n := 1 + r.rng.IntN(5)
	left := amount
	for i := range n {
		line := left
		if i < n-1 {
			line = 1 + r.rng.Int64N(max(left/int64(n-i), 1))
		}
		left -= line
		qty, price := int64(1), line
		if line%2 == 0 && r.rng.IntN(4) == 0 {
			qty, price = 2, line/2
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"sku":"SKU-`...)
		buf = strconv.AppendInt(buf, 10_000+r.rng.Int64N(90_000), 10)
		buf = append(buf, `","qty":`...)
		buf = strconv.AppendInt(buf, qty, 10)
		buf = append(buf, `,"unit_price":`...)
		buf = strconv.AppendInt(buf, price, 10)
		buf = append(buf, '}')
	}
	return buf
}

// cardPool returns n distinct-enough club card numbers with valid EAN-13 check digits, the
// same for the same seed, so that members come back to the till as real ones do.
func cardPool(seed uint64, n int) []string {
	rng := rand.New(rand.NewPCG(seed, 0xca7d))
	out := make([]string, n)
	for i := range out {
		out[i] = models.WithCheckDigit(fmt.Sprintf("29%010d", rng.Int64N(10_000_000_000)))
	}
	return out
}

// Package demo fills an empty database with realistic, deterministic demo data: a small chain of
// Norwegian record shops with a café corner, its club members, and two years of purchases with
// the repeat-purchase patterns the metrics are about (regulars, occasional customers, one-off
// buyers, customers who drift away). Everything goes in through the bulk import, so the demo
// exercises the same validation and idempotency as real data and loads in seconds. On an empty
// database it also makes the three flows a café would run, with a few months of their history
// (flows.go), and the café's stamp card with its rewards and a year of points (rewards.go).
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/regulars/regulars/models"
)

// Options tune the generated data; the zero value gives the standard demo.
type Options struct {
	// Seed makes the data reproducible; 0 means 1.
	Seed uint64
	// Members is how many club members to create; 0 means 2000.
	Members int
	// Days is how long the purchase history is; 0 means 730.
	Days int
	// Now is where the history ends; zero means the start of the current day (UTC), so that
	// runs on the same day generate the same data.
	Now time.Time
	// Force fills even when the database already has stores. The demo stores are reused and the
	// import's idempotency applies: a rerun with the same seed on the same day adds nothing; on
	// another day the same seed clashes with what it stored before (the import then loads
	// nothing and names the lines), and another Seed adds a second, separate set.
	Force bool
}

// Summary says what Fill stored.
type Summary struct {
	Stores                []string
	Members               int64
	ConsentedMembers      int64
	Transactions          int64
	Sales                 int64
	Refunds               int64
	AnonymousSales        int64
	UnregisteredCardSales int64
	Items                 int64
	From, To              time.Time
	// Flows names the demo flows and FlowEntries counts their entries over the last
	// FlowHistoryDays (none after a forced fill).
	Flows       []string
	FlowEntries int64
	// Rewards names the demo's rewards (rewards.go); PointsMembers counts the members with
	// points, CoffeeMembers those who can afford CoffeeReward, and CoffeeCard is the card of the
	// first of them (none after a forced fill).
	Rewards                      []string
	PointsMembers, CoffeeMembers int64
	Redemptions, Vouchers        int64
	CoffeeCard                   string
	// Took is how long generating and loading took.
	Took time.Duration
}

// ErrNotEmpty is returned when the database already has stores and Force is not set.
var ErrNotEmpty = errors.New("the database already has stores; demo data goes into an empty database only (use --force to add it anyway)")

// The chain. Weights say how much of the trade each store has.
var demoStores = []struct {
	code, name string
	weight     float64
}{
	{"oslo-1", "Regulars Oslo Sentrum", 0.38},
	{"oslo-2", "Regulars Grünerløkka", 0.27},
	{"bergen-1", "Regulars Bergen Bryggen", 0.20},
	{"trondheim-1", "Regulars Trondheim Bakklandet", 0.15},
}

type product struct {
	sku   string
	price int64 // øre
}

// The shelves: records sell less often but for more; the café corner brings people back.
var (
	records = []product{
		{"LP-1001", 34900}, {"LP-1002", 29900}, {"LP-1003", 44900}, {"LP-1004", 27900}, {"LP-1005", 39900},
		{"LP-1006", 32900}, {"LP-1007", 24900}, {"LP-1008", 36900}, {"LP-1009", 49900}, {"LP-1010", 31900},
		{"CD-2001", 16900}, {"CD-2002", 14900}, {"CD-2003", 19900}, {"7IN-3001", 12900}, {"7IN-3002", 11900},
	}
	cafe = []product{
		{"COF-ESPRESSO", 3900}, {"COF-LATTE", 5200}, {"COF-FILTER", 3500}, {"TEA-CHAI", 4800},
		{"BUN-KANEL", 4200}, {"BUN-SKOLE", 4500}, {"SANDW-BRUNOST", 8900}, {"SANDW-REKER", 11900},
		{"JUICE-EPLE", 4500}, {"CHOC-KVIKKLUNSJ", 2500},
	}
	merch = []product{{"TOTE-BAG", 19900}, {"SLIPMAT", 14900}, {"CLEAN-KIT", 24900}, {"POSTER-A2", 17900}}
)

var (
	firstNames = []string{"Ola", "Kari", "Ingrid", "Lars", "Nora", "Emma", "Jakob", "Sofie", "Henrik", "Maja",
		"Emil", "Ella", "Magnus", "Leah", "Sander", "Sara", "Tobias", "Ida", "Mathias", "Thea", "Kristian",
		"Hedda", "Jonas", "Astrid", "Sindre", "Silje", "Eirik", "Marte", "Håkon", "Solveig", "Øystein", "Åse"}
	lastNames = []string{"Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen",
		"Jensen", "Karlsen", "Johnsen", "Pettersen", "Eriksen", "Berg", "Haugen", "Hagen", "Johannessen",
		"Andreassen", "Jacobsen", "Dahl", "Jørgensen", "Halvorsen", "Henriksen", "Lund", "Sørensen", "Bakken",
		"Strand", "Solberg", "Moen", "Lie", "Aas", "Rønning"}
)

// Customer behaviour, BG/NBD style: while "alive" a customer buys at a personal rate, and after
// each purchase may drop out for good.
type behaviour struct {
	share       float64
	meanGap     [2]float64 // days between purchases, drawn uniformly from this range
	dropout     [2]float64 // chance of never coming back after a purchase
	onceOnly    bool
	churnMidway bool // buys regularly, then stops at a random point
}

var behaviours = []behaviour{
	{share: 0.30, onceOnly: true},
	{share: 0.45, meanGap: [2]float64{20, 70}, dropout: [2]float64{0.05, 0.25}},
	{share: 0.15, meanGap: [2]float64{4, 12}, dropout: [2]float64{0, 0.02}},
	{share: 0.10, meanGap: [2]float64{5, 15}, dropout: [2]float64{0, 0.01}, churnMidway: true},
}

// Fill generates the demo and stores it: stores, then members (through the members import),
// then transactions (through the transactions import).
func Fill(ctx context.Context, db *models.DB, opts Options) (*Summary, error) {
	start := time.Now()
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Members == 0 {
		opts.Members = 2000
	}
	if opts.Days == 0 {
		opts.Days = 730
	}
	if opts.Now.IsZero() {
		opts.Now = db.Now().UTC().Truncate(24 * time.Hour)
	}
	var hasStores bool
	if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM stores)`).Scan(&hasStores); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if hasStores && !opts.Force {
		return nil, ErrNotEmpty
	}
	for _, s := range demoStores {
		_, err := db.CreateStore(ctx, models.StoreInput{Code: s.code, Name: s.name, Timezone: "Europe/Oslo", Currency: "NOK"})
		if err != nil && !(opts.Force && models.ErrorCode(err) == models.ECONFLICT) {
			return nil, fmt.Errorf("demo: create store %s: %w", s.code, err)
		}
	}
	if err := demoTiers(ctx, db); err != nil {
		return nil, err
	}
	g := newGenerator(opts)
	g.members()
	g.birthdays()
	g.purchases()
	if _, err := db.ImportMembers(ctx, &memberSlice{rows: g.memberRows}); err != nil {
		return nil, fmt.Errorf("demo: import members: %w", err)
	}
	if _, err := db.ImportTransactions(ctx, &txnSlice{rows: g.txns}); err != nil {
		return nil, fmt.Errorf("demo: import transactions: %w", err)
	}
	var flowSum Summary
	if !opts.Force {
		// Only on a database the demo filled alone: the history walks every member.
		if err := g.flowsAndHistory(ctx, db, &flowSum); err != nil {
			return nil, err
		}
		if err := g.rewardsAndHistory(ctx, db, &flowSum); err != nil {
			return nil, err
		}
	}
	sum, err := summarize(ctx, db)
	if err != nil {
		return nil, err
	}
	sum.Flows, sum.FlowEntries = flowSum.Flows, flowSum.FlowEntries
	sum.Rewards, sum.PointsMembers, sum.CoffeeMembers = flowSum.Rewards, flowSum.PointsMembers, flowSum.CoffeeMembers
	sum.Redemptions, sum.Vouchers, sum.CoffeeCard = flowSum.Redemptions, flowSum.Vouchers, flowSum.CoffeeCard
	sum.From, sum.To = g.from, opts.Now
	sum.Took = time.Since(start)
	return sum, nil
}

// demoTiers sets a three-step ladder (every member gets 5%, more for regulars) unless the admin has
// already set one.
func demoTiers(ctx context.Context, db *models.DB) error {
	have, err := db.FindTiers(ctx)
	if err != nil || len(have) > 0 {
		return err
	}
	pct := func(p float64) *float64 { return &p }
	minor := func(v int64) models.Int { return models.Int{Value: v, Present: true} }
	_, err = db.ReplaceTiers(ctx, []models.TierInput{
		{Name: "Member", MinSpend: minor(0), DiscountPercent: pct(5)},
		{Name: "Regular", MinSpend: minor(200_000), DiscountPercent: pct(10)},   // 2,000 NOK a year
		{Name: "Collector", MinSpend: minor(600_000), DiscountPercent: pct(15)}, // 6,000 NOK a year
	})
	if err != nil {
		return fmt.Errorf("demo: tiers: %w", err)
	}
	return nil
}

func summarize(ctx context.Context, db *models.DB) (*Summary, error) {
	s := &Summary{}
	for _, d := range demoStores {
		s.Stores = append(s.Stores, d.code)
	}
	err := db.Pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM members),
		       (SELECT count(*) FROM members WHERE marketing_consent = 'confirmed'),
		       count(*), count(*) FILTER (WHERE kind = 'sale'), count(*) FILTER (WHERE kind = 'refund'),
		       count(*) FILTER (WHERE kind = 'sale' AND member_card IS NULL AND member_email IS NULL AND member_phone IS NULL),
		       count(*) FILTER (WHERE kind = 'sale' AND member_id IS NULL AND member_card IS NOT NULL),
		       (SELECT count(*) FROM transaction_items)
		FROM transactions`).Scan(&s.Members, &s.ConsentedMembers, &s.Transactions, &s.Sales, &s.Refunds,
		&s.AnonymousSales, &s.UnregisteredCardSales, &s.Items)
	if err != nil {
		return nil, fmt.Errorf("demo: summary: %w", err)
	}
	return s, nil
}

// generator holds the random source and what has been generated so far.
type generator struct {
	opts       Options
	rng        *rand.Rand
	oslo       *time.Location
	from       time.Time
	cards      map[string]bool
	people     []person
	memberRows []models.MemberImport
	events     []*event
	txns       []models.TransactionInput
}

type person struct {
	card, email string
	home        int
	joined      time.Time
}

type event struct {
	at       time.Time
	store    int
	card     string
	email    string
	items    []models.ItemInput
	amount   int64
	refundOf *event
	id       string
}

func newGenerator(opts Options) *generator {
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		oslo = time.FixedZone("CET", 3600)
	}
	return &generator{
		opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 0x5eed)), oslo: oslo,
		from:  opts.Now.AddDate(0, 0, -opts.Days),
		cards: map[string]bool{},
	}
}

// card returns a new card number under the shop's restricted-circulation prefix.
func (g *generator) card() string {
	for {
		digits := "29" + fmt.Sprintf("%010d", g.rng.Int64N(10_000_000_000))
		c := models.WithCheckDigit(digits)
		if !g.cards[c] {
			g.cards[c] = true
			return c
		}
	}
}

var asciiName = strings.NewReplacer("æ", "ae", "ø", "o", "å", "a", "Æ", "ae", "Ø", "o", "Å", "a")

func (g *generator) pickStore() int {
	x := g.rng.Float64()
	for i, s := range demoStores {
		if x < s.weight {
			return i
		}
		x -= s.weight
	}
	return 0
}

// members makes the club: names, cards, contact details, consent answers and join dates.
func (g *generator) members() {
	tag := ""
	if g.opts.Seed != 1 {
		tag = fmt.Sprintf(".s%d", g.opts.Seed)
	}
	for i := 0; i < g.opts.Members; i++ {
		first, last := firstNames[g.rng.IntN(len(firstNames))], lastNames[g.rng.IntN(len(lastNames))]
		p := person{card: g.card(), home: g.pickStore()}
		// Some joined before the history starts; most during it, a few in the last days.
		span := float64(g.opts.Days + 180)
		p.joined = g.from.AddDate(0, 0, -180).Add(time.Duration(g.rng.Float64() * span * float64(24*time.Hour)))
		if p.joined.After(g.opts.Now) {
			p.joined = g.opts.Now.Add(-time.Hour)
		}
		row := models.MemberImport{Card: p.card, Name: first + " " + last, HomeStore: demoStores[p.home].code,
			JoinedAt: p.joined.In(g.oslo).Format(time.RFC3339)}
		if g.rng.Float64() < 0.9 {
			p.email = strings.ToLower(asciiName.Replace(first+"."+last)) + "." + strconv.Itoa(i+1) + tag + "@example.com"
			row.Email = p.email
		}
		if g.rng.Float64() < 0.4 {
			// Unique by construction, also across seeds (up to 100 of them).
			row.Phone = fmt.Sprintf("+479%02d%05d", g.opts.Seed%100, i)
		}
		switch x := g.rng.Float64(); {
		case x < 0.66 && row.Email != "": // about 60% of all members
			row.MarketingConsent = "true"
		case x < 0.9:
			row.MarketingConsent = "false"
		}
		g.people = append(g.people, p)
		g.memberRows = append(g.memberRows, row)
	}
}

// birthdays gives some members a birthday, for the birthday flow: most with the year, some
// without. They come from a random source of their own, so the rest of the demo is what it was
// before members had birthdays.
func (g *generator) birthdays() {
	rng := rand.New(rand.NewPCG(g.opts.Seed, 0xb1d))
	for i := range g.memberRows {
		if rng.Float64() >= 0.45 {
			continue
		}
		// A day of a year without 29 February, in a year when the member was 18 to 70.
		day := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(365))
		if rng.Float64() < 0.3 {
			g.memberRows[i].Birthday = day.Format("--01-02")
			continue
		}
		g.memberRows[i].Birthday = fmt.Sprintf("%04d-%s", g.opts.Now.Year()-18-rng.IntN(53), day.Format("01-02"))
	}
}

func (g *generator) pickBehaviour() behaviour {
	x := g.rng.Float64()
	for _, b := range behaviours {
		if x < b.share {
			return b
		}
		x -= b.share
	}
	return behaviours[0]
}

func (g *generator) between(r [2]float64) float64 { return r[0] + g.rng.Float64()*(r[1]-r[0]) }

// atOpeningHours moves t to a time of day when the shops are open (10:00-18:00 in Oslo).
func (g *generator) atOpeningHours(t time.Time) time.Time {
	y, m, d := t.In(g.oslo).Date()
	minute := 10*60 + g.rng.IntN(8*60)
	return time.Date(y, m, d, minute/60, minute%60, g.rng.IntN(60), 0, g.oslo)
}

// basket fills a receipt: mostly café, sometimes a record or two, now and then merchandise.
func (g *generator) basket(e *event) {
	n := 1 + g.rng.IntN(3)
	if g.rng.Float64() < 0.2 {
		n++
	}
	for range n {
		var p product
		switch x := g.rng.Float64(); {
		case x < 0.6:
			p = cafe[g.rng.IntN(len(cafe))]
		case x < 0.92:
			p = records[g.rng.IntN(len(records))]
		default:
			p = merch[g.rng.IntN(len(merch))]
		}
		qty := int64(1)
		if g.rng.Float64() < 0.1 {
			qty = 2
		}
		e.items = append(e.items, models.ItemInput{SKU: p.sku, Qty: models.NewInt(qty), UnitPrice: models.NewInt(p.price)})
		e.amount += qty * p.price
	}
}

// purchases generates every sale and refund, then numbers them per store in time order, as
// tills do.
func (g *generator) purchases() {
	day := float64(24 * time.Hour)
	end := g.opts.Now
	identified := 0
	for _, p := range g.people {
		b := g.pickBehaviour()
		t := p.joined
		if t.Before(g.from) {
			// Already a customer when the history starts: first purchase some days in.
			t = g.from.Add(time.Duration(g.rng.Float64() * 30 * day))
		}
		gap := g.between(b.meanGap)
		dropout := g.between(b.dropout)
		stopAt := end
		if b.churnMidway {
			stopAt = t.Add(time.Duration(g.rng.Float64() * float64(end.Sub(t))))
		}
		for t.Before(stopAt) {
			at := g.atOpeningHours(t)
			if at.After(end) {
				break
			}
			store := p.home
			if g.rng.Float64() < 0.2 {
				store = g.pickStore()
			}
			e := &event{at: at, store: store, card: p.card}
			if p.email != "" && g.rng.Float64() < 0.15 { // forgot the card, gave the email
				e.card, e.email = "", p.email
			}
			g.basket(e)
			g.events = append(g.events, e)
			identified++
			if b.onceOnly || g.rng.Float64() < dropout {
				break
			}
			t = t.Add(time.Duration(g.rng.ExpFloat64() * gap * day))
		}
	}
	// Pre-printed cards handed out that nobody registered: a few purchases each, never linked.
	for range g.opts.Members / 12 {
		card := g.card()
		store := g.pickStore()
		t := g.from.Add(time.Duration(g.rng.Float64() * float64(end.Sub(g.from))))
		for k := 0; k < 1+g.rng.IntN(6) && t.Before(end); k++ {
			e := &event{at: g.atOpeningHours(t), store: store, card: card}
			if e.at.After(end) {
				break
			}
			g.basket(e)
			g.events = append(g.events, e)
			identified++
			t = t.Add(time.Duration(g.rng.ExpFloat64() * 40 * day))
		}
	}
	// A quarter of all sales are anonymous, growing a little as the shops get known.
	anonymous := identified / 3
	for range anonymous {
		x := math.Sqrt(g.rng.Float64())
		e := &event{at: g.atOpeningHours(g.from.Add(time.Duration(x * float64(end.Sub(g.from))))), store: g.pickStore()}
		if e.at.After(end) {
			e.at = e.at.AddDate(0, 0, -1)
		}
		g.basket(e)
		g.events = append(g.events, e)
	}
	// About 2% of sales come back as a refund of one line, within two weeks.
	sales := len(g.events)
	for i := 0; i < sales; i++ {
		s := g.events[i]
		if g.rng.Float64() >= 0.02 {
			continue
		}
		at := g.atOpeningHours(s.at.Add(time.Duration((1 + g.rng.Float64()*13) * day)))
		if at.After(end) {
			continue
		}
		line := s.items[g.rng.IntN(len(s.items))]
		r := &event{at: at, store: s.store, refundOf: s, amount: line.UnitPrice.Value,
			items: []models.ItemInput{{SKU: line.SKU, Qty: models.NewInt(1), UnitPrice: line.UnitPrice}}}
		g.events = append(g.events, r)
	}
	sort.SliceStable(g.events, func(i, j int) bool { return g.events[i].at.Before(g.events[j].at) })
	prefix := "DEMO-" // apart from the ids the README has newcomers post
	if g.opts.Seed != 1 {
		prefix = fmt.Sprintf("DEMO%d-", g.opts.Seed)
	}
	seq := make([]int, len(demoStores))
	g.txns = make([]models.TransactionInput, 0, len(g.events))
	for _, e := range g.events {
		seq[e.store]++
		e.id = fmt.Sprintf("%s%06d", prefix, seq[e.store])
		in := models.TransactionInput{ID: e.id, Store: demoStores[e.store].code, Register: "till-" + strconv.Itoa(1+g.rng.IntN(2)),
			Kind: models.KindSale, OccurredAt: e.at.Format(time.RFC3339), Amount: models.NewInt(e.amount), Currency: "NOK",
			Items: e.items}
		if e.card != "" || e.email != "" {
			in.Member = &models.MemberRef{Card: e.card, Email: e.email}
		}
		if e.refundOf != nil {
			in.Kind, in.Refunds = models.KindRefund, e.refundOf.id
		}
		g.txns = append(g.txns, in)
	}
}

// txnSlice serves generated transactions to the import, numbered from 1.
type txnSlice struct {
	rows []models.TransactionInput
	i    int
}

func (s *txnSlice) Next() (int, *models.TransactionInput, error) {
	if s.i >= len(s.rows) {
		return 0, nil, io.EOF
	}
	s.i++
	return s.i, &s.rows[s.i-1], nil
}

// Reset implements models.ResettableSource.
func (s *txnSlice) Reset() error { s.i = 0; return nil }

// memberSlice serves generated members to the import.
type memberSlice struct {
	rows []models.MemberImport
	i    int
}

func (s *memberSlice) Next() (int, *models.MemberImport, error) {
	if s.i >= len(s.rows) {
		return 0, nil, io.EOF
	}
	s.i++
	return s.i, &s.rows[s.i-1], nil
}

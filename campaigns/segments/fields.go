package segments

import (
	"slices"
	"sort"
)

// Type is the type of a field's values; it decides the operators and the values a rule takes.
type Type string

// Field types.
const (
	TypeText    Type = "text"
	TypeEnum    Type = "enum" // text with a fixed set of values
	TypeInteger Type = "integer"
	TypeNumber  Type = "number" // floating point, e.g. a probability
	TypeTime    Type = "time"   // values are RFC 3339 instants or YYYY-MM-DD dates
)

// cast is the SQL type every argument of the type is cast to, so that PostgreSQL never has to
// guess a parameter's type from context.
func (t Type) cast() string {
	switch t {
	case TypeInteger:
		return "bigint"
	case TypeNumber:
		return "float8"
	case TypeTime:
		return "timestamptz"
	default:
		return "text"
	}
}

// defaultOps are the operators a type allows. Numbers get no eq/ne/in: equality on floating
// point figures is a trap. Times get no in-lists: a list of instants is never what is meant.
var defaultOps = map[Type][]Op{
	TypeText:    {Eq, Ne, In, NotIn, Contains, StartsWith},
	TypeEnum:    {Eq, Ne, In, NotIn},
	TypeInteger: {Eq, Ne, Lt, Lte, Gt, Gte, Between, In, NotIn},
	TypeNumber:  {Lt, Lte, Gt, Gte, Between},
	TypeTime:    {Eq, Ne, Lt, Lte, Gt, Gte, Between},
}

// Field is one field a rule may name.
type Field struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
	// Ops are the operators allowed on the field: the type's, plus is_null/is_not_null when the
	// field may be NULL.
	Ops []Op `json:"ops"`
	// Values are the allowed values of an enum field.
	Values []string `json:"values,omitempty"`
	// Doc says what the field means, for the segment editor.
	Doc string `json:"doc"`
	// WithinDays says that a rule on the field may carry "within_days": N (default
	// DefaultWithinDays), the window it looks back over.
	WithinDays bool `json:"within_days,omitempty"`

	nullable bool
	foldCase bool
	// bounded integers take only values in [min, max] (birthday_month is 1–12), so a typo
	// such as 13 is an error rather than a rule that silently matches nobody.
	bounded  bool
	min, max int64 // values are compared lower-cased (the SQL expression is lower-cased too)
	// sql is the SQL expression of the field for the member m; computed figures need the
	// compiler for the as-of arguments.
	sql func(c *compiler) string
	// leaf, when set, compiles the whole rule itself (a field that is better matched as a
	// set of ids than as a value per member).
	leaf func(c *compiler, op Op, v operand) string
}

// registry holds every field, built once and never changed. A new field is one more entry here.
var registry = func() map[string]*Field {
	m := map[string]*Field{}
	for _, f := range []Field{
		{
			Name: "home_store", Type: TypeText, nullable: true,
			Doc:  "code of the member's home store",
			Ops:  []Op{Eq, Ne, In, NotIn, StartsWith},
			leaf: homeStoreLeaf,
		},
		{
			Name: "status", Type: TypeEnum, Values: []string{"pending", "active", "erased"},
			Doc: "pending (email not confirmed), active or erased",
			sql: column("m.status"),
		},
		{
			Name: "marketing_consent", Type: TypeEnum, Values: []string{"none", "pending", "confirmed", "withdrawn"},
			Doc: "current answer to marketing email; only confirmed may be mailed",
			sql: column("m.marketing_consent"),
		},
		{
			Name: "joined_at", Type: TypeTime,
			Doc: "when the member joined; a YYYY-MM-DD value is that whole day in the shop's timezone",
			sql: column("m.joined_at"),
		},
		{
			Name: "email_domain", Type: TypeText, nullable: true, foldCase: true,
			Doc: "the part of the email address after @, lower case; NULL without an email",
			// NULLIF: an email without @ has no domain rather than an empty one.
			sql: column("NULLIF(lower(split_part(m.email, '@', 2)), '')"),
		},
		{
			// The latest metrics run's figure (member_metrics), not one measured at the as-of
			// time: RFM scores are relative to everyone in the run. A primary-key probe per member.
			Name: "rfm_segment", Type: TypeEnum, nullable: true,
			Values: []string{"Champions", "Loyal", "Potential loyalists", "New", "At risk", "Can't lose", "Hibernating", "Lost"},
			Doc:    "RFM segment of the latest metrics run (docs/metrics.md); NULL if the member never bought or no run has scored them",
			sql:    column("(SELECT mm.rfm_segment FROM member_metrics mm WHERE mm.member_id = m.id)"),
		},
		// The model figures are, like rfm_segment, the latest metrics run's (member_metrics), as
		// of that run's date rather than the segment's as-of time: refitting BG/NBD per segment
		// evaluation would take seconds. A member with no row, or without a usable fit, is NULL.
		{
			Name: "p_alive", Type: TypeNumber, nullable: true,
			Doc: "probability 0–1 that the member is still a customer (BG/NBD), as of the latest metrics run; NULL if never bought or no usable fit",
			sql: column("(SELECT mm.p_alive FROM member_metrics mm WHERE mm.member_id = m.id)"),
		},
		{
			Name: "expected_purchases", Type: TypeNumber, nullable: true,
			Doc: "purchases expected over the metrics horizon (BG/NBD), as of the latest metrics run; NULL if never bought or no usable fit",
			sql: column("(SELECT mm.expected_purchases FROM member_metrics mm WHERE mm.member_id = m.id)"),
		},
		{
			Name: "clv_predicted", Type: TypeNumber, nullable: true,
			Doc: "discounted spend expected over the metrics horizon, in minor units, as of the latest metrics run; NULL if never bought or no usable fit",
			sql: column("(SELECT mm.clv_predicted FROM member_metrics mm WHERE mm.member_id = m.id)"),
		},
		{
			Name: "days_since_last_purchase", Type: TypeInteger, nullable: true,
			Doc: "whole days (24 h) from the last sale before the as-of time; NULL if none",
			sql: daysSinceLastPurchase,
		},
		{
			Name: "tier", Type: TypeText, nullable: true,
			Doc: "name of the member's club tier (GET /tiers) as of the as-of time: the tier with the highest threshold at or below spend_365d; NULL below every threshold or without tiers",
			Ops: []Op{Eq, Ne, In, NotIn},
			sql: tier,
		},
		{
			Name: "birthday_month", Type: TypeInteger, nullable: true, bounded: true, min: 1, max: 12,
			Doc: "month of the member's birthday, 1 (January) to 12; NULL when the member gave no birth date",
			sql: column("extract(month FROM m.birth_date)::bigint"),
		},
		{
			// Now, not as of the as-of time: a balance is what the member can spend today.
			Name: "points_balance", Type: TypeInteger,
			Doc: "the member's reward points now (the sum of their points ledger); 0 without points",
			sql: column("(SELECT coalesce(sum(pl.points), 0) FROM points_ledger pl WHERE pl.member_id = m.id)"),
		},
		{
			Name: "bought_sku", Type: TypeText, Ops: []Op{Eq, In}, WithinDays: true,
			Doc: "the member bought this sku (exact) in the within_days days (default 365) before the as-of time, on a sale not refunded by a refund naming it; skus not in the catalogue count too",
			leaf: boughtLeaf(func(c *compiler, op Op, v operand) (string, string) {
				return "transaction_items i", c.predicate(TypeText, "i.sku", op, v)
			}),
		},
		{
			Name: "bought_category", Type: TypeText, Ops: []Op{Eq, In}, WithinDays: true, foldCase: true,
			Doc:  "the member bought a product of this catalogue category (any case) in the within_days days (default 365) before the as-of time, on a sale not refunded by a refund naming it",
			leaf: boughtLeaf(catalogueSKUs("p.category")),
		},
		{
			Name: "bought_brand", Type: TypeText, Ops: []Op{Eq, In}, WithinDays: true, foldCase: true,
			Doc:  "the member bought a product of this catalogue brand (any case) in the within_days days (default 365) before the as-of time, on a sale not refunded by a refund naming it",
			leaf: boughtLeaf(catalogueSKUs("p.brand")),
		},
		{
			Name: "received_campaign", Type: TypeInteger, Ops: []Op{Eq, In},
			Doc:  "id of a campaign (or flow mail step) that was sent to the member before the as-of time",
			leaf: receivedCampaignLeaf,
		},
		{
			Name: "clicked_campaign", Type: TypeInteger, Ops: []Op{Eq, In},
			Doc:  "id of a campaign (or flow mail step) in which the member clicked a tracked link before the as-of time",
			leaf: clickedCampaignLeaf,
		},
		{
			Name: "days_since_last_mail", Type: TypeInteger, nullable: true,
			Doc: "whole days (24 h) from the last campaign or flow mail sent to the member before the as-of time; NULL if none",
			sql: daysSinceLastMail,
		},
		{
			Name: "language", Type: TypeText, Ops: []Op{Eq, Ne, In, NotIn}, foldCase: true,
			Doc: "the language code mail to the member is written in (en, nb, ...), lower case",
			sql: column("m.language"),
		},
		{
			Name: "orders_365d", Type: TypeInteger,
			Doc: "sales in the 365 days before the as-of time",
			sql: orders365d,
		},
		{
			Name: "spend_365d", Type: TypeInteger,
			Doc: "sales minus refunds in the 365 days before the as-of time, in minor units",
			sql: spend365d,
		},
	} {
		m[f.Name] = field(f)
	}
	return m
}()

// field fills in the operators a definition leaves to its type.
func field(f Field) *Field {
	if f.Ops == nil {
		f.Ops = slices.Clone(defaultOps[f.Type])
	}
	if f.nullable {
		f.Ops = append(f.Ops, IsNull, IsNotNull)
	}
	return &f
}

func column(expr string) func(*compiler) string {
	return func(*compiler) string { return expr }
}

// Fields lists every field a rule may name, by name, for the segment editor.
func Fields() []Field {
	out := make([]Field, 0, len(registry))
	for _, f := range registry {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *Field) allows(op Op) bool { return slices.Contains(f.Ops, op) }

// The computed purchase figures are correlated subqueries on transactions, one probe per member
// on the index transactions_member (member_id, occurred_at): the equality on member_id and the
// range on occurred_at make it an index range scan, and max(occurred_at) a backward index scan
// that stops at the first sale. Only transactions before the as-of time count, so a segment
// evaluated for a past date ignores what came later, and tests can fix the clock. Refunds carry
// the member of the sale they refund (see models.insertTransactions), so member_id is enough.
// member_metrics keeps the same three figures per member after each metrics run, but they are
// computed here live on purpose: they are exact as of the segment's as-of time (a campaign sent
// at noon sees the morning's purchases), whereas p_alive, expected_purchases, clv_predicted
// and rfm_segment are as of the latest metrics run.

// daysSinceLastPurchase: a purchase is a sale; refunds do not make a member recent.
func daysSinceLastPurchase(c *compiler) string {
	asOf := c.asOfArg()
	return `floor(extract(epoch FROM ` + asOf + ` - (
        SELECT max(t.occurred_at) FROM transactions t
        WHERE t.member_id = m.id AND t.kind = 'sale' AND t.occurred_at < ` + asOf + `)) / 86400)::bigint`
}

// orders365d counts sales in [as-of − 365 days, as-of): in_trailing_year, the window of the club
// tier (models/migrations/00017_tier_rule.sql), inlined by the planner into the two bounds of an
// index range scan.
func orders365d(c *compiler) string {
	return `(SELECT count(*) FROM transactions t
        WHERE t.member_id = m.id AND t.kind = 'sale'
          AND in_trailing_year(t.occurred_at, ` + c.asOfArg() + `, ` + c.zoneArg() + `))`
}

// spend365d is net (net_amount: sales minus refunds) in [as-of − 365 days, as-of), 0 without
// any. Amounts of stores in different currencies are added as they are (minor units).
func spend365d(c *compiler) string {
	return `(SELECT coalesce(sum(net_amount(t.kind, t.amount_minor)), 0)::bigint
        FROM transactions t
        WHERE t.member_id = m.id
          AND in_trailing_year(t.occurred_at, ` + c.asOfArg() + `, ` + c.zoneArg() + `))`
}

// tier is the club tier as a till lookup finds it (models.FindMemberTier), as of the segment's as-of
// time: the SQL function member_tier, the rule's one home (models/migrations/00017_tier_rule.sql),
// over spend_365d's window. The planner inlines it: one index probe per member for the spend and
// a join against the handful of tiers.
func tier(c *compiler) string {
	return `(SELECT mt.name FROM member_tier(m.id, ` + c.asOfArg() + `, ` + c.zoneArg() + `) mt)`
}

// homeStoreLeaf matches the member's home_store_id against the ids of the stores whose code
// matches, rather than looking up each member's store code: the planner hashes the few store
// ids (or probes members_home_store) instead of running a subquery per member. Negative
// operators exclude members without a home store explicitly, because NOT IN over an empty
// set (an unknown code) would otherwise be true for them.
func homeStoreLeaf(c *compiler, op Op, v operand) string {
	switch op {
	case IsNull:
		return "m.home_store_id IS NULL"
	case IsNotNull:
		return "m.home_store_id IS NOT NULL"
	case Ne, NotIn:
		positive := Eq
		if op == NotIn {
			positive = In
		}
		return "(m.home_store_id IS NOT NULL AND m.home_store_id NOT IN (SELECT s.id FROM stores s WHERE " +
			c.predicate(TypeText, "s.code", positive, v) + "))"
	default:
		return "m.home_store_id IN (SELECT s.id FROM stores s WHERE " + c.predicate(TypeText, "s.code", op, v) + ")"
	}
}

// What a member bought (bought_sku, bought_category, bought_brand): the members with a receipt
// line matching the rule on a sale in [as-of − within_days days, as-of), the days counted in the
// shop's zone (as in_trailing_year counts its 365), where the sale was not refunded: a line
// counts unless a refund transaction in the same store names the line's sale
// (refunds_txn_id = the sale's txn_id) and took place before the as-of time. Such a refund takes
// back all of the sale's lines whatever its amount (a partial refund too); a refund that names
// no sale takes back nothing here (it still lowers spend_365d). A line whose
// sku is not in the catalogue counts for bought_sku and never matches a category or brand.
//
// The rule compiles to "m.id IN (members with such a line)", one set computed once per query,
// rather than a subquery per member. A category or brand is a join from the catalogue:
// "products p JOIN transaction_items i ON i.sku = p.sku WHERE lower(p.category) = ..." (p.sku is
// the primary key, so the join adds no rows), so that the planner sees the category's skus
// (an InitPlan's array of skus hid them: it guessed 5,346 lines for 157,538).
//
// A line carries its sale's member_id, occurred_at and kind (migration 00028, kept equal to the
// sale's by the database), so the lines of a sku in the window are one range of the partial
// index transaction_items_bought (sku, occurred_at) INCLUDE (member_id, transaction_id), read by
// index only, and transactions is not joined. Until then the rule reached each line's sale: at
// the size (1M members, 10M transactions, 25M lines) that was a scan of the window's
// ~5M sales and a probe of transactions_refunds per sale, 5–14 s where the issue asks for 2 s
// (docs/benchmarks.md, "Catalogue"). The refund check is lineNotRefunded. The plan at that size
// (category 01: 125 skus, 646,688 lines in the window, 305,743 members; 0.9–1.5 s on the 2-core
// machine):
//
//	Aggregate
//	  -> Hash Semi Join (m.id = i.member_id)
//	       -> Index Only Scan on members m (members_pkey)
//	       -> Hash -> Hash Anti Join (i.transaction_id = s.id)       [refunds by the till's ids: none]
//	            -> Hash Anti Join (i.transaction_id = r.refunds_id)   [the 199,761 refunded sales, once]
//	                 -> Nested Loop
//	                      -> Bitmap Heap Scan on products p (products_category)
//	                      -> Index Only Scan on transaction_items i (transaction_items_bought, sku = p.sku, occurred_at in the window)
//	                 -> Hash -> Index Only Scan on transactions r (transactions_refunded)
//	            -> Hash -> Nested Loop
//	                 -> Bitmap Heap Scan on transactions r (transactions_unresolved_refunds)
//	                 -> Index Scan on transactions s (transactions_store_id_txn_id_key)
//
// bought_sku is the same from the given skus.
func boughtLeaf(lines func(c *compiler, op Op, v operand) (from, where string)) func(c *compiler, op Op, v operand) string {
	return func(c *compiler, op Op, v operand) string {
		asOf := c.asOfArg()
		since := c.arg(c.asOf.AddDate(0, 0, -int(v.days)), "timestamptz")
		from, where := lines(c, op, v)
		return `m.id IN (SELECT i.member_id FROM ` + from + `
        WHERE ` + where + ` AND i.kind = 'sale' AND i.member_id IS NOT NULL
          AND i.occurred_at >= ` + since + ` AND i.occurred_at < ` + asOf + `
          AND ` + lineNotRefunded("i", asOf) + `)`
	}
}

// lineNotRefunded is the one home of "this sale line still counts" as of asOf (a placeholder):
// no refund in the sale's store names the line's sale (refunds_txn_id = its txn_id) before asOf.
// line is the alias of the transaction_items row. Used by the bought_* fields and by
// Categories. A refund keeps the row id of the sale it names (refunds_id, migration 00028), so
// the sales refunded before asOf are one index-only scan of the few refunds
// (transactions_refunded), hashed once; the refunds whose sale was not stored yet when they
// were (refunds_id NULL, normally none) are matched by the till's ids instead
// (transactions_unresolved_refunds). Through the till's ids alone it took a probe of the sale
// for each of the 199,761 refunds at the size, 10.6 s of a 15 s count.
func lineNotRefunded(line, asOf string) string {
	return `NOT EXISTS (SELECT 1 FROM transactions r
                          WHERE r.refunds_id = ` + line + `.transaction_id AND r.kind = 'refund' AND r.occurred_at < ` + asOf + `)
          AND NOT EXISTS (SELECT 1 FROM transactions r JOIN transactions s ON s.store_id = r.store_id AND s.txn_id = r.refunds_txn_id
                          WHERE s.id = ` + line + `.transaction_id AND r.kind = 'refund' AND r.refunds_txn_id IS NOT NULL
                            AND r.refunds_id IS NULL AND r.occurred_at < ` + asOf + `)`
}

// catalogueSKUs is the lines of the catalogue products whose column (category or brand)
// matches, lower-cased on both sides (the values are lower-cased by foldCase).
func catalogueSKUs(column string) func(c *compiler, op Op, v operand) (string, string) {
	return func(c *compiler, op Op, v operand) (string, string) {
		return "products p JOIN transaction_items i ON i.sku = p.sku", c.predicate(TypeText, "lower("+column+")", op, v)
	}
}

// receivedCampaignLeaf: the members a run of the campaign mailed (status sent) before the
// as-of time. A flow's mail step is a campaign too, so its id works the same.
func receivedCampaignLeaf(c *compiler, op Op, v operand) string {
	return `m.id IN (SELECT cr.member_id FROM campaign_recipients cr JOIN campaign_runs r ON r.id = cr.run_id
        WHERE ` + c.predicate(TypeInteger, "r.campaign_id", op, v) + ` AND cr.status = 'sent' AND cr.sent_at < ` + c.asOfArg() + `)`
}

// clickedCampaignLeaf: the members who clicked a tracked link of the campaign's mail before the
// as-of time (campaign_clicks, through its runs).
func clickedCampaignLeaf(c *compiler, op Op, v operand) string {
	return `m.id IN (SELECT cc.member_id FROM campaign_clicks cc JOIN campaign_runs r ON r.id = cc.run_id
        WHERE ` + c.predicate(TypeInteger, "r.campaign_id", op, v) + ` AND cc.clicked_at < ` + c.asOfArg() + `)`
}

// daysSinceLastMail is days_since_last_purchase for mail: the newest sent campaign or flow mail
// before the as-of time, one probe per member on campaign_recipients_member.
func daysSinceLastMail(c *compiler) string {
	asOf := c.asOfArg()
	return `floor(extract(epoch FROM ` + asOf + ` - (
        SELECT max(cr.sent_at) FROM campaign_recipients cr
        WHERE cr.member_id = m.id AND cr.status = 'sent' AND cr.sent_at < ` + asOf + `)) / 86400)::bigint`
}

package segments

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models"
)

// What a segment buys (GET /metrics/categories, the dashboard's category table): per catalogue
// category, the segment's buyers, their orders, units and revenue, and the category's repeat
// rate, over the DefaultWithinDays days before the as-of time. Lines count exactly as for the
// bought_* fields: lines of sales in the window whose sale no refund named before the as-of
// time (lineNotRefunded). Definitions in docs/metrics.md, section "Categories of a segment".

// MaxCategoryRows bounds one answer: the categories with the most revenue, then the
// uncategorised row whatever its revenue.
const MaxCategoryRows = 500

// CategoryRow is one category of a segment's purchases. Revenue is in minor units.
type CategoryRow struct {
	// Category is the catalogue's spelling (categories are compared in lower case, and the first
	// spelling in byte order names them); nil for the uncategorised row: lines whose sku is not
	// in the catalogue or whose product has no category.
	Category   *string  `json:"category"`
	Buyers     int64    `json:"buyers"`  // members of the segment with a counted line
	Orders     int64    `json:"orders"`  // their sales with such a line
	Units      int64    `json:"units"`   // Σ qty
	Revenue    int64    `json:"revenue"` // Σ qty × unit_price_minor of the lines
	RepeatRate *float64 `json:"repeat_rate"`
}

// CategoryReport is the answer of Categories.
type CategoryReport struct {
	Segment    string        `json:"segment"`
	AsOf       time.Time     `json:"as_of"`
	From       time.Time     `json:"from"` // the window is [from, as_of)
	Categories []CategoryRow `json:"categories"`
	Truncated  bool          `json:"truncated"` // more than MaxCategoryRows categories: the rest are left out
}

// categoriesSQL: $1 the window's start, $2 the as-of time, then the segment's own arguments.
// The segment is evaluated once (a hashed set of member ids); the window's sale lines are read
// with their copies of the sale's member, time and kind (migration 00028), without a join to
// transactions, and the refunded sales are hashed once (lineNotRefunded). Lines are summed per
// sale, then per buyer: counting a buyer's orders with count(DISTINCT) sorted every line
// instead (bought_plan_test.go). At the size the segment "all" is ~10M lines and 6.75M
// (category, buyer) pairs, and those sums, not reading the lines, are most of the time
// (docs/benchmarks.md, "Catalogue"). The uncategorised row sorts first so that the LIMIT never
// cuts it off; Categories puts it last.
const categoriesSQL = `
WITH lines AS (
    SELECT i.member_id, i.transaction_id AS txn, i.qty, i.qty::bigint * i.unit_price_minor AS amount,
           lower(nullif(p.category, '')) AS cat, nullif(p.category, '') AS spelling
    FROM transaction_items i
    LEFT JOIN products p ON p.sku = i.sku
    WHERE i.kind = 'sale' AND i.member_id IN (SELECT m.id FROM members m WHERE %s)
      AND i.occurred_at >= $1::timestamptz AND i.occurred_at < $2::timestamptz
      AND %s
), per_order AS (
    SELECT cat, member_id, min(spelling COLLATE "C") AS spelling, sum(qty) AS units, sum(amount) AS revenue
    FROM lines GROUP BY cat, member_id, txn
), per_buyer AS (
    SELECT cat, member_id, min(spelling COLLATE "C") AS spelling, count(*) AS orders,
           sum(units) AS units, sum(revenue) AS revenue
    FROM per_order GROUP BY cat, member_id
)
SELECT min(spelling COLLATE "C"), count(*), sum(orders)::bigint, sum(units)::bigint, sum(revenue)::bigint,
       (count(*) FILTER (WHERE orders >= 2))::float8 / count(*)
FROM per_buyer
GROUP BY cat
ORDER BY cat IS NULL DESC, sum(revenue) DESC, cat
LIMIT %d`

// Categories reports what the members of the segment key (see KeyTree; errors name the field
// "segment") bought in the DefaultWithinDays days before asOf, per category. asOf's location is
// the shop's time zone, in which the window's days are counted, as for the bought_* fields.
func Categories(ctx context.Context, db *models.DB, key string, asOf time.Time) (*CategoryReport, error) {
	tree, err := KeyTree(ctx, db, key, "segment")
	if err != nil {
		return nil, err
	}
	where, args := "true", []any(nil)
	if tree != nil {
		if where, args, err = Compile(tree, asOf, 2); err != nil {
			return nil, fmt.Errorf("categories of %s: %v", key, err) // KeyTree checked it: not the caller's fault
		}
	}
	if key == "" {
		key = "all"
	}
	rep := &CategoryReport{Segment: key, AsOf: asOf, From: asOf.AddDate(0, 0, -DefaultWithinDays)}
	sql := fmt.Sprintf(categoriesSQL, where, lineNotRefunded("i", "$2::timestamptz"), MaxCategoryRows+1)
	rows, err := db.Pool.Query(ctx, sql, append([]any{rep.From, asOf}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("categories of %s: %w", key, err)
	}
	rep.Categories, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (CategoryRow, error) {
		var c CategoryRow
		err := r.Scan(&c.Category, &c.Buyers, &c.Orders, &c.Units, &c.Revenue, &c.RepeatRate)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("categories of %s: %w", key, err)
	}
	if rep.Truncated = len(rep.Categories) > MaxCategoryRows; rep.Truncated {
		rep.Categories = rep.Categories[:MaxCategoryRows]
	}
	if c := rep.Categories; len(c) > 0 && c[0].Category == nil { // uncategorised last, as people read a table
		rep.Categories = append(c[1:], c[0])
	}
	if rep.Categories == nil {
		rep.Categories = []CategoryRow{}
	}
	return rep, nil
}

var cohortKey = regexp.MustCompile(`^([0-9]{4})-Q([1-4])$`)

// KeyTree is the rule tree of a segment as the metrics name it (docs/metrics.md, "Segment
// families"), so that GET /metrics/categories and the dashboard take the same names as GET
// /metrics/segments: "all" (nil: every member), "store:<code>", "tier:<name>", "rfm:<name>",
// "cohort:<YYYY-Qn>" and "segment:<id>" (a saved segment). The families are evaluated live,
// as of the report's time, with the segment fields of the same meaning (rfm_segment is the
// latest run's); the rewards family has no such field and is refused. Errors are EINVALID
// naming field.
func KeyTree(ctx context.Context, db *models.DB, key, field string) (*Node, error) {
	bad := func(why string) error {
		return &models.Error{Code: models.EINVALID, Message: "invalid segment", Fields: map[string]string{field: why}}
	}
	family, rest, _ := strings.Cut(key, ":")
	rule := func(name string, value any) *Node { return &Node{Field: name, Op: Eq, Value: value} }
	var tree *Node
	switch {
	case key == "" || key == "all":
		return nil, nil
	case rest == "":
		return nil, bad("must be all, store:<code>, tier:<name>, rfm:<name>, cohort:<YYYY-Qn> or segment:<id>")
	case family == "segment":
		id, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return nil, bad("a saved segment is segment:<id>")
		}
		s, err := find(ctx, db, id)
		if models.ErrorCode(err) == models.ENOTFOUND {
			return nil, bad("no saved segment has this id")
		}
		if err != nil {
			return nil, err
		}
		return s.tree()
	case family == "store":
		tree = rule("home_store", rest)
	case family == "tier":
		tree = rule("tier", rest)
	case family == "rfm":
		tree = rule("rfm_segment", rest)
	case family == "cohort":
		m := cohortKey.FindStringSubmatch(rest)
		if m == nil {
			return nil, bad("a cohort is cohort:<YYYY-Qn>, e.g. cohort:2025-Q2")
		}
		y, _ := strconv.Atoi(m[1])
		q, _ := strconv.Atoi(m[2])
		first := time.Date(y, time.Month(3*q-2), 1, 0, 0, 0, 0, time.UTC)
		last := first.AddDate(0, 3, -1)
		tree = &Node{Field: "joined_at", Op: Between, Value: []any{first.Format(time.DateOnly), last.Format(time.DateOnly)}}
	default:
		return nil, bad("the " + family + " family has no categories report; use all, store, tier, rfm, cohort or segment")
	}
	// A name the field refuses (an rfm segment that does not exist, a code too long) is the
	// request's fault: say so under the request's field rather than under "rules".
	var e *models.Error
	if err := Validate(tree); errors.As(err, &e) {
		return nil, bad("names no segment: " + e.Error())
	} else if err != nil {
		return nil, err
	}
	return tree, nil
}

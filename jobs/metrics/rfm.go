package metrics

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The RFM step of a run (docs/metrics.md, "RFM"). PostgreSQL scores every member with a purchase
// in the window [A−W, A) into quintiles with ntile(5) and names the segment from the R×F grid
// below, into a temporary table that the rfm family reads (so rfm:<name> segments get the
// historic and model figures like any other family) and that the model step writes into
// member_metrics together with the run's other per-member figures (one write per member).

// The RFM segment names, as stored in member_metrics.rfm_segment and reported as rfm:<name>.
const (
	RFMChampions          = "Champions"
	RFMLoyal              = "Loyal"
	RFMPotentialLoyalists = "Potential loyalists"
	RFMNew                = "New"
	RFMAtRisk             = "At risk"
	RFMCantLose           = "Can't lose"
	RFMHibernating        = "Hibernating"
	RFMLost               = "Lost"
)

// RFMSegmentNames lists every RFM segment name, best customers first; every run reports one
// rfm:<name> segment for each, even an empty one.
var RFMSegmentNames = []string{RFMChampions, RFMLoyal, RFMPotentialLoyalists, RFMNew, RFMAtRisk,
	RFMCantLose, RFMHibernating, RFMLost}

// rfmGrid names the segment of a recency score R (row R−1) and frequency score F (column F−1):
// the common R×F grid of marketing tools, folded into the eight names of the contract (see the
// table in docs/metrics.md). It is the one source of the mapping: the SQL is generated from it.
var rfmGrid = [5][5]string{
	// Columns F = 1 … 5.
	{RFMLost, RFMLost, RFMAtRisk, RFMAtRisk, RFMCantLose},                              // R=1
	{RFMHibernating, RFMHibernating, RFMAtRisk, RFMAtRisk, RFMCantLose},                // R=2
	{RFMHibernating, RFMHibernating, RFMPotentialLoyalists, RFMLoyal, RFMLoyal},        // R=3
	{RFMNew, RFMPotentialLoyalists, RFMPotentialLoyalists, RFMLoyal, RFMLoyal},         // R=4
	{RFMNew, RFMPotentialLoyalists, RFMPotentialLoyalists, RFMChampions, RFMChampions}, // R=5
}

// RFMSegment names the segment of the scores r, f and m (each 1–5); the monetary score does not
// change the name (it is kept per member for targeting). It returns "" for a score out of range.
func RFMSegment(r, f, m int) string {
	if r < 1 || r > 5 || f < 1 || f > 5 || m < 1 || m > 5 {
		return ""
	}
	return rfmGrid[r-1][f-1]
}

// sqlString quotes s as a SQL string literal; only the constant names above go through it.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// rfmFamily is the rfm family: members by the RFM segment of this run (the temporary table
// metrics_rfm, which Compute fills before any family is read). Every name is listed, so an
// empty segment is reported too; members who never bought before A are in no rfm segment.
func rfmFamily() Family {
	names := make([]string, len(RFMSegmentNames))
	for i, n := range RFMSegmentNames {
		names[i] = "(" + sqlString(n) + ")"
	}
	return Family{Name: "rfm", Membership: `
			SELECT 'rfm:' || n.name, r.member_id
			FROM (VALUES ` + strings.Join(names, ", ") + `) n(name)
			LEFT JOIN metrics_rfm r ON r.rfm_segment = n.name`}
}

// rfmGridSQL is the grid as a VALUES list (r, f, name) to join the scores to.
func rfmGridSQL() string {
	var rows []string
	for r := 1; r <= 5; r++ {
		for f := 1; f <= 5; f++ {
			rows = append(rows, "("+strconv.Itoa(r)+", "+strconv.Itoa(f)+", "+sqlString(rfmGrid[r-1][f-1])+")")
		}
	}
	return "(VALUES " + strings.Join(rows, ", ") + ")"
}

const rfmTableSQL = `
CREATE TEMP TABLE metrics_rfm (
    member_id       bigint NOT NULL,
    recency_score   smallint,
    frequency_score smallint,
    monetary_score  smallint,
    rfm_segment     text NOT NULL
) ON COMMIT DROP`

// rfmSQL fills metrics_rfm from the model step's member summary (metrics_summary, model.go),
// which has already reduced every member's transactions before A to calendar days in the run's
// time zone, so RFM reads a million summary rows rather than the transactions again (twice, as
// it did: 15–29 s at 1M members; docs/benchmarks.md, "The nightly job at 1M"). Parameter: $1
// A's date. The window [A−W, A) starts at the start of a local day, so "in the window" is "on a
// local date from A−W on", which is how the summary counts orders_window and spend_window.
//
// Scored are the members with at least one sale in [A−W, A): recency = A's date − the local date
// of the last sale (1 for the day before A), frequency = sales, monetary = sales − refunds. Each
// is ranked worst to best (most days first, fewest sales first, least spend first) and cut into
// five buckets of equal size, as ntile(5) over the members ordered by the value and then by
// member id. Tie rule: equal values get the same score, the lowest bucket any of them lands in,
// so nobody is promoted by the tie-break. Members with a sale before A−W and none in the window
// are Lost, without scores.
//
// That lowest bucket is the bucket of the tie's first position, which is rank() (1 + the
// members with a worse value), whatever order the tie-break puts them in; rfmTileSQL maps a
// position to ntile(5)'s bucket. So each score is one sort of the scored members, where an
// ntile per value and a minimum per tie took two (six sorts, 8–21 s at 1M members; three now).
var rfmSQL = `
WITH window_members AS (
    SELECT s.member_id, $1::date - s.last_day AS recency_days,
           s.orders_window AS purchases, s.spend_window AS net_spend
    FROM metrics_summary s
    WHERE s.orders_window > 0
),
n AS (
    SELECT count(*) / 5 AS q, count(*) % 5 AS r FROM window_members
),
ranks AS (
    SELECT w.member_id,
           rank() OVER (ORDER BY w.recency_days DESC) AS r_rank,
           rank() OVER (ORDER BY w.purchases) AS f_rank,
           rank() OVER (ORDER BY w.net_spend) AS m_rank
    FROM window_members w
),
scores AS (
    SELECT k.member_id, ` + rfmTileSQL("k.r_rank") + ` AS r, ` + rfmTileSQL("k.f_rank") + ` AS f,
           ` + rfmTileSQL("k.m_rank") + ` AS m
    FROM ranks k, n
)
INSERT INTO metrics_rfm (member_id, recency_score, frequency_score, monetary_score, rfm_segment)
SELECT s.member_id, s.r, s.f, s.m, g.name
FROM scores s JOIN ` + rfmGridSQL() + ` g(r, f, name) ON g.r = s.r AND g.f = s.f
UNION ALL
SELECT s.member_id, NULL, NULL, NULL, ` + sqlString(RFMLost) + `
FROM metrics_summary s
WHERE s.sold_before_window AND s.orders_window = 0`

// rfmTileSQL is the bucket ntile(5) gives the row at 1-based position pos of the n rows of the
// CTE n (q = n / 5, r = n % 5): the first r buckets hold q + 1 rows, the others q.
func rfmTileSQL(pos string) string {
	return `(CASE WHEN ` + pos + ` <= n.r * (n.q + 1) THEN (` + pos + ` - 1) / (n.q + 1) + 1
	         ELSE n.r + (` + pos + ` - 1 - n.r * (n.q + 1)) / n.q + 1 END)`
}

// computeRFM scores the members into metrics_rfm; it runs after the member summary
// (computeModels) and before the families are read.
func computeRFM(ctx context.Context, tx pgx.Tx, b bounds) error {
	if _, err := tx.Exec(ctx, rfmTableSQL); err != nil {
		return fmt.Errorf("create rfm table: %w", err)
	}
	// Three sorts of the scored members, one per score.
	if err := withSettings(ctx, tx, map[string]string{"work_mem": sortMemory}, func() error {
		_, err := tx.Exec(ctx, rfmSQL, b.asOf.Format(time.DateOnly))
		return err
	}); err != nil {
		return fmt.Errorf("compute rfm scores: %w", err)
	}
	return analyze(ctx, tx, "metrics_rfm")
}

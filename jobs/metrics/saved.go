package metrics

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/campaigns/segments"
)

// SavedFamilyName is the family of the marketers' saved segments (campaigns/segments), one
// segment per saved segment, reported as segment:<id>. The id, not the name: it is stable
// across renames, so a segment's history stays one series when a marketer renames it, and
// names may hold any character while a segment key is plain text. The console maps ids to names
// with GET /segments.
const SavedFamilyName = "segment"

// savedFamily is the saved-segment family. Like the rfm family it reads a temporary table that
// Compute fills before any family is read (computeSaved): evaluating each rule tree once there
// keeps its arguments out of the job's statements (whose $1..$9 are the run's), and the two
// statements that read the families (the figures, then the model averages) reuse the rows
// instead of running every tree's correlated subqueries twice.
func savedFamily() Family {
	return Family{Name: SavedFamilyName, Membership: `
			SELECT 'segment:' || s.segment_id, s.member_id FROM metrics_saved s`}
}

// computeSaved evaluates every saved segment as of A into metrics_saved(segment_id, member_id):
// one row per member, plus a row with a NULL member declaring the segment so that an empty one
// is reported too. The rule tree is compiled with asOf = A in the run's time zone, so the
// purchase figures (days_since_last_purchase, orders_365d, spend_365d, tier) are those of A,
// like the tier family; member attributes (home store, status, consent) are current; and
// rfm_segment, p_alive, expected_purchases and clv_predicted are the previous run's (this run
// writes member_metrics after the families are read). A stored tree that no longer compiles (a
// field left the registry) is left out of the run rather than failing it. Nothing is done when
// the run's families leave the saved family out.
func computeSaved(ctx context.Context, tx pgx.Tx, opts Options, b bounds) error {
	if !slices.ContainsFunc(opts.Families, func(f Family) bool { return f.Name == SavedFamilyName }) {
		return nil
	}
	if _, err := tx.Exec(ctx, `
		CREATE TEMP TABLE metrics_saved (segment_id bigint NOT NULL, member_id bigint) ON COMMIT DROP`); err != nil {
		return fmt.Errorf("create saved segment table: %w", err)
	}
	trees, _, err := segments.Trees(ctx, tx)
	if err != nil {
		return err
	}
	for _, st := range trees {
		// $1 is the segment id; the tree's own arguments follow it.
		where, args, err := segments.Compile(st.Tree, b.asOf, 1)
		if err != nil {
			continue // see above: a tree that no longer compiles is skipped
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO metrics_saved (segment_id, member_id)
			SELECT $1::bigint, NULL
			UNION ALL
			SELECT $1::bigint, m.id FROM members m WHERE `+where,
			append([]any{st.ID}, args...)...); err != nil {
			return fmt.Errorf("evaluate saved segment %d: %w", st.ID, err)
		}
	}
	return analyze(ctx, tx, "metrics_saved")
}

package segments

import (
	"context"
	"fmt"
	"time"

	"github.com/regulars/regulars/models"
)

// MaxSample is the largest sample Sample returns.
const MaxSample = 1000

// Mailable is what every campaign recipient is on top of its segment, whatever the rules say: an
// active member (a web sign-up stays pending until it confirms its address) whose marketing
// consent is recorded and confirmed (double opt-in), with an email address. Audiences are built
// with it ANDed to the compiled segment, never from the segment alone.
const Mailable = "(m.status = 'active' AND m.marketing_consent = 'confirmed' AND m.email IS NOT NULL)"

// CountMailable returns how many members of tree as of asOf a campaign may mail.
func CountMailable(ctx context.Context, db *models.DB, tree *Node, asOf time.Time) (int64, error) {
	where, args, err := Compile(tree, asOf, 0)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM members m WHERE "+Mailable+" AND "+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count mailable segment members: %w", err)
	}
	return n, nil
}

// Count returns how many members match tree as of asOf, for a saved segment's live count.
func Count(ctx context.Context, db *models.DB, tree *Node, asOf time.Time) (int64, error) {
	where, args, err := Compile(tree, asOf, 0)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM members m WHERE "+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count segment members: %w", err)
	}
	return n, nil
}

// SampleMember is a member shown as an example of a segment.
type SampleMember struct {
	ID   int64  `json:"id"`
	Card string `json:"card"`
	Name string `json:"name"`
}

// Sample returns up to limit members matching tree as of asOf, lowest ids first, so the same
// segment shows the same sample until its members change.
func Sample(ctx context.Context, db *models.DB, tree *Node, asOf time.Time, limit int) ([]SampleMember, error) {
	if limit < 1 || limit > MaxSample {
		return nil, &models.Error{Code: models.EINVALID, Message: "invalid sample size",
			Fields: map[string]string{"limit": fmt.Sprintf("must be between 1 and %d", MaxSample)}}
	}
	where, args, err := Compile(tree, asOf, 0)
	if err != nil {
		return nil, err
	}
	// ORDER BY id LIMIT walks the members primary key and stops after limit matches.
	query := fmt.Sprintf("SELECT m.id, m.card, m.name FROM members m WHERE %s ORDER BY m.id LIMIT $%d",
		where, len(args)+1)
	rows, err := db.Pool.Query(ctx, query, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("sample segment members: %w", err)
	}
	defer rows.Close()
	out := []SampleMember{}
	for rows.Next() {
		var s SampleMember
		if err := rows.Scan(&s.ID, &s.Card, &s.Name); err != nil {
			return nil, fmt.Errorf("sample segment members: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sample segment members: %w", err)
	}
	return out, nil
}

package segments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/regulars/regulars/models"
)

// CountTimeout bounds one background count of a segment. Counts run outside any request, so
// the request statement limit does not apply; this keeps a pathological tree from holding a
// connection for hours.
const CountTimeout = 10 * time.Minute

// countLockClass is the first key of pg_try_advisory_xact_lock(class, segment id), which lets
// one process at a time count a segment, whichever replica asks. The two-key lock space does not
// overlap the one-key space of the metrics and migration locks. Ids past 2^31 wrap, which
// at worst makes two segments wait for each other.
const countLockClass = 0x5e9c

// rowQuerier is a pool or a transaction, for single-row reads.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Recount counts saved segment id now and caches its counts with the rules it counted and the
// time (segment_counts), for List. It leaves the segment alone, reporting false, when the
// cached counts of its current rules were counted at or after notBefore (another replica has
// just done it; the zero time never skips), when another process is counting it and wait is
// false, or when the segment no longer exists. With wait it queues behind a count in progress,
// so that a count asked for after a save is of the saved rules.
func Recount(ctx context.Context, db *models.DB, id int64, notBefore time.Time, wait bool) (bool, error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("count segment %d: %w", id, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// A transaction-level lock is released however the count ends, even with the connection.
	lock := `SELECT pg_try_advisory_xact_lock($1, $2)`
	if wait {
		lock = `SELECT true FROM pg_advisory_xact_lock($1, $2)`
	}
	var locked bool
	if err := tx.QueryRow(ctx, lock, countLockClass, int32(id)).Scan(&locked); err != nil {
		return false, fmt.Errorf("count segment %d: lock: %w", id, err)
	}
	if !locked {
		return false, nil
	}
	var (
		s         Saved
		countedAt *time.Time
	)
	err = tx.QueryRow(ctx, `
		SELECT s.id, s.name, s.description, s.rules, s.created_at, s.updated_at, sc.counted_at
		FROM segments s LEFT JOIN segment_counts sc ON sc.segment_id = s.id AND sc.rules = s.rules
		WHERE s.id = $1`, id).Scan(&s.ID, &s.Name, &s.Description, &s.Rules, &s.CreatedAt, &s.UpdatedAt, &countedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("count segment %d: %w", id, err)
	case countedAt != nil && !notBefore.IsZero() && !countedAt.Before(notBefore):
		return false, nil
	}
	asOf := liveAsOf(db)
	members, mailable, err := s.count(ctx, tx, asOf)
	if err != nil {
		return false, err
	}
	if err := storeCounts(ctx, tx, &s, members, mailable, asOf); err != nil {
		return false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("count segment %d: %w", id, err)
	}
	return true, nil
}

// storeCounts caches counts of s's rules as of countedAt. Newer counts of the same rules are
// kept (a slow count that started earlier must not overwrite them), and a segment deleted
// meanwhile is no error.
func storeCounts(ctx context.Context, q rowQuerier, s *Saved, members, mailable int64, countedAt time.Time) error {
	var stored bool
	err := q.QueryRow(ctx, `
		INSERT INTO segment_counts (segment_id, rules, members, mailable, counted_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (segment_id) DO UPDATE
		SET rules = EXCLUDED.rules, members = EXCLUDED.members, mailable = EXCLUDED.mailable,
		    counted_at = EXCLUDED.counted_at
		WHERE segment_counts.rules <> EXCLUDED.rules OR segment_counts.counted_at <= EXCLUDED.counted_at
		RETURNING true`, s.ID, []byte(s.Rules), members, mailable, countedAt).Scan(&stored)
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows): // newer counts were already there
		return nil
	case errors.As(err, &pgErr) && pgErr.Code == "23503": // the segment was deleted meanwhile
		return nil
	case err != nil:
		return fmt.Errorf("store counts of segment %d: %w", s.ID, err)
	}
	return nil
}

// Uncounted returns the ids of the saved segments whose current rules have no counts counted
// at or after notBefore, never-counted ones first: the work of a counting round.
func Uncounted(ctx context.Context, db *models.DB, notBefore time.Time) ([]int64, error) {
	rows, err := db.Pool.Query(ctx, `
		SELECT s.id
		FROM segments s LEFT JOIN segment_counts sc ON sc.segment_id = s.id AND sc.rules = s.rules
		WHERE sc.counted_at IS NULL OR sc.counted_at < $1
		ORDER BY sc.counted_at NULLS FIRST, s.id`, notBefore)
	if err != nil {
		return nil, fmt.Errorf("segments to count: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("segments to count: %w", err)
	}
	return ids, nil
}

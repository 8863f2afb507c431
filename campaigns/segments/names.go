package segments

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models"
)

// Names maps every saved segment's id to its name, without counting members: for labelling the
// segment:<id> rows of a metrics snapshot, where List's live counts would be wasted work.
func Names(ctx context.Context, db *models.DB) (map[int64]string, error) {
	rows, err := db.Pool.Query(ctx, `SELECT id, name FROM segments`)
	if err != nil {
		return nil, fmt.Errorf("segment names: %w", err)
	}
	names := map[int64]string{}
	var id int64
	var name string
	if _, err := pgx.ForEachRow(rows, []any{&id, &name}, func() error {
		names[id] = name
		return nil
	}); err != nil {
		return nil, fmt.Errorf("segment names: %w", err)
	}
	return names, nil
}

package metrics

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models/dbtest"
)

// The plan hints of one statement must not leak into the rest of a run.
func TestWithSettingsRestoresThePreviousValues(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '5MB'`); err != nil {
			return err
		}
		var inside string
		err := withSettings(ctx, tx, map[string]string{"work_mem": "64MB", "enable_indexscan": "off"}, func() error {
			return tx.QueryRow(ctx, `SELECT current_setting('work_mem') || ' ' || current_setting('enable_indexscan')`).Scan(&inside)
		})
		if err != nil {
			return err
		}
		if inside != "64MB off" {
			t.Errorf("inside: %q, want 64MB off", inside)
		}
		var after string
		if err := tx.QueryRow(ctx, `SELECT current_setting('work_mem') || ' ' || current_setting('enable_indexscan')`).Scan(&after); err != nil {
			return err
		}
		if after != "5MB on" {
			t.Errorf("after: %q, want the previous 5MB on", after)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package models

import "context"

// MigrateUpTo applies the migrations up to version and no further (tests of one migration).
func (db *DB) MigrateUpTo(ctx context.Context, version int64) error {
	p, err := db.migrations()
	if err != nil {
		return err
	}
	_, err = p.UpTo(ctx, version)
	return err
}

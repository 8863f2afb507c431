package dbtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestEachTestGetsItsOwnMigratedDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	names := map[string]bool{}
	for range 3 {
		db := New(t)
		var name string
		var migrated bool
		if err := db.Pool.QueryRow(ctx,
			`SELECT current_database(), to_regclass('members') IS NOT NULL`).Scan(&name, &migrated); err != nil {
			t.Fatal(err)
		}
		if !migrated {
			t.Errorf("database %s has no members table: not copied from the migrated template", name)
		}
		if names[name] {
			t.Errorf("database %s handed out twice", name)
		}
		names[name] = true
		if _, err := db.Pool.Exec(ctx, `CREATE TABLE scratch (id int)`); err != nil {
			t.Fatalf("a test may change its database as it likes: %v", err)
		}
	}
}

func TestEmptyURLHasNoTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := pgx.Connect(ctx, EmptyURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	var tables int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("empty database has %d tables", tables)
	}
}

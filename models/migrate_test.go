package models_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

func TestMigrationsAreSafeWhenReplicasStartTogether(t *testing.T) {
	url := dbtest.EmptyURL(t)
	ctx := context.Background()
	const replicas = 4
	var wg sync.WaitGroup
	errs := make(chan error, replicas)
	for range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := models.Open(ctx, url, 2)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			errs <- db.Migrate(ctx, slog.New(slog.DiscardHandler))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a replica failed to migrate: %v", err)
		}
	}
	db, err := models.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Each migration is recorded once, and the schema works.
	var applied, distinct int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`).Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	if applied != distinct || applied == 0 {
		t.Fatalf("goose_db_version has %d rows for %d versions", applied, distinct)
	}
	if _, err := db.CreateStore(ctx, models.StoreInput{Code: "s1", Name: "S", Timezone: "UTC", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
}

// Migration 00028 rewrites the receipt lines into a new table. A till of the previous version
// still writing while it runs must not lose its lines with the old table: the migration waits
// for the writer's transaction, and the lines come through with their copies filled.
func TestLinesWrittenDuringMigration28AreKept(t *testing.T) {
	url := dbtest.EmptyURL(t)
	ctx := context.Background()
	db, err := models.Open(ctx, url, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MigrateUpTo(ctx, 27); err != nil {
		t.Fatal(err)
	}
	sale := func(q interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	}, txnID string) {
		t.Helper()
		if _, err := q.Exec(ctx, `
			WITH s AS (INSERT INTO stores (code, name, timezone, currency) VALUES ('s-' || lower($1), $1, 'UTC', 'NOK')
			           ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name RETURNING id),
			     t AS (INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, content_hash)
			           SELECT s.id, $1, 'sale', '2026-11-20T14:03:00Z', 12950, 'NOK', '\x00' FROM s RETURNING id)
			INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor) SELECT t.id, 1, 'LP-1', 1, 12950 FROM t`,
			txnID); err != nil {
			t.Fatal(err)
		}
	}
	sale(db.Pool, "BEFORE")
	// A till's transaction, open while the migration starts.
	till, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer till.Rollback(ctx)
	sale(till, "DURING")
	migrated := make(chan error, 1)
	go func() { migrated <- db.MigrateUpTo(ctx, 28) }()
	// Commit once the migration waits for a lock the till holds (before its copy, with the
	// migration's LOCK; at its DROP TABLE, without it).
	for waiting := 0; waiting == 0; {
		select {
		case err := <-migrated:
			t.Fatalf("migration 28 ended before the till's transaction: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := till.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-migrated; err != nil {
		t.Fatal(err)
	}
	var lines, copied int
	if err := db.Pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE i.occurred_at = t.occurred_at AND i.kind = t.kind)
		FROM transaction_items i JOIN transactions t ON t.id = i.transaction_id`).Scan(&lines, &copied); err != nil {
		t.Fatal(err)
	}
	if lines != 2 || copied != 2 {
		t.Errorf("after migration 28: %d receipt lines, %d with their sale's copies; want 2 and 2 (one written during the migration)", lines, copied)
	}
}

package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// A statement whose context ends is cancelled in-band: PostgreSQL stops it (57014) before the
// call returns, and the connection stays in the pool. pgx's default instead closes the
// connection and sends the cancel from a goroutine afterwards, so the pool opens a new
// connection, and a new backend, while the old one may still be running the statement.
func TestEndedContextCancelsTheStatementAndKeepsTheConnection(t *testing.T) {
	ctx := context.Background()
	db, err := models.Open(ctx, dbtest.URL(t), 1) // one connection: the same one every time
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var before int32
	if err := db.Pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&before); err != nil {
		t.Fatal(err)
	}

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = db.Pool.Exec(short, `SELECT pg_sleep(600)`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("got %v, want the server's query_canceled (57014)", err)
	}

	var after int32
	var sleeping int
	err = db.Pool.QueryRow(ctx, `
		SELECT pg_backend_pid(), (SELECT count(*) FROM pg_stat_activity
		                          WHERE datname = current_database() AND strpos(query, 'pg_sleep(600)') > 0
		                            AND pid <> pg_backend_pid() AND state = 'active')`).Scan(&after, &sleeping)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("backend %d after the cancel, %d before: the connection was closed, want it kept", after, before)
	}
	if sleeping != 0 {
		t.Errorf("%d backends still run the cancelled statement", sleeping)
	}
}

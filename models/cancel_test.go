package models_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
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

// Backstop for a process that dies mid-statement (it sends no cancel): every connection asks its
// backend to check the client socket during long statements.
func TestConnectionsCheckTheirClient(t *testing.T) {
	db := dbtest.New(t)
	var interval string
	if err := db.Pool.QueryRow(context.Background(), `SHOW client_connection_check_interval`).Scan(&interval); err != nil {
		t.Fatal(err)
	}
	if interval != "5s" {
		t.Errorf("client_connection_check_interval %q, want 5s", interval)
	}
}

// A process killed mid-statement sends no cancel; its backend notices the closed socket
// (client_connection_check_interval) and stops, instead of running the statement to its end.
func TestStatementOfAKilledProcessStops(t *testing.T) {
	if os.Getenv("REGULARS_SLEEPER_URL") != "" {
		t.Skip("this is the child process's test")
	}
	url := dbtest.URL(t)
	child := exec.Command(os.Args[0], "-test.run=^TestSleeperChild$")
	child.Env = append(os.Environ(), "REGULARS_SLEEPER_URL="+url)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	db, err := models.Open(context.Background(), url, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sleeping := func() int {
		var n int
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'
			  AND strpos(query, 'sleeper child') > 0`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Generous bounds: the child needs a moment to start; the check runs every 5 s.
	waitFor := func(want int, what string) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); sleeping() != want; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d backends run the child's statement after a minute, want %d", what, sleeping(), want)
			}
		}
	}
	waitFor(1, "before the kill")
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	waitFor(0, "after the kill")
}

// TestSleeperChild is the process TestStatementOfAKilledProcessStops kills: it runs a long
// statement through a pool as serve opens it.
func TestSleeperChild(t *testing.T) {
	url := os.Getenv("REGULARS_SLEEPER_URL")
	if url == "" {
		t.Skip("run by TestStatementOfAKilledProcessStops")
	}
	db, err := models.Open(context.Background(), url, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = db.Pool.Exec(context.Background(), `SELECT pg_sleep(600) /* sleeper child */`)
}

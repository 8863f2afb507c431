// Package dbtest gives each test its own fresh, migrated PostgreSQL database: on the server named
// by REGULARS_TEST_DATABASE_URL, or else on one throwaway cluster started for the test binary.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/embeddedpg"
)

var (
	once     sync.Once
	setupErr error
	adminURL string // a URL to a maintenance database on the test server
	template string // a migrated database every test database is copied from
	cluster  *embeddedpg.Cluster
	tmpDir   string
	mu       sync.Mutex // serialises CREATE DATABASE … TEMPLATE
)

// Main runs the tests and then removes the test cluster or template. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	teardown()
	os.Exit(code)
}

func setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adminURL = os.Getenv("REGULARS_TEST_DATABASE_URL")
	if adminURL == "" {
		var err error
		if tmpDir, err = os.MkdirTemp("", "regulars-test-pg-"); err != nil {
			return err
		}
		_ = os.Chmod(tmpDir, 0o755) // the cluster may run as another user (we may be root)
		cluster, err = embeddedpg.Start(ctx, embeddedpg.Options{Dir: filepath.Join(tmpDir, "pg"), NoSync: true})
		if err != nil {
			return err
		}
		adminURL = cluster.URL("postgres")
	}
	template = "regulars_tpl_" + randomSuffix()
	if err := exec(ctx, adminURL, "CREATE DATABASE "+template); err != nil {
		return err
	}
	db, err := models.Open(ctx, withDatabase(adminURL, template), 2)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Migrate(ctx, slog.New(slog.DiscardHandler))
}

func teardown() {
	if setupErr == nil && template != "" {
		_ = exec(context.Background(), adminURL, "DROP DATABASE IF EXISTS "+template+" WITH (FORCE)")
	}
	if cluster != nil {
		_ = cluster.Stop()
	}
	if tmpDir != "" {
		_ = os.RemoveAll(tmpDir)
	}
}

// URL creates a fresh migrated database for t, dropped when t ends, and returns its URL.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() { setupErr = setup() })
	if setupErr != nil {
		t.Fatalf("test database: %v", setupErr)
	}
	name := "regulars_test_" + randomSuffix()
	mu.Lock()
	err := exec(context.Background(), adminURL, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template))
	mu.Unlock()
	if err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		if err := exec(context.Background(), adminURL, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	return withDatabase(adminURL, name)
}

// EmptyURL creates an empty database (no migrations applied) for t, dropped when t ends.
func EmptyURL(t testing.TB) string {
	t.Helper()
	adminURL := AdminURL(t)
	name := "regulars_empty_" + randomSuffix()
	if err := exec(context.Background(), adminURL, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create empty database: %v", err)
	}
	t.Cleanup(func() { _ = exec(context.Background(), adminURL, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	return withDatabase(adminURL, name)
}

// New returns an open handle on a fresh migrated database for t, closed when t ends.
func New(t testing.TB) *models.DB {
	t.Helper()
	db, err := models.Open(context.Background(), URL(t), 8)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// AdminURL returns the URL of the test server's maintenance database.
func AdminURL(t testing.TB) string {
	t.Helper()
	once.Do(func() { setupErr = setup() })
	if setupErr != nil {
		t.Fatalf("test database: %v", setupErr)
	}
	return adminURL
}

func exec(ctx context.Context, dbURL, sql string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func withDatabase(dbURL, name string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL
	}
	u.Path = "/" + name
	return u.String()
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

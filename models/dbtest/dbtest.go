// Package dbtest gives each test its own fresh, migrated PostgreSQL database, copied from a
// template database the test binary migrates once: on the server named by
// REGULARS_TEST_DATABASE_URL, or else on one throwaway cluster shared by all test binaries of a
// `go test` run (see shared.go), or, for a binary not run by the go command, on a cluster of its
// own.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/embeddedpg"
	"golang.org/x/crypto/bcrypt"
)

var (
	once     sync.Once
	setupErr error
	adminURL string // a URL to a maintenance database on the test server
	template string // a migrated database every test database is copied from
	cluster  *embeddedpg.Cluster
	tmpDir   string
	// createSQL copies the template into database %s; makeSpares runs it, one at a time.
	createSQL  string
	spares     chan spare
	stopSpares = make(chan struct{})
	sparesDone sync.WaitGroup

	inMain     bool // Main runs the tests, so the binary can serve a shared cluster
	afterMu    sync.Mutex
	afterTests []func()
)

// Main runs the tests, then the functions given to AfterTests, and then removes the test
// template (and the binary's own cluster, if it has one). Call it from TestMain.
//
// When the binary is started as the shared cluster's server (see shared.go), Main serves
// instead of running tests.
func Main(m *testing.M) {
	if dir := os.Getenv(serveDirEnv); dir != "" {
		goPID, _ := strconv.Atoi(os.Getenv(servePIDEnv))
		os.Exit(serve(dir, goPID))
	}
	inMain = true
	code := m.Run()
	afterMu.Lock()
	after := afterTests
	afterMu.Unlock()
	for i := len(after) - 1; i >= 0; i-- {
		after[i]()
	}
	teardown()
	os.Exit(code)
}

// AfterTests registers f to run once the tests of the binary have run (Main runs it): for
// resources shared by the tests, such as a browser.
func AfterTests(f func()) {
	afterMu.Lock()
	defer afterMu.Unlock()
	afterTests = append(afterTests, f)
}

func setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adminURL = os.Getenv("REGULARS_TEST_DATABASE_URL")
	if adminURL == "" && inMain {
		url, err := sharedCluster(ctx)
		switch {
		case err == nil:
			adminURL = url
		case !errors.Is(err, errNotShared):
			fmt.Fprintf(os.Stderr, "dbtest: no shared test cluster (%v); starting one for this package\n", err)
		}
	}
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
	err = db.Migrate(ctx, slog.New(slog.DiscardHandler))
	db.Close()
	if err != nil {
		return err
	}
	// A file copy of the template takes about half as long as the default strategy, which
	// writes every page through the WAL (PostgreSQL 15 and later have the choice).
	createSQL = "CREATE DATABASE %s TEMPLATE " + template
	if version, err := serverVersion(ctx, adminURL); err == nil && version >= 150000 {
		createSQL += " STRATEGY FILE_COPY"
	}
	spares = make(chan spare, 1)
	sparesDone.Add(1)
	go makeSpares()
	return nil
}

// spare is a database copied from the template ahead of need, or the error of the copy.
type spare struct {
	name string
	err  error
}

// makeSpares copies the template into a spare database whenever the last one was taken, so that
// a test gets its database at once instead of waiting the half second of a copy while the
// package's other work waits too. One copy at a time: a template cannot be copied while another
// session is connected to it.
func makeSpares() {
	defer sparesDone.Done()
	for {
		select {
		case <-stopSpares:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		name := "regulars_test_" + randomSuffix()
		err := exec(ctx, adminURL, fmt.Sprintf(createSQL, name))
		cancel()
		select {
		case spares <- spare{name: name, err: err}:
		case <-stopSpares:
			if err == nil {
				dropDatabase(name)
			}
			return
		}
	}
}

func serverVersion(ctx context.Context, dbURL string) (int, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var version int
	err = conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version)
	return version, err
}

func dropDatabase(name string) {
	_ = exec(context.Background(), adminURL, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}

func teardown() {
	if spares != nil {
		close(stopSpares)
		sparesDone.Wait()
		for len(spares) > 0 {
			if s := <-spares; s.err == nil {
				dropDatabase(s.name)
			}
		}
	}
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
	s := <-spares
	if s.err != nil {
		t.Fatalf("create test database: %v", s.err)
	}
	name := s.name
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
	db.PasswordCost = bcrypt.MinCost // the login rules are the same at any cost
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

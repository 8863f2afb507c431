package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
	"github.com/regulars/regulars/models/embeddedpg"
	"github.com/regulars/regulars/models/embeddedpg/pgproctest"
)

// deadlineServer is a real server over a fresh database with a statement limit, and a
// marketer's API token.
type deadlineServer struct {
	db       *models.DB
	srv      *httptest.Server
	marketer string
}

func newDeadlineServer(t *testing.T, db *models.DB, limit time.Duration) *deadlineServer {
	t.Helper()
	cfg := testConfig(db)
	cfg.StatementTimeout = limit
	s := mustNew(t, cfg)
	// A request that runs one slow statement, to show the limit applies to any statement.
	s.echo.GET("/api/v1/test/sleep", func(c echo.Context) error {
		_, err := db.Pool.Exec(c.Request().Context(), `SELECT pg_sleep(600) /* deadline test */`)
		return err
	})
	tok, err := db.CreateAPIKey(context.Background(), models.RoleMarketer, "", "deadline test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &deadlineServer{db: db, srv: srv, marketer: tok}
}

// get sends GET path with the marketer's token under ctx.
func (d *deadlineServer) get(ctx context.Context, path string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.srv.URL+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+d.marketer)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res, body, err
}

// running counts the backends of this database that are running a statement whose text
// contains marker, as pg_stat_activity shows them (another connection: the test's own pool).
func running(t *testing.T, db *models.DB, marker string) int {
	t.Helper()
	var n int
	err := db.Pool.QueryRow(context.Background(), `
		SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'
		  AND strpos(query, $1) > 0`, marker).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitRunning polls until the number of backends running marker satisfies ok, within a
// generous bound (the machine may be loaded; nothing here depends on its speed).
func waitRunning(t *testing.T, db *models.DB, marker string, ok func(n int) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := running(t, db, marker)
		if ok(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d backends still run %q after 30 s", what, n, marker)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listMarker is a piece of the segment list's SQL (segments.List), to find it in pg_stat_activity.
const listMarker = "LEFT JOIN segment_counts sc"

// lockSegments holds an exclusive lock on the segments table until the test ends, so that
// any statement reading segments waits, running, on the server.
func lockSegments(t *testing.T, db *models.DB) {
	t.Helper()
	tx, err := db.Pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	if _, err := tx.Exec(context.Background(), `LOCK TABLE segments IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
}

func wantTimeout(t *testing.T, res *http.Response, body []byte) {
	t.Helper()
	var e errorBody
	if res.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || e.Error.Code != "timeout" ||
		!strings.Contains(e.Error.Message, "took longer than") {
		t.Errorf("status %d, body %s; want 503 with code timeout", res.StatusCode, body)
	}
}

// A request's statements stop at REGULARS_STATEMENT_TIMEOUT: the client gets a prompt 503, and
// the statement no longer runs on the server (pgx alone would only close its socket, leaving the
// backend waiting or sleeping to the end).
func TestStatementDeadlineStopsTheQueryOnTheServer(t *testing.T) {
	d := newDeadlineServer(t, dbtest.New(t), 500*time.Millisecond)
	// Generous: the answer is due after 0.5 s; this only catches a request that hangs.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("a slow statement answers 503 timeout and stops on the server", func(t *testing.T) {
		res, body, err := d.get(ctx, "/api/v1/test/sleep")
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		wantTimeout(t, res, body)
		waitRunning(t, d.db, "deadline test", func(n int) bool { return n == 0 }, "after the timeout")
	})
	t.Run("a segment list waiting on a lock answers 503 timeout and stops waiting", func(t *testing.T) {
		lockSegments(t, d.db)
		res, body, err := d.get(ctx, "/api/v1/segments")
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		wantTimeout(t, res, body)
		waitRunning(t, d.db, listMarker, func(n int) bool { return n == 0 }, "after the timeout")
	})
}

// The console's pages run under the same limit.
func TestConsolePagesHaveTheStatementLimit(t *testing.T) {
	cc := newConsole(t)
	cc.Server.reconfigure(t, func(c *Config) { c.StatementTimeout = 500 * time.Millisecond })
	client, _ := cc.loginAs(t, models.RoleMarketer)
	client.Timeout = time.Minute // generous: only a page that hangs fails on it
	lockSegments(t, cc.DB)
	res := cc.get(t, client, "/console/segments")
	if res.Status != http.StatusServiceUnavailable || !strings.Contains(res.Body, "took longer than") {
		t.Errorf("status %d; want the console's 503 page saying the request took too long\n%s", res.Status, res.Body)
	}
	waitRunning(t, cc.DB, listMarker, func(n int) bool { return n == 0 }, "after the console page")
}

// A client that goes away mid-request gets its statement cancelled on the server, long before
// the statement limit.
func TestClientThatLeavesCancelsItsQuery(t *testing.T) {
	d := newDeadlineServer(t, dbtest.New(t), 10*time.Minute)
	for _, tc := range []struct{ name, path, marker string }{
		{"a sleeping statement", "/api/v1/test/sleep", "deadline test"},
		{"the segment list waiting on a lock", "/api/v1/segments", listMarker},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.marker == listMarker {
				lockSegments(t, d.db)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, _, err := d.get(ctx, tc.path)
				done <- err
			}()
			waitRunning(t, d.db, tc.marker, func(n int) bool { return n == 1 }, "before the client leaves")
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("the client's request ended with %v, want its cancellation", err)
			}
			waitRunning(t, d.db, tc.marker, func(n int) bool { return n == 0 }, "after the client left")
		})
	}
}

// The metrics run may take minutes by design: it is exempt from the statement limit.
func TestMetricsRunIsExemptFromTheStatementLimit(t *testing.T) {
	db := dbtest.New(t)
	cfg := testConfig(db)
	cfg.StatementTimeout = time.Millisecond
	s := mustNew(t, cfg)
	var deadlines []bool
	probe := func(c echo.Context) error {
		_, has := c.Request().Context().Deadline()
		deadlines = append(deadlines, has)
		return c.NoContent(http.StatusNoContent)
	}
	// The same paths as the real routes, on a bare Echo with only the middleware.
	e := echo.New()
	e.Use(s.statementDeadline)
	e.POST("/api/v1/metrics/run", probe)
	e.POST("/console/metrics/run", probe)
	e.POST("/api/v1/segments", probe)
	for _, path := range []string{"/api/v1/metrics/run", "/console/metrics/run", "/api/v1/segments"} {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, path, nil))
	}
	if len(deadlines) != 3 || deadlines[0] || deadlines[1] || !deadlines[2] {
		t.Errorf("deadlines %v, want none for the two metrics runs and one for the rest", deadlines)
	}
	// The exemptions name real routes: a renamed route would otherwise lose its exemption silently.
	routes := map[string]bool{}
	for _, r := range s.echo.Routes() {
		routes[r.Method+" "+r.Path] = true
	}
	for route := range longRunning {
		if !routes[route] {
			t.Errorf("exempt route %q is not in the route table", route)
		}
	}
}

// While the database is down, the API answers 503 "unavailable" with Retry-After in the
// contract's error format, and pages show the error page with 503, rather than 500.
func TestDatabaseDownAnswers503WithRetryAfter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cluster, err := embeddedpg.Start(ctx, embeddedpg.Options{Dir: filepath.Join(pgproctest.SearchableTempDir(t), "pg"), NoSync: true})
	if errors.Is(err, embeddedpg.ErrNoBinaries) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	if err := cluster.EnsureDatabase(ctx, "regulars"); err != nil {
		t.Fatal(err)
	}
	db, err := models.Open(ctx, cluster.URL("regulars"), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	d := newDeadlineServer(t, db, 30*time.Second)
	if res, body, err := d.get(ctx, "/api/v1/segments"); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("with the database up: %v %s", err, body)
	}
	// A console user logged in before the outage.
	cc := &consoleClient{URL: d.srv.URL, DB: db}
	console, _ := cc.loginAs(t, models.RoleMarketer)
	console.Timeout = time.Minute

	// A request in flight when the database shuts down (its backend is terminated, 57P01).
	inFlight := make(chan *http.Response, 1)
	go func() {
		res, _, err := d.get(ctx, "/api/v1/test/sleep")
		if err != nil {
			t.Error(err)
		}
		inFlight <- res
	}()
	waitRunning(t, db, "deadline test", func(n int) bool { return n == 1 }, "before the shutdown")

	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	if res := <-inFlight; res == nil || res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "5" {
		t.Errorf("the request in flight during the shutdown: %+v; want 503 with Retry-After 5", res)
	}
	// Twice: the first request may meet pooled connections the shutdown broke, the second
	// needs a new connection and is refused.
	for i := range 2 {
		res, body, err := d.get(ctx, "/api/v1/segments")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		var e errorBody
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "5" ||
			json.Unmarshal(body, &e) != nil || e.Error.Code != "unavailable" {
			t.Errorf("API request %d: status %d, Retry-After %q, body %s; want 503, 5 and code unavailable",
				i, res.StatusCode, res.Header.Get("Retry-After"), body)
		}
	}
	res, body, err := d.get(ctx, "/join")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "5" ||
		!strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "try again in a few seconds") {
		t.Errorf("page: status %d, Retry-After %q, type %q; want an HTML 503 with Retry-After 5\n%s",
			res.StatusCode, res.Header.Get("Retry-After"), res.Header.Get("Content-Type"), body)
	}
	page := cc.get(t, console, "/console/segments")
	if page.Status != http.StatusServiceUnavailable || page.Header.Get("Retry-After") != "5" ||
		!strings.Contains(page.Body, "database cannot be reached") {
		t.Errorf("console page: status %d, Retry-After %q; want the console's 503 page with Retry-After 5\n%s",
			page.Status, page.Header.Get("Retry-After"), page.Body)
	}
}

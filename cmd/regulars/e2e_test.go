package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/regulars/regulars/models/embeddedpg/pgproctest"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models/dbtest"
)

// loadResult is what a burst of concurrent sales learned about each id it sent.
type loadResult struct {
	mu         sync.Mutex
	acked      []string       // answered 201: committed
	unanswered []string       // sent, no answer: may or may not be committed
	refused    int            // of the unanswered, how many never reached the server
	other      map[int]string // any other status, with one body as an example
}

func newLoadResult() *loadResult { return &loadResult{other: map[int]string{}} }

// waitAcked waits until at least n sales of the load are acknowledged: the load is running.
func (res *loadResult) waitAcked(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		res.mu.Lock()
		acked := len(res.acked)
		res.mu.Unlock()
		if acked >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sales acknowledged after a minute, waiting for %d", acked, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// postSales has workers post sales with unique ids until stop is closed; a worker also stops at
// its first request without an answer (the server is gone or going).
func postSales(res *loadResult, client *apiClient, workers int, prefix string, occurredAt time.Time, stop <-chan struct{}) *loadResult {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%s-%02d-%06d", prefix, w, n)
				status, body, _, err := client.do(http.MethodPost, "/api/v1/transactions", sale(id, occurredAt))
				res.mu.Lock()
				switch {
				case err != nil:
					res.unanswered = append(res.unanswered, id)
					if errors.Is(err, syscall.ECONNREFUSED) {
						res.refused++
					}
				case status == http.StatusCreated:
					res.acked = append(res.acked, id)
				default:
					res.other[status] = string(body)
				}
				res.mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return res
}

// storedCounts returns how many rows each transaction id has in the database.
func storedCounts(t *testing.T, dbURL string) map[string]int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT txn_id, count(*) FROM transactions GROUP BY txn_id`)
	if err != nil {
		t.Fatalf("count transactions: %v", err)
	}
	counts := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		counts[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return counts
}

// TestAcknowledgedSalesSurviveSIGKILL is the "done when": with the server killed by
// SIGKILL under load and restarted, no sale answered 201 is lost, and every sale left without
// an answer can be sent again safely.
func TestAcknowledgedSalesSurviveSIGKILL(t *testing.T) {
	t.Run("on an external database", func(t *testing.T) {
		dbURL := dbtest.URL(t)
		env := []string{"REGULARS_DATABASE_URL=" + dbURL, "REGULARS_DATA_DIR=" + t.TempDir()}
		salesSurviveSIGKILL(t, env, func() string { return dbURL })
	})
	// On the embedded default the kill takes the cluster down too (parent-death signal), so
	// the restart also restarts PostgreSQL.
	t.Run("on the embedded cluster, which goes down with serve", func(t *testing.T) {
		dataDir := pgproctest.SearchableTempDir(t)
		salesSurviveSIGKILL(t, []string{"REGULARS_DATA_DIR=" + dataDir}, func() string {
			return embeddedURL(t, filepath.Join(dataDir, "postgres"))
		})
	})
}

// embeddedURL returns the URL of the regulars database on the embedded cluster running in dir.
func embeddedURL(t *testing.T, dir string) string {
	t.Helper()
	pidFile, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		t.Fatalf("embedded cluster not running: %v", err)
	}
	lines := strings.Split(string(pidFile), "\n")
	if len(lines) < 4 {
		t.Fatalf("postmaster.pid: %q", pidFile)
	}
	return fmt.Sprintf("postgres://regulars@127.0.0.1:%s/regulars?sslmode=disable", strings.TrimSpace(lines[3]))
}

// salesSurviveSIGKILL kills serve under load, restarts it, and checks what the tills were told
// against what is stored. dbURL is asked for after the restart.
func salesSurviveSIGKILL(t *testing.T, env []string, dbURL func() string) {
	srv := startServe(t, env)
	till := setUpStore(t, srv, env)
	occurredAt := time.Now().Add(-time.Hour).Truncate(time.Second)

	stop := make(chan struct{})
	done := make(chan *loadResult)
	running := newLoadResult()
	go func() { done <- postSales(running, till, 16, "K", occurredAt, stop) }()
	running.waitAcked(t, 100) // kill it under full load
	srv.signal(syscall.SIGKILL)
	close(stop)
	load := <-done
	if code := srv.exitCode(); code != -1 {
		t.Fatalf("serve exit code %d after SIGKILL, want -1 (killed)", code)
	}
	t.Logf("SIGKILL under load: %d sales acknowledged, %d in flight at the kill, %d more refused after it",
		len(load.acked), len(load.unanswered)-load.refused, load.refused)
	if len(load.other) > 0 {
		t.Errorf("statuses other than 201 before the kill: %v", load.other)
	}
	if len(load.acked) == 0 {
		t.Fatal("no sale was acknowledged before the kill")
	}

	srv = startServe(t, env)
	till = newAPIClient(srv.base, till.token)

	t.Run("every acknowledged sale is stored exactly once", func(t *testing.T) {
		counts := storedCounts(t, dbURL())
		for _, id := range load.acked {
			if counts[id] != 1 {
				t.Errorf("acknowledged sale %s is stored %d times", id, counts[id])
			}
		}
	})

	t.Run("an acknowledged sale sent again is a replay", func(t *testing.T) {
		status, body, header, err := till.do(http.MethodPost, "/api/v1/transactions", sale(load.acked[0], occurredAt))
		if err != nil || status != http.StatusOK || header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("re-post of %s: status %d, replayed %q, err %v: %s", load.acked[0], status, header.Get("Idempotent-Replayed"), err, body)
		}
	})

	t.Run("every unanswered sale sent again is created or replayed, then stored once", func(t *testing.T) {
		created, replayed := 0, 0
		for _, id := range load.unanswered {
			status, body, _, err := till.do(http.MethodPost, "/api/v1/transactions", sale(id, occurredAt))
			switch {
			case err != nil:
				t.Errorf("re-post of %s: %v", id, err)
			case status == http.StatusCreated:
				created++
			case status == http.StatusOK:
				replayed++
			default:
				t.Errorf("re-post of %s: status %d, want 201 or 200: %s", id, status, body)
			}
		}
		t.Logf("re-posted %d unanswered sales: %d were not committed (201), %d were (200)", len(load.unanswered), created, replayed)
		counts := storedCounts(t, dbURL())
		for _, id := range load.unanswered {
			if counts[id] != 1 {
				t.Errorf("re-posted sale %s is stored %d times", id, counts[id])
			}
		}
		if want := len(load.acked) + len(load.unanswered); len(counts) != want {
			t.Errorf("%d transactions stored, want %d (acknowledged + re-posted)", len(counts), want)
		}
	})
}

// TestSIGTERMLetsInFlightSalesFinish sends SIGTERM while a till is half-way through sending a
// sale and others post at full speed: the half-sent sale still gets its 201, nobody gets a 5xx,
// every 201 is stored, and the server exits 0.
func TestSIGTERMLetsInFlightSalesFinish(t *testing.T) {
	dbURL := dbtest.URL(t)
	env := []string{"REGULARS_DATABASE_URL=" + dbURL, "REGULARS_DATA_DIR=" + t.TempDir()}
	srv := startServe(t, env)
	till := setUpStore(t, srv, env)
	occurredAt := time.Now().Add(-time.Hour).Truncate(time.Second)

	stop := make(chan struct{})
	defer close(stop)
	loadDone := make(chan *loadResult)
	running := newLoadResult()
	go func() { loadDone <- postSales(running, till, 8, "T", occurredAt, stop) }()

	// The slow sale asks for 100-continue: the server sends it when the handler starts reading
	// the body, so the client knows the request is in the handler before sending the rest.
	const slowID = "SLOW-1"
	body := sale(slowID, occurredAt)
	bodyReader, bodyWriter := io.Pipe()
	inHandler := make(chan struct{})
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got100Continue: func() { close(inHandler) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.base+"/api/v1/transactions", bodyReader)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", "Bearer "+till.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Expect", "100-continue")
	type answer struct {
		status int
		err    error
	}
	slowDone := make(chan answer, 1)
	go func() {
		client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
		resp, err := client.Do(req)
		if err != nil {
			slowDone <- answer{err: err}
			return
		}
		resp.Body.Close()
		slowDone <- answer{status: resp.StatusCode}
	}()
	select {
	case <-inHandler:
	case a := <-slowDone:
		t.Fatalf("slow sale answered before its body was sent: %+v", a)
	case <-time.After(30 * time.Second):
		t.Fatal("no 100 Continue for the slow sale")
	}
	half := len(body) / 2
	if _, err := bodyWriter.Write(body[:half]); err != nil {
		t.Fatal(err)
	}

	// Let the load run beside the slow sale for a moment: some more sales answered meanwhile.
	running.mu.Lock()
	ackedBefore := len(running.acked)
	running.mu.Unlock()
	running.waitAcked(t, ackedBefore+20)
	srv.signal(syscall.SIGTERM)
	waitListenerClosed(t, srv.addr)
	if _, err := bodyWriter.Write(body[half:]); err != nil {
		t.Fatal(err)
	}
	bodyWriter.Close()

	t.Run("the sale in flight at SIGTERM gets its 201", func(t *testing.T) {
		select {
		case a := <-slowDone:
			if a.err != nil || a.status != http.StatusCreated {
				t.Fatalf("slow sale: status %d, err %v, want 201", a.status, a.err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("slow sale got no answer")
		}
	})
	load := <-loadDone
	t.Logf("SIGTERM under load: %d sales acknowledged, %d without an answer (%d refused)", len(load.acked), len(load.unanswered), load.refused)

	t.Run("the server exits 0", func(t *testing.T) {
		if code := srv.exitCode(); code != 0 {
			t.Fatalf("serve exit code %d after SIGTERM, want 0", code)
		}
	})

	t.Run("no request got a 5xx or any status but 201", func(t *testing.T) {
		if len(load.other) > 0 {
			t.Fatalf("statuses other than 201: %v", load.other)
		}
	})

	t.Run("every acknowledged sale is stored exactly once", func(t *testing.T) {
		counts := storedCounts(t, dbURL)
		for _, id := range append(load.acked, slowID) {
			if counts[id] != 1 {
				t.Errorf("acknowledged sale %s is stored %d times", id, counts[id])
			}
		}
	})
}

// waitListenerClosed waits until addr refuses connections: the server has begun its shutdown.
func waitListenerClosed(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return
			}
		} else {
			conn.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections 30s after SIGTERM", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEmbeddedDefault runs serve with no REGULARS_DATABASE_URL: it starts its own cluster under
// the data dir, other commands join it, and no postgres outlives serve, however serve ends.
func TestEmbeddedDefault(t *testing.T) {
	dataDir := pgproctest.SearchableTempDir(t)
	env := []string{"REGULARS_DATA_DIR=" + dataDir}
	pgDir := filepath.Join(dataDir, "postgres")

	srv := startServe(t, env)
	var adminToken string
	t.Run("apikey create beside serve prints one token line and leaves the cluster running", func(t *testing.T) {
		adminToken = createKey(t, env, "--role", "admin", "--name", "x")
		admin := newAPIClient(srv.base, adminToken)
		admin.mustDo(t, http.MethodPost, "/api/v1/stores",
			map[string]string{"code": storeCode, "name": "Embedded", "timezone": "UTC", "currency": "EUR"},
			http.StatusCreated)
	})
	if adminToken == "" {
		t.FailNow()
	}

	t.Run("SIGTERM stops serve with exit 0 and its postgres with it", func(t *testing.T) {
		pids := pgproctest.ClusterProcesses(t, pgDir)
		if len(pids) == 0 {
			t.Fatalf("no postgres process for %s while serve runs", pgDir)
		}
		srv.signal(syscall.SIGTERM)
		if code := srv.exitCode(); code != 0 {
			t.Fatalf("serve exit code %d after SIGTERM, want 0", code)
		}
		pgproctest.WaitNoPostgres(t, pgDir, pids, 0)
	})

	t.Run("SIGKILL of serve takes its postgres down within seconds", func(t *testing.T) {
		srv := startServe(t, env)
		newAPIClient(srv.base, adminToken).mustDo(t, http.MethodGet, "/api/v1/stores", nil, http.StatusOK)
		pids := pgproctest.ClusterProcesses(t, pgDir)
		if len(pids) == 0 {
			t.Fatalf("no postgres process for %s while serve runs", pgDir)
		}
		srv.signal(syscall.SIGKILL)
		srv.exitCode()
		pgproctest.WaitNoPostgres(t, pgDir, pids, 15*time.Second)
	})

	t.Run("serve starts again after the kill with the data kept", func(t *testing.T) {
		srv := startServe(t, env)
		body := newAPIClient(srv.base, adminToken).mustDo(t, http.MethodGet, "/api/v1/stores", nil, http.StatusOK)
		if !strings.Contains(string(body), `"`+storeCode+`"`) {
			t.Errorf("stores after restart: %s, want store %s", body, storeCode)
		}
		srv.signal(syscall.SIGTERM)
		if code := srv.exitCode(); code != 0 {
			t.Fatalf("serve exit code %d after SIGTERM, want 0", code)
		}
		pgproctest.WaitNoPostgres(t, pgDir, nil, 0)
	})
}

// TestHealthcheck runs `regulars healthcheck`, the container image's HEALTHCHECK, against a
// running server and against nothing.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.URL(t)
	env := []string{"REGULARS_DATABASE_URL=" + dbURL, "REGULARS_DATA_DIR=" + t.TempDir()}
	srv := startServe(t, env)
	_, port, _ := net.SplitHostPort(srv.addr)
	for _, tc := range []struct {
		name   string
		addr   string
		wantOK bool
	}{
		{"it succeeds against the server's own address", srv.addr, true},
		{"it succeeds when the server listens on every interface", ":" + port, true},
		{"it fails with one line when nothing listens", freeAddr(t), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := runRegulars(t, append(env, "REGULARS_HTTP_ADDR="+tc.addr), "healthcheck")
			if tc.wantOK && err != nil {
				t.Fatalf("healthcheck: %v: %s", err, stderr)
			}
			if !tc.wantOK {
				if err == nil {
					t.Fatal("healthcheck succeeded with no server")
				}
				if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 || !strings.HasPrefix(stderr, "regulars: healthcheck:") {
					t.Fatalf("healthcheck printed %q, want one line", stderr)
				}
			}
		})
	}
}

package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// TestPointsAfterSIGKILLDuringBatchUploads: offline tills upload batches of a member's sales
// while serve is killed with SIGKILL; after the restart every till uploads all its batches
// again (it cannot know which were committed). Every sale is stored once and earned its points
// once: one ledger credit per sale, and the balance is what the sales earn.
func TestPointsAfterSIGKILLDuringBatchUploads(t *testing.T) {
	const tills, batches, perBatch = 4, 40, 50
	dbURL := dbtest.URL(t)
	env := []string{"REGULARS_DATABASE_URL=" + dbURL, "REGULARS_DATA_DIR=" + t.TempDir()}
	srv := startServe(t, env)
	till := setUpStore(t, srv, env)
	db := openTestDB(t, dbURL)
	card := models.WithCheckDigit("200000000077")
	execSQL(t, db, `INSERT INTO members (card, name, status, source) VALUES ($1, 'Kari', 'active', 'till')`, card)
	// 1 point a visit and 1 per 10 NOK: a 129.50 sale earns 13.
	execSQL(t, db, `INSERT INTO reward_program (points_per_visit, points_per_major_unit) VALUES (1, 0.1)`)
	occurredAt := time.Now().Add(-time.Hour).Truncate(time.Second)
	body := func(tl, b int) []byte {
		var items []string
		for i := range perBatch {
			items = append(items, fmt.Sprintf(`{"id":"OFF-%d-%02d-%02d","store":%q,"kind":"sale","occurred_at":%q,"amount":12950,"currency":"NOK","member":{"card":%q}}`,
				tl, b, i, storeCode, occurredAt.Format(time.RFC3339), card))
		}
		return []byte(`{"transactions":[` + strings.Join(items, ",") + `]}`)
	}
	var mu sync.Mutex
	acked := 0
	var wg sync.WaitGroup
	for tl := range tills {
		wg.Go(func() {
			for b := range batches {
				status, _, _, err := till.do(http.MethodPost, "/api/v1/transactions/batch", body(tl, b))
				if err != nil {
					return // killed
				}
				if status == http.StatusOK {
					mu.Lock()
					acked++
					mu.Unlock()
				}
			}
		})
	}
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := acked
		mu.Unlock()
		if n >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d batches answered in a minute", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.signal(syscall.SIGKILL)
	wg.Wait()
	t.Logf("killed after %d of %d batches were answered", acked, tills*batches)

	srv = startServe(t, env)
	till = newAPIClient(srv.base, till.token)
	for tl := range tills {
		for b := range batches {
			status, resp, _, err := till.do(http.MethodPost, "/api/v1/transactions/batch", body(tl, b))
			if err != nil || status >= 300 {
				t.Fatalf("re-upload of batch %d of till %d: %d %v %s", b, tl, status, err, resp)
			}
		}
	}
	var sales, credits, distinct, balance int
	if err := db.Pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM transactions),
		       (SELECT count(*) FROM points_ledger),
		       (SELECT count(DISTINCT transaction_id) FROM points_ledger),
		       (SELECT coalesce(sum(points), 0) FROM points_ledger)`).Scan(&sales, &credits, &distinct, &balance); err != nil {
		t.Fatal(err)
	}
	if want := tills * batches * perBatch; sales != want || credits != want || distinct != want || balance != 13*want {
		t.Errorf("%d sales, %d credits for %d sales, balance %d; want %d, %d, %d, %d",
			sales, credits, distinct, balance, want, want, want, 13*want)
	}
}

package models_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/regulars/regulars/models/dbtest"
)

// TestMigrationRedactsMemberTokensInCampaignLinks runs migration 00014 again over links stored
// the old way, one per recipient with the member's preferences token wrapped in another URL: the
// tokens are gone, the per-recipient rows are one, and no click is lost.
func TestMigrationRedactsMemberTokensInCampaignLinks(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`INSERT INTO segments (name, rules) VALUES ('All', '{"all": []}')`)
	exec(`INSERT INTO campaigns (id, name, subject, html, segment_id, holdout_percent, status)
		OVERRIDING SYSTEM VALUE SELECT 1, 'Leaky', 'Hi', '<p>x</p>', id, 0, 'sent' FROM segments`)
	exec(`INSERT INTO campaign_runs (id, campaign_id, scheduled_for, status) OVERRIDING SYSTEM VALUE
		VALUES (1, 1, now(), 'sent')`)
	urls := []string{
		"https://shop.example/records",
		"https://elsewhere.example/r?p=https://club.example/preferences?token=12.t5x1a0.AAAAbbbbCCCCddddEEEEffff",
		"https://elsewhere.example/r?p=https://club.example/preferences?token=13.t5x1a0.GGGGhhhhIIIIjjjjKKKK-_00",
		"https://elsewhere.example/r?p=https%3A%2F%2Fclub.example%2Funsubscribe%3Ftoken%3D14.0.LLLLmmmmNNNNooooPPPPqqqq",
	}
	for i, u := range urls {
		exec(`INSERT INTO campaign_links (id, campaign_id, url) OVERRIDING SYSTEM VALUE VALUES ($1, 1, $2)`, i+1, u)
		exec(`INSERT INTO campaign_clicks (run_id, member_id, link_id) VALUES (1, $1, $2)`, 10+i, i+1)
	}

	raw, err := os.ReadFile("migrations/00014_redact_link_tokens.sql")
	if err != nil {
		t.Fatal(err)
	}
	up, _, _ := strings.Cut(string(raw), "-- +goose Down")
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, up); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	rows, err := db.Pool.Query(ctx, `SELECT l.url, count(c.*) FROM campaign_links l
		LEFT JOIN campaign_clicks c ON c.link_id = l.id GROUP BY l.url ORDER BY l.url`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for rows.Next() {
		var u string
		var n int
		if err := rows.Scan(&u, &n); err != nil {
			t.Fatal(err)
		}
		got[u] = n
	}
	want := map[string]int{
		"https://shop.example/records": 1,
		"https://elsewhere.example/r?p=https://club.example/preferences?token=redacted":             2,
		"https://elsewhere.example/r?p=https%3A%2F%2Fclub.example%2Funsubscribe%3Ftoken%3Dredacted": 1,
	}
	if len(got) != len(want) {
		t.Fatalf("links after the migration %v, want %v", got, want)
	}
	for u, n := range want {
		if got[u] != n {
			t.Errorf("link %s has %d clicks, want %d (all: %v)", u, got[u], n, got)
		}
	}
}

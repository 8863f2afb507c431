package models_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// countKeyUpdates installs a statement-level trigger that counts the UPDATE statements run on
// api_keys, and returns a function reading the count.
func countKeyUpdates(t *testing.T, db *models.DB) func() int {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `
		CREATE TABLE key_updates (n int NOT NULL);
		INSERT INTO key_updates VALUES (0);
		CREATE FUNCTION count_key_update() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN UPDATE key_updates SET n = n + 1; RETURN NULL; END $$;
		CREATE TRIGGER count_key_update AFTER UPDATE ON api_keys
			FOR EACH STATEMENT EXECUTE FUNCTION count_key_update();`); err != nil {
		t.Fatal(err)
	}
	return func() int {
		t.Helper()
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT n FROM key_updates`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

func TestAPIKeyListNeverShowsTokens(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	token, err := db.CreateAPIKey(ctx, models.RoleAdmin, "", "ops")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := db.FindAPIKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d keys, want 2", len(keys))
	}
	if keys[0].Store == nil || *keys[0].Store != "oslo-1" || keys[1].Store != nil {
		t.Errorf("stores %v, %v: want oslo-1 for the till, none for the admin", keys[0].Store, keys[1].Store)
	}
	out, err := json.Marshal(keys)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), token) || strings.Contains(string(out), "rgl_") || strings.Contains(string(out), "hash") {
		t.Errorf("the list shows a token or its hash: %s", out)
	}
}

func TestRevokedKeyIsRefusedByAnotherProcessWithinSeconds(t *testing.T) {
	url := dbtest.URL(t)
	ctx := context.Background()
	open := func() *models.DB {
		db, err := models.Open(ctx, url, 4)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		return db
	}
	replica, other := open(), open()
	token, err := replica.CreateAPIKey(ctx, models.RoleMarketer, "", "laptop")
	if err != nil {
		t.Fatal(err)
	}
	p, err := replica.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Authenticate(ctx, token); err != nil {
		t.Fatal(err)
	}
	// The replica has the key cached; the other process revokes it.
	revokedAt := time.Now()
	k, err := other.RevokeAPIKey(ctx, p.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if k.RevokedAt == nil {
		t.Fatal("revoked key without revoked_at")
	}
	if _, err := other.Authenticate(ctx, token); models.ErrorCode(err) != models.EUNAUTHORIZED {
		t.Errorf("the revoking process still accepts the key: %v", err)
	}
	for {
		_, err := replica.Authenticate(ctx, token)
		if models.ErrorCode(err) == models.EUNAUTHORIZED {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(revokedAt) > 5*time.Second {
			t.Fatal("the other process still accepts the revoked key after 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	delay := time.Since(revokedAt)
	t.Logf("refused by the other process %v after the revocation", delay.Round(time.Millisecond))
	if delay > models.RevocationCheckEvery+time.Second {
		t.Errorf("refused after %v, want within about %v", delay, models.RevocationCheckEvery)
	}
	again, err := other.RevokeAPIKey(ctx, p.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if !again.RevokedAt.Equal(*k.RevokedAt) {
		t.Errorf("revoking again moved revoked_at from %v to %v", k.RevokedAt, again.RevokedAt)
	}
	if _, err := other.RevokeAPIKey(ctx, 999999); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("revoking an unknown key: %v, want not_found", err)
	}
}

func TestExpiredKeyIsRefused(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	if _, err := db.CreateAPIKeyUntil(ctx, models.RoleAdmin, "", "past", new(now.Add(-time.Minute))); models.ErrorCode(err) != models.EINVALID {
		t.Errorf("a key that has already expired: %v, want invalid", err)
	}
	token, err := db.CreateAPIKeyUntil(ctx, models.RoleAdmin, "", "contractor", new(now.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, token); err != nil {
		t.Fatalf("a key before its expiry: %v", err)
	}
	now = now.Add(time.Hour) // the cached entry ends with the key
	if _, err := db.Authenticate(ctx, token); models.ErrorCode(err) != models.EUNAUTHORIZED {
		t.Errorf("an expired key: %v, want unauthorized", err)
	}
}

func TestKeyUsageIsWrittenInBatches(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	updates := countKeyUpdates(t, db)
	admin, err := db.CreateAPIKey(ctx, models.RoleAdmin, "", "ops")
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := db.Authenticate(ctx, admin); err != nil {
			t.Fatal(err)
		}
	}
	if n := updates(); n != 0 {
		t.Errorf("%d UPDATE statements before the flush, want none", n)
	}
	if n, err := db.FlushKeyUsage(ctx); err != nil || n != 2 {
		t.Fatalf("the flush wrote %d keys (%v), want the till's and the admin's", n, err)
	}
	if n := updates(); n != 1 {
		t.Errorf("%d UPDATE statements for 101 uses of two keys, want one", n)
	}
	keys, err := db.FindAPIKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.LastUsedAt == nil {
			t.Errorf("key %d (%s) was used but has no last_used_at", k.ID, k.Name)
		}
	}
	before := updates()
	if n, err := db.FlushKeyUsage(ctx); err != nil || n != 0 {
		t.Errorf("a flush with nothing used wrote %d keys (%v)", n, err)
	}
	if updates() != before {
		t.Error("a flush with nothing used ran an UPDATE")
	}
}

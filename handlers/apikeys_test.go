package handlers

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

func TestListAPIKeysNeverShowsTokens(t *testing.T) {
	tl := newTill(t)
	res := tl.do(t, http.MethodGet, "/api/v1/apikeys", tl.admin, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	for _, tok := range []string{tl.admin, tl.marketer, tl.oslo, tl.bergen} {
		if strings.Contains(string(res.Body), tok) {
			t.Errorf("the list shows a token: %s", res.Body)
		}
	}
	if strings.Contains(string(res.Body), "rgl_") || strings.Contains(string(res.Body), "hash") {
		t.Errorf("the list shows a token or its hash: %s", res.Body)
	}
	keys, _ := res.JSON(t)["keys"].([]any)
	if len(keys) != 4 {
		t.Fatalf("%d keys, want 4: %s", len(keys), res.Body)
	}
	oslo := keys[2].(map[string]any)
	if oslo["store"] != "oslo-1" || oslo["role"] != "register" || oslo["revoked_at"] != nil {
		t.Errorf("the oslo till's key reads %v", oslo)
	}

	t.Run("only an admin may list or revoke keys", func(t *testing.T) {
		for _, tok := range []string{tl.marketer, tl.oslo} {
			wantError(t, tl.do(t, http.MethodGet, "/api/v1/apikeys", tok, nil), 403, "")
			wantError(t, tl.do(t, http.MethodDelete, "/api/v1/apikeys/1", tok, nil), 403, "")
		}
		wantError(t, tl.do(t, http.MethodGet, "/api/v1/apikeys", "", nil), 401, "")
	})
}

func TestRevokedKeyIsRefused(t *testing.T) {
	tl := newTill(t)
	if res := tl.do(t, http.MethodGet, "/api/v1/stores", tl.oslo, nil); res.Status != http.StatusOK {
		t.Fatalf("the till before the revocation: %d", res.Status)
	}
	p, err := tl.db.Authenticate(context.Background(), tl.oslo)
	if err != nil {
		t.Fatal(err)
	}
	res := tl.do(t, http.MethodDelete, fmt.Sprintf("/api/v1/apikeys/%d", p.KeyID), tl.admin, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("revoke: status %d: %s", res.Status, res.Body)
	}
	if k := res.JSON(t); k["revoked_at"] == nil || k["id"] == nil {
		t.Errorf("the revoked key reads %v", k)
	}
	// This process refuses it at once (other processes: models and cmd/regulars tests).
	res = tl.do(t, http.MethodGet, "/api/v1/stores", tl.oslo, nil)
	wantError(t, res, 401, "")
	if !strings.Contains(res.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("WWW-Authenticate %q, want invalid_token", res.Header.Get("WWW-Authenticate"))
	}
	if res := tl.do(t, http.MethodGet, "/api/v1/stores", tl.bergen, nil); res.Status != http.StatusOK {
		t.Errorf("another till after the revocation: %d", res.Status)
	}
	if res := tl.do(t, http.MethodDelete, fmt.Sprintf("/api/v1/apikeys/%d", p.KeyID), tl.admin, nil); res.Status != http.StatusOK {
		t.Errorf("revoking again: status %d, want 200", res.Status)
	}
	wantError(t, tl.do(t, http.MethodDelete, "/api/v1/apikeys/999999", tl.admin, nil), 404, "")
	wantError(t, tl.do(t, http.MethodDelete, "/api/v1/apikeys/x", tl.admin, nil), 404, "")
}

func TestExpiredKeyIsUnauthorized(t *testing.T) {
	tl := newTill(t)
	now := time.Now()
	tl.db.Now = func() time.Time { return now }
	tok, err := tl.db.CreateAPIKeyUntil(context.Background(), models.RoleMarketer, "", "agency", new(now.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if res := tl.do(t, http.MethodGet, "/api/v1/campaigns", tok, nil); res.Status != http.StatusOK {
		t.Fatalf("before its expiry: status %d", res.Status)
	}
	now = now.Add(time.Hour)
	res := tl.do(t, http.MethodGet, "/api/v1/campaigns", tok, nil)
	wantError(t, res, 401, "")
	list := tl.do(t, http.MethodGet, "/api/v1/apikeys", tl.admin, nil)
	if !strings.Contains(string(list.Body), `"expires_at":"`) {
		t.Errorf("the list does not show the expiry: %s", list.Body)
	}
}

// TestKeyUsageIsBatched: 100 requests make no write by themselves; the flush serve runs every
// few seconds writes them all in one UPDATE.
func TestKeyUsageIsBatched(t *testing.T) {
	tl := newTill(t)
	ctx := context.Background()
	if _, err := tl.db.Pool.Exec(ctx, `
		CREATE TABLE key_updates (n int NOT NULL);
		INSERT INTO key_updates VALUES (0);
		CREATE FUNCTION count_key_update() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN UPDATE key_updates SET n = n + 1; RETURN NULL; END $$;
		CREATE TRIGGER count_key_update AFTER UPDATE ON api_keys
			FOR EACH STATEMENT EXECUTE FUNCTION count_key_update();`); err != nil {
		t.Fatal(err)
	}
	flushCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tl.db.RunKeyUsage(flushCtx, time.Second, nil)
	}()
	for i := range 100 {
		tok := tl.oslo
		if i%2 == 1 {
			tok = tl.bergen
		}
		if res := tl.do(t, http.MethodGet, "/api/v1/stores", tok, nil); res.Status != http.StatusOK {
			t.Fatalf("request %d: status %d", i, res.Status)
		}
	}
	stop()
	<-done // the final flush
	if n := tl.count(t, `SELECT n FROM key_updates`); n < 1 || n > 3 {
		t.Errorf("%d UPDATE statements for 100 requests, want one to three (one a second, plus the last)", n)
	}
	if n := tl.count(t, `SELECT count(*) FROM api_keys WHERE last_used_at IS NOT NULL`); n != 2 {
		t.Errorf("%d keys with last_used_at, want the two tills'", n)
	}
	list := tl.do(t, http.MethodGet, "/api/v1/apikeys", tl.admin, nil)
	if strings.Count(string(list.Body), `"last_used_at":"`) != 2 {
		t.Errorf("the list shows no last_used_at for the tills: %s", list.Body)
	}
}

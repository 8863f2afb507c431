package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// Roles of API callers.
const (
	RoleRegister = "register"
	RoleMarketer = "marketer"
	RoleAdmin    = "admin"
	// RoleWebhook may call only the webhook endpoints: a mail provider's credential, which
	// therefore cannot read or erase members if it leaks from the provider's dashboard.
	RoleWebhook = "webhook"
)

// tokenPrefix marks Regulars tokens so that secret scanners and people recognise them.
const tokenPrefix = "rgl_"

// APIKey is a stored API credential; only the hash of its token is kept.
type APIKey struct {
	ID         int64 `gorm:"primaryKey"`
	Name       string
	Role       string
	StoreID    *int64
	TokenHash  []byte
	CreatedAt  time.Time
	RevokedAt  *time.Time
	LastUsedAt *time.Time
	ExpiresAt  *time.Time
}

// APIKeyInfo is an API key as lists show it: never its token nor the token's hash.
type APIKeyInfo struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
	// Store is the code of a register key's store.
	Store      *string    `json:"store"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

// Principal is an authenticated caller.
type Principal struct {
	KeyID int64
	Name  string
	Role  string
	// Store is set for the register role: the one store it may post for.
	Store *Store
}

// CreateAPIKey makes a key that does not expire and returns its token, which is shown once and
// never stored.
func (db *DB) CreateAPIKey(ctx context.Context, role, storeCode, name string) (string, error) {
	return db.CreateAPIKeyUntil(ctx, role, storeCode, name, nil)
}

// CreateAPIKeyUntil is CreateAPIKey for a key refused after expiresAt (nil: never).
func (db *DB) CreateAPIKeyUntil(ctx context.Context, role, storeCode, name string, expiresAt *time.Time) (string, error) {
	fe := FieldErrors{}
	switch role {
	case RoleRegister, RoleMarketer, RoleAdmin, RoleWebhook:
	default:
		fe.Add("role", "must be one of: register marketer admin webhook")
	}
	if strings.TrimSpace(name) == "" {
		fe.Add("name", "is required")
	}
	if role == RoleRegister && storeCode == "" {
		fe.Add("store", "is required for the register role")
	}
	if role != RoleRegister && storeCode != "" {
		fe.Add("store", "is only for the register role")
	}
	if expiresAt != nil && !expiresAt.After(db.Now()) {
		fe.Add("expires_at", "must be in the future")
	}
	if err := fe.Err("invalid API key"); err != nil {
		return "", err
	}
	key := &APIKey{Name: name, Role: role, ExpiresAt: expiresAt}
	if storeCode != "" {
		s, err := db.FindStoreByCode(ctx, storeCode)
		if err != nil {
			return "", err
		}
		key.StoreID = &s.ID
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	key.TokenHash = hashToken(token)
	if err := db.Gorm.WithContext(ctx).Create(key).Error; err != nil {
		return "", err
	}
	return token, nil
}

// apiKeyInfoSelect reads keys as APIKeyInfo; the token hash is never selected.
const apiKeyInfoSelect = `
	SELECT k.id, k.name, k.role, s.code, k.created_at, k.last_used_at, k.revoked_at, k.expires_at
	FROM api_keys k LEFT JOIN stores s ON s.id = k.store_id`

func scanAPIKeyInfo(row pgx.Row) (APIKeyInfo, error) {
	var k APIKeyInfo
	err := row.Scan(&k.ID, &k.Name, &k.Role, &k.Store, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt, &k.ExpiresAt)
	return k, err
}

// FindAPIKeys returns every API key, revoked and expired ones too, by id. The last_used_at read
// here may lag the last request by up to the flush interval (FlushKeyUsage).
func (db *DB) FindAPIKeys(ctx context.Context) ([]APIKeyInfo, error) {
	rows, err := db.Pool.Query(ctx, apiKeyInfoSelect+` ORDER BY k.id`)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (APIKeyInfo, error) { return scanAPIKeyInfo(row) })
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return out, nil
}

// RevokeAPIKey revokes key id and returns it: every process refuses its token within
// RevocationCheckEvery (this one at once). Revoking a revoked key keeps its first revoked_at.
// ENOTFOUND when there is no such key.
func (db *DB) RevokeAPIKey(ctx context.Context, id int64) (*APIKeyInfo, error) {
	_, err := db.Pool.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1`, id, db.Now())
	if err != nil {
		return nil, fmt.Errorf("revoke API key %d: %w", id, err)
	}
	db.keys.clear()
	k, err := scanAPIKeyInfo(db.Pool.QueryRow(ctx, apiKeyInfoSelect+` WHERE k.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENOTFOUND, "no API key %d", id)
	}
	if err != nil {
		return nil, fmt.Errorf("revoke API key %d: %w", id, err)
	}
	return &k, nil
}

// Authenticate returns the caller a bearer token belongs to, or EUNAUTHORIZED (unknown,
// revoked or expired token). Results are cached because every till request carries a token;
// see keyCache for how a revocation still reaches every process within a second or two.
func (db *DB) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if !strings.HasPrefix(token, tokenPrefix) {
		return nil, Errorf(EUNAUTHORIZED, "unknown API token")
	}
	if err := db.checkRevocations(ctx); err != nil {
		return nil, err
	}
	hash := string(hashToken(token))
	now := db.Now()
	if p := db.keys.get(hash, now); p != nil {
		db.keys.used(p.KeyID, now)
		return p, nil
	}
	gen := db.keys.generation()
	var key APIKey
	err := db.Gorm.WithContext(ctx).Where("token_hash = ?", []byte(hash)).Take(&key).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, Errorf(EUNAUTHORIZED, "unknown API token")
	}
	if err != nil {
		return nil, err
	}
	switch {
	case key.RevokedAt != nil:
		return nil, Errorf(EUNAUTHORIZED, "API token revoked")
	case key.ExpiresAt != nil && !now.Before(*key.ExpiresAt):
		return nil, Errorf(EUNAUTHORIZED, "API token expired")
	}
	p := &Principal{KeyID: key.ID, Name: key.Name, Role: key.Role}
	if key.StoreID != nil {
		if p.Store, err = db.findStoreByID(ctx, *key.StoreID); err != nil {
			return nil, err
		}
	}
	db.keys.put(hash, p, key.ExpiresAt, now, gen)
	db.keys.used(p.KeyID, now)
	return p, nil
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Revocation reaches every process through the database: each one reads a fingerprint of the
// revocations (revocationSQL) at most once per RevocationCheckEvery and empties its key cache
// when the fingerprint changed. The check is lazy, done by the first request that finds the last
// one too old (the others wait for it, a millisecond), so no process needs a background loop and
// a revoked token is refused on every replica within RevocationCheckEvery plus the check's own
// time (about a second), while the till path keeps its cache: one small query per process per
// second, whatever the number of tills, instead of one per till per short cache lifetime (the
// alternative, entries kept for a few seconds, costs a query per till every few seconds).
// keyCacheTTL stays as the backstop for changes made to keys by hand in SQL other than
// revoked_at (a role or a store): those are seen within it.
const (
	// RevocationCheckEvery is how old the revocation fingerprint a request relies on may be.
	RevocationCheckEvery = time.Second
	keyCacheTTL          = 30 * time.Second
)

// revocationSQL is the fingerprint: any revoke (count of revoked_at), un-revoke or re-revoke by
// hand (the count or the latest time) and any deleted key (the total) changes it. A sequential
// scan of a table of a few hundred rows, once a second per process.
const revocationSQL = `SELECT count(*), count(revoked_at), max(revoked_at) FROM api_keys`

type revocationState struct {
	keys, revoked int64
	latest        *time.Time
}

func (s revocationState) differs(o revocationState) bool {
	sameLatest := (s.latest == nil) == (o.latest == nil) && (s.latest == nil || s.latest.Equal(*o.latest))
	return s.keys != o.keys || s.revoked != o.revoked || !sameLatest
}

// checkRevocations empties the key cache when keys were revoked since the last check, which is
// at most RevocationCheckEvery old afterwards.
func (db *DB) checkRevocations(ctx context.Context) error {
	c := db.keys
	if !c.checkDue(time.Now()) {
		return nil
	}
	c.checkMu.Lock()
	defer c.checkMu.Unlock()
	started := time.Now() // wall clock, not db.Now: this bounds real seconds
	if !c.checkDue(started) {
		return nil // another request has just checked
	}
	var st revocationState
	if err := db.Pool.QueryRow(ctx, revocationSQL).Scan(&st.keys, &st.revoked, &st.latest); err != nil {
		return fmt.Errorf("check API key revocations: %w", err)
	}
	c.checked(st, started)
	return nil
}

// keyCache maps token hashes to their principals for keyCacheTTL, and collects when each key was
// last used until FlushKeyUsage writes it.
type keyCache struct {
	mu      sync.Mutex
	entries map[string]keyCacheEntry
	// gen counts clears: a lookup that started before a clear must not put its (maybe revoked)
	// result back afterwards.
	gen uint64
	// lastUsed is when each key was last used since the last flush.
	lastUsed map[int64]time.Time

	checkMu   sync.Mutex // one revocation check at a time
	checkedAt time.Time  // when the last check's query started (wall clock)
	state     revocationState
	hasState  bool
}

type keyCacheEntry struct {
	p       *Principal
	expires time.Time
}

func newKeyCache() *keyCache {
	return &keyCache{entries: map[string]keyCacheEntry{}, lastUsed: map[int64]time.Time{}}
}

func (c *keyCache) get(hash string, now time.Time) *Principal {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || !now.Before(e.expires) {
		return nil
	}
	return e.p
}

func (c *keyCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches p until keyCacheTTL from now, or the key's own expiry if that is sooner, unless the
// cache was cleared since gen was read.
func (c *keyCache) put(hash string, p *Principal, keyExpires *time.Time, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.entries) > 10_000 { // bounded: tokens are few; clearing is fine
		clear(c.entries)
	}
	until := now.Add(keyCacheTTL)
	if keyExpires != nil && keyExpires.Before(until) {
		until = *keyExpires
	}
	c.entries[hash] = keyCacheEntry{p: p, expires: until}
}

func (c *keyCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.gen++
}

func (c *keyCache) checkDue(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.hasState || now.Sub(c.checkedAt) >= RevocationCheckEvery
}

// checked records a check's fingerprint, emptying the cache when it changed.
func (c *keyCache) checked(st revocationState, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hasState && st.differs(c.state) {
		clear(c.entries)
		c.gen++
	}
	c.state, c.hasState, c.checkedAt = st, true, at
}

func (c *keyCache) used(id int64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.After(c.lastUsed[id]) {
		c.lastUsed[id] = at
	}
}

// takeUsed returns the pending last-used times and starts a new batch.
func (c *keyCache) takeUsed() map[int64]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.lastUsed
	c.lastUsed = map[int64]time.Time{}
	return out
}

// KeyUsageFlushEvery is how often serve writes the keys' last_used_at (FlushKeyUsage).
const KeyUsageFlushEvery = 10 * time.Second

// FlushKeyUsage writes when each key used since the last flush was last used, all in one UPDATE
// (none when no key was used), and returns how many keys it updated. Writing last_used_at on
// every request would turn each till read into a write; this costs one statement per process
// per flush. A later time already written (by another replica) is kept. On failure the times
// are kept for the next flush.
func (db *DB) FlushKeyUsage(ctx context.Context) (int, error) {
	pending := db.keys.takeUsed()
	if len(pending) == 0 {
		return 0, nil
	}
	ids := make([]int64, 0, len(pending))
	times := make([]time.Time, 0, len(pending))
	for id, at := range pending {
		ids = append(ids, id)
		times = append(times, at)
	}
	tag, err := db.Pool.Exec(ctx, `
		UPDATE api_keys k SET last_used_at = u.at
		FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, at)
		WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`, ids, times)
	if err != nil {
		for id, at := range pending {
			db.keys.used(id, at)
		}
		return 0, fmt.Errorf("record API key usage: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// RunKeyUsage flushes the keys' usage every interval (0: KeyUsageFlushEvery) until ctx ends,
// then once more, so that a clean shutdown loses none.
func (db *DB) RunKeyUsage(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = KeyUsageFlushEvery
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, err := db.FlushKeyUsage(final); err != nil {
				log.Error("record API key usage", "err", err)
			}
			return
		case <-ticker.C:
			if _, err := db.FlushKeyUsage(ctx); err != nil && ctx.Err() == nil {
				log.Error("record API key usage", "err", err)
			}
		}
	}
}

package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
)

// Roles of API callers.
const (
	RoleRegister = "register"
	RoleMarketer = "marketer"
	RoleAdmin    = "admin"
)

// tokenPrefix marks Regulars tokens so that secret scanners and people recognise them.
const tokenPrefix = "rgl_"

// APIKey is a stored API credential; only the hash of its token is kept.
type APIKey struct {
	ID        int64 `gorm:"primaryKey"`
	Name      string
	Role      string
	StoreID   *int64
	TokenHash []byte
	CreatedAt time.Time
	RevokedAt *time.Time
}

// Principal is an authenticated caller.
type Principal struct {
	KeyID int64
	Name  string
	Role  string
	// Store is set for the register role: the one store it may post for.
	Store *Store
}

// CreateAPIKey makes a key and returns its token, which is shown once and never stored.
func (db *DB) CreateAPIKey(ctx context.Context, role, storeCode, name string) (string, error) {
	fe := FieldErrors{}
	switch role {
	case RoleRegister, RoleMarketer, RoleAdmin:
	default:
		fe.Add("role", "must be one of: register marketer admin")
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
	if err := fe.Err("invalid API key"); err != nil {
		return "", err
	}
	key := &APIKey{Name: name, Role: role}
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

// Authenticate returns the caller a bearer token belongs to, or EUNAUTHORIZED. Results are
// cached briefly because every till request carries a token; a revoked key stops working
// within keyCacheTTL.
func (db *DB) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if !strings.HasPrefix(token, tokenPrefix) {
		return nil, Errorf(EUNAUTHORIZED, "unknown API token")
	}
	hash := hashToken(token)
	if p := db.keys.get(string(hash), db.Now()); p != nil {
		return p, nil
	}
	var key APIKey
	err := db.Gorm.WithContext(ctx).Where("token_hash = ? AND revoked_at IS NULL", hash).Take(&key).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, Errorf(EUNAUTHORIZED, "unknown API token")
	}
	if err != nil {
		return nil, err
	}
	p := &Principal{KeyID: key.ID, Name: key.Name, Role: key.Role}
	if key.StoreID != nil {
		if p.Store, err = db.findStoreByID(ctx, *key.StoreID); err != nil {
			return nil, err
		}
	}
	db.keys.put(string(hash), p, db.Now())
	return p, nil
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

const keyCacheTTL = 30 * time.Second

type keyCache struct {
	mu      sync.Mutex
	entries map[string]keyCacheEntry
}

type keyCacheEntry struct {
	p       *Principal
	expires time.Time
}

func newKeyCache() *keyCache { return &keyCache{entries: map[string]keyCacheEntry{}} }

func (c *keyCache) get(hash string, now time.Time) *Principal {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || now.After(e.expires) {
		return nil
	}
	return e.p
}

func (c *keyCache) put(hash string, p *Principal, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) > 10_000 { // bounded: tokens are few; clearing is fine
		clear(c.entries)
	}
	c.entries[hash] = keyCacheEntry{p: p, expires: now.Add(keyCacheTTL)}
}

package models

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
)

// Store is a shop. Transactions are in its currency; its timezone is the shop's wall clock.
type Store struct {
	ID        int64     `gorm:"primaryKey" json:"-"`
	Code      string    `json:"code"`
	Name      string    `json:"name"`
	Timezone  string    `json:"timezone"`
	Currency  string    `json:"currency"`
	CreatedAt time.Time `json:"created_at"`

	loc *time.Location
}

// StoreInput is what a client may set when creating a store.
type StoreInput struct {
	Code     string `json:"code" validate:"required,storecode"`
	Name     string `json:"name" validate:"required,max=200"`
	Timezone string `json:"timezone" validate:"required,timezone"`
	Currency string `json:"currency" validate:"required,iso4217"`
}

var storeCodeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// CreateStore validates in and stores a new store.
func (db *DB) CreateStore(ctx context.Context, in StoreInput) (*Store, error) {
	in.Currency = strings.ToUpper(in.Currency)
	fe := FieldErrors{}
	validateStruct(in, fe)
	if err := fe.Err("invalid store"); err != nil {
		return nil, err
	}
	s := &Store{Code: in.Code, Name: in.Name, Timezone: in.Timezone, Currency: in.Currency}
	if err := db.Gorm.WithContext(ctx).Create(s).Error; err != nil {
		if IsUniqueViolation(err, "stores_code_key") {
			return nil, &Error{Code: ECONFLICT, Message: "a store with this code exists", Fields: map[string]string{"code": "is taken"}}
		}
		return nil, err
	}
	return s, nil
}

// FindStores lists every store by code.
func (db *DB) FindStores(ctx context.Context) ([]Store, error) {
	var out []Store
	err := db.Gorm.WithContext(ctx).Order("code").Find(&out).Error
	return out, err
}

// FindStoreByCode returns the store with code, or ENOTFOUND. Stores rarely change and are read
// on every transaction, so they are cached; a store created on another replica is found on the
// first miss.
func (db *DB) FindStoreByCode(ctx context.Context, code string) (*Store, error) {
	if s := db.stores.get(code); s != nil {
		return s, nil
	}
	var s Store
	err := db.Gorm.WithContext(ctx).Where("code = ?", code).Take(&s).Error
	if err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, Errorf(ENOTFOUND, "no store %q", code)
		}
		return nil, err
	}
	db.stores.put(&s)
	return &s, nil
}

// findStoreByID is FindStoreByCode's sibling for ids already known to exist.
func (db *DB) findStoreByID(ctx context.Context, id int64) (*Store, error) {
	if s := db.stores.byID(id); s != nil {
		return s, nil
	}
	var s Store
	if err := db.Gorm.WithContext(ctx).Take(&s, id).Error; err != nil {
		return nil, err
	}
	db.stores.put(&s)
	return &s, nil
}

// Location returns the store's timezone (loaded once, when the store enters the cache).
func (s *Store) Location() *time.Location {
	if s.loc != nil {
		return s.loc
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

type storeCache struct {
	mu     sync.RWMutex
	byCode map[string]*Store
	ids    map[int64]*Store
}

func newStoreCache() *storeCache {
	return &storeCache{byCode: map[string]*Store{}, ids: map[int64]*Store{}}
}

func (c *storeCache) get(code string) *Store {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byCode[code]
}

func (c *storeCache) byID(id int64) *Store {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ids[id]
}

func (c *storeCache) put(s *Store) {
	s.loc = s.Location()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byCode[s.Code] = s
	c.ids[s.ID] = s
}

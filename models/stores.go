package models

import (
	"context"
	"errors"
	"fmt"
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

// StoreUpdate is what the console may change about a store; its code never changes (tills and
// imports name stores by it).
type StoreUpdate struct {
	Name     string `json:"name" validate:"required,max=200"`
	Timezone string `json:"timezone" validate:"required,timezone"`
	Currency string `json:"currency" validate:"required,iso4217"`
}

// ErrCurrencyHasSales is refused when a store with transactions would change currency: their
// amounts are in the old one, and every figure sums them as one.
var ErrCurrencyHasSales = &Error{Code: ECONFLICT,
	Message: "the currency cannot change: this store has sales recorded in its currency",
	Fields:  map[string]string{"currency": "cannot change once the store has sales"}}

// UpdateStore changes store code's name, time zone and currency and returns it. The currency may
// change only while the store has no transactions (ErrCurrencyHasSales); the store's row is
// locked FOR UPDATE first, which waits for a till's sale being inserted (its foreign key holds a
// KEY SHARE lock on the row) and holds off new ones until the change commits, so no sale slips
// in between the check and the change.
func (db *DB) UpdateStore(ctx context.Context, code string, in StoreUpdate) (*Store, error) {
	in.Currency = strings.ToUpper(strings.TrimSpace(in.Currency))
	in.Name = strings.TrimSpace(in.Name)
	fe := FieldErrors{}
	validateStruct(in, fe)
	if err := fe.Err("invalid store"); err != nil {
		return nil, err
	}
	var s Store
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT * FROM stores WHERE code = ? FOR UPDATE`, code).Take(&s).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return Errorf(ENOTFOUND, "no store %q", code)
			}
			return err
		}
		if in.Currency != s.Currency {
			var sales bool
			if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM transactions WHERE store_id = ?)`, s.ID).Scan(&sales).Error; err != nil {
				return err
			}
			if sales {
				return ErrCurrencyHasSales
			}
		}
		s.Name, s.Timezone, s.Currency = in.Name, in.Timezone, in.Currency
		return tx.Exec(`UPDATE stores SET name = ?, timezone = ?, currency = ? WHERE id = ?`,
			s.Name, s.Timezone, s.Currency, s.ID).Error
	})
	if err != nil {
		return nil, fmt.Errorf("update store %s: %w", code, err)
	}
	db.stores.forget(s.ID)
	s.loc = nil
	return &s, nil
}

// StoreInfo is a store as the console lists it.
type StoreInfo struct {
	Store
	// HasSales: the store has transactions, so its currency is fixed.
	HasSales bool
}

// FindStoreInfos lists every store by code with whether it has sales (one index probe each).
func (db *DB) FindStoreInfos(ctx context.Context) ([]StoreInfo, error) {
	var out []StoreInfo
	err := db.Gorm.WithContext(ctx).Raw(`SELECT s.*, EXISTS (SELECT 1 FROM transactions t WHERE t.store_id = s.id) AS has_sales
		FROM stores s ORDER BY s.code`).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list stores: %w", err)
	}
	return out, nil
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

// storeCacheTTL is how long a process keeps a store before reading it again: a store renamed or
// moved to another time zone in the console (UpdateStore) is seen by the other replicas within
// it, for one query per store and process a minute.
const storeCacheTTL = time.Minute

type storeCache struct {
	mu       sync.RWMutex
	byCode   map[string]*Store
	ids      map[int64]*Store
	loadedAt map[int64]time.Time // wall clock
}

func newStoreCache() *storeCache {
	return &storeCache{byCode: map[string]*Store{}, ids: map[int64]*Store{}, loadedAt: map[int64]time.Time{}}
}

// fresh returns s unless it was loaded more than storeCacheTTL ago; the caller holds mu.
func (c *storeCache) fresh(s *Store) *Store {
	if s == nil || time.Since(c.loadedAt[s.ID]) >= storeCacheTTL {
		return nil
	}
	return s
}

func (c *storeCache) get(code string) *Store {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.fresh(c.byCode[code])
}

func (c *storeCache) byID(id int64) *Store {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.fresh(c.ids[id])
}

func (c *storeCache) put(s *Store) {
	s.loc = s.Location()
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.ids[s.ID]; old != nil && old.Code != s.Code {
		delete(c.byCode, old.Code)
	}
	c.byCode[s.Code] = s
	c.ids[s.ID] = s
	c.loadedAt[s.ID] = time.Now()
}

// forget drops store id, so that this process reads it again at once.
func (c *storeCache) forget(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.ids[id]; old != nil {
		delete(c.byCode, old.Code)
	}
	delete(c.ids, id)
	delete(c.loadedAt, id)
}

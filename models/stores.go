package models

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-playground/validator/v10"
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

// validate is the one validator; it is safe for concurrent use and caches struct metadata.
var validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(jsonName)
	_ = v.RegisterValidation("storecode", func(fl validator.FieldLevel) bool { return storeCodeRE.MatchString(fl.Field().String()) })
	return v
}()

// validateStruct runs the struct tags and turns failures into field errors.
func validateStruct(s any, fe FieldErrors) {
	err := validate.Struct(s)
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return
	}
	for _, v := range verrs {
		ns := v.Namespace()
		if i := strings.IndexByte(ns, '.'); i >= 0 {
			ns = ns[i+1:]
		}
		fe.Add(ns, describe(v))
	}
}

func describe(v validator.FieldError) string {
	switch v.Tag() {
	case "required":
		return "is required"
	case "max":
		return "must be at most " + v.Param() + " characters"
	case "email":
		return "must be an email address"
	case "timezone":
		return "must be an IANA time zone such as Europe/Oslo"
	case "iso4217":
		return "must be an ISO 4217 currency code such as NOK"
	case "storecode":
		return "must be 1-32 lowercase letters, digits or dashes, starting with a letter or digit"
	case "oneof":
		return "must be one of: " + v.Param()
	}
	return "is invalid (" + v.Tag() + ")"
}

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

// jsonName is the JSON name of a struct field, so that errors name fields as clients send them.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

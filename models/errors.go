package models

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Error codes. The HTTP layer maps each to one status in exactly one place.
const (
	EMALFORMED    = "malformed"    // the request could not be read (400)
	EUNAUTHORIZED = "unauthorized" // no or unknown credentials (401)
	EFORBIDDEN    = "forbidden"    // known caller, not allowed (403)
	ENOTFOUND     = "not_found"    // (404)
	ECONFLICT     = "conflict"     // clashes with what is stored (409)
	ETOOLARGE     = "too_large"    // (413)
	EINVALID      = "invalid"      // well-formed but breaks a rule; Fields says which (422)
	ERATELIMITED  = "rate_limited" // (429)
	EINTERNAL     = "internal"     // (500)
)

// Error is the one error type that crosses from the domain to the API. Fields maps an input
// field (dotted path, e.g. "items.0.qty") to what is wrong with it.
type Error struct {
	Code    string
	Message string
	Fields  map[string]string
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	return e.Message + " (" + formatFields(e.Fields) + ")"
}

// formatFields writes field errors as "a: why; b: why", sorted by field.
func formatFields(fields map[string]string) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + fields[k]
	}
	return strings.Join(parts, "; ")
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is or wraps an *Error, else EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// FieldErrors collects field-level validation problems; the first one per field wins.
type FieldErrors map[string]string

// Add records why field is invalid unless a reason is already recorded.
func (f FieldErrors) Add(field, why string) {
	if _, ok := f[field]; !ok {
		f[field] = why
	}
}

// Err returns nil when there are no problems, else an EINVALID *Error.
func (f FieldErrors) Err(message string) error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Message: message, Fields: f}
}

// sqlstateUniqueViolation is PostgreSQL's error code for a row refused by a unique constraint or
// unique index. IsUniqueViolation is the one place that knows it.
const sqlstateUniqueViolation = "23505"

// IsUniqueViolation reports whether err is, or wraps, PostgreSQL refusing a row for a unique
// constraint or index; given constraint names, only for one of those. Name the constraints a
// caller expects, so that a clash on another one is not mistaken for it.
func IsUniqueViolation(err error, constraints ...string) bool {
	constraint, ok := uniqueViolation(err)
	return ok && (len(constraints) == 0 || slices.Contains(constraints, constraint))
}

// uniqueViolation returns the name of the constraint or index a unique violation broke, and
// whether err is one.
func uniqueViolation(err error) (constraint string, ok bool) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != sqlstateUniqueViolation {
		return "", false
	}
	return pgErr.ConstraintName, true
}

package models

import (
	"errors"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"
)

// Format checks. Each rule about input is written in Go by the function that stores it and
// reported as FieldErrors; validator v10 is kept for what it knows better than a regexp of ours:
// email addresses (NormalizeEmail), ISO 4217 currency codes (transactions, stores) and
// StoreInput's struct tags.

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

package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

// maxBody is the largest request body accepted (413 beyond).
const maxBody = 1 << 20

var statusOf = map[string]int{
	models.EMALFORMED:    http.StatusBadRequest,
	models.EUNAUTHORIZED: http.StatusUnauthorized,
	models.EFORBIDDEN:    http.StatusForbidden,
	models.ENOTFOUND:     http.StatusNotFound,
	models.ECONFLICT:     http.StatusConflict,
	models.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	models.EINVALID:      http.StatusUnprocessableEntity,
	models.ERATELIMITED:  http.StatusTooManyRequests,
	models.EINTERNAL:     http.StatusInternalServerError,
}

var codeOf = func() map[int]string {
	m := map[int]string{http.StatusMethodNotAllowed: "method_not_allowed"}
	for code, status := range statusOf {
		m[status] = code
	}
	return m
}()

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// handleError is the one place where errors become HTTP responses, in the contract's format.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var (
		status int
		body   errorDetail
		domain *models.Error
		he     *echo.HTTPError
	)
	switch {
	case errors.As(err, &domain):
		status = statusOf[domain.Code]
		body = errorDetail{Code: domain.Code, Message: domain.Message, Fields: domain.Fields}
	case errors.As(err, &he):
		status = he.Code
		body = errorDetail{Code: codeOf[status], Message: fmt.Sprint(he.Message)}
		if body.Code == "" {
			body.Code = strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
		}
	default:
		status = http.StatusInternalServerError
		body = errorDetail{Code: models.EINTERNAL, Message: "internal error; the request id in the logs has details"}
		s.log.ErrorContext(c.Request().Context(), "request failed", "err", err,
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if status == http.StatusTooManyRequests && c.Response().Header().Get("Retry-After") == "" {
		c.Response().Header().Set("Retry-After", "60")
	}
	if s.renderPageError(status, c) { // the public pages answer in HTML (pages.go)
		return
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, errorBody{Error: body})
}

// decodeJSON reads the request body into v. Bodies over 1 MiB are ETOOLARGE, unreadable JSON is
// EMALFORMED, and a value of the wrong JSON type is EINVALID naming the field.
func decodeJSON(c echo.Context, v any) error {
	r := c.Request()
	if r.ContentLength > maxBody {
		return models.Errorf(models.ETOOLARGE, "request body is over %d bytes", maxBody)
	}
	body := http.MaxBytesReader(c.Response(), r.Body, maxBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err)
		}
		return models.Errorf(models.EMALFORMED, "request body must hold exactly one JSON value")
	}
	return nil
}

// jsonError classifies a decoding error.
func jsonError(err error) error {
	var (
		mbe *http.MaxBytesError
		typ *json.UnmarshalTypeError
		syn *json.SyntaxError
	)
	switch {
	case errors.As(err, &mbe):
		return models.Errorf(models.ETOOLARGE, "request body is over %d bytes", maxBody)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return models.Errorf(models.EMALFORMED, "request body must be a JSON object")
		}
		return &models.Error{Code: models.EINVALID, Message: "invalid request",
			Fields: map[string]string{field: "must be " + jsonTypeName(typ.Type.Kind().String()) + ", not " + typ.Value}}
	case errors.As(err, &syn):
		return models.Errorf(models.EMALFORMED, "malformed JSON at byte %d: %v", syn.Offset, err)
	case errors.Is(err, io.EOF):
		return models.Errorf(models.EMALFORMED, "request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return models.Errorf(models.EMALFORMED, "malformed JSON: unexpected end of input")
	default:
		return models.Errorf(models.EMALFORMED, "malformed JSON: %v", err)
	}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "true or false"
	}
	return "a number"
}

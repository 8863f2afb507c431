package handlers

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
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

// refines names the codes that refine a generic one: they are answered with the status of
// the generic code and their own code, so that a client can tell the cases apart. codeOf
// keeps one code per status, the generic one.
var refines = map[string]string{
	models.EINSUFFICIENTPOINTS: models.ECONFLICT,
	models.EVOUCHERUSED:        models.ECONFLICT,
	models.EVOUCHEREXPIRED:     models.ECONFLICT,
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

// Codes of the failures that are nobody's input error (see failureOf).
const (
	codeUnavailable = "unavailable"           // the database cannot be reached (503, Retry-After)
	codeTimeout     = "timeout"               // the request's statements ran out of time (503)
	codeClientGone  = "client_closed_request" // nobody reads it; recorded as 499 in the metrics
)

// unavailableRetryAfter is the Retry-After of a 503 while the database is down, in seconds: a
// restart or a fail-over takes seconds, and clients should not hammer a recovering server.
const unavailableRetryAfter = 5

// statusClientClosedRequest is nginx's status for a request whose client left before the
// answer; it only shows in the logs and metrics.
const statusClientClosedRequest = 499

// failure is how an error is answered.
type failure struct {
	status int
	body   errorDetail
	// retryAfter, when set, is the Retry-After header in seconds.
	retryAfter string
	// unexpected failures are logged with the error; the client sees only a request id.
	unexpected bool
}

// failureOf decides how err is answered: domain errors by their code; an ended request context
// or a database that cannot be reached by the situation rather than the error text. ctx is the
// request's context: statementDeadline has already marked a timeout or a client that left, and
// ctx tells the same for the routes exempt from the limit.
//
// A request over its statement limit is 503 "timeout", not 504: no gateway is involved, the
// server itself gave up on its database, and the same request is likely to fail again, so it
// carries no Retry-After. A database that cannot be reached (refused connection, broken or
// shut-down connection, no free connection slots) is 503 "unavailable" with Retry-After.
func failureOf(ctx context.Context, err error) failure {
	var (
		domain  *models.Error
		he      *echo.HTTPError
		timeout *statementTimeoutError
		gone    *clientGoneError
	)
	switch {
	case errors.As(err, &domain):
		status := statusOf[domain.Code]
		if status == 0 {
			status = statusOf[refines[domain.Code]]
		}
		if status == 0 {
			status = http.StatusInternalServerError
		}
		return failure{status: status, body: errorDetail{Code: domain.Code, Message: domain.Message, Fields: domain.Fields}}
	case errors.As(err, &he):
		body := errorDetail{Code: codeOf[he.Code], Message: fmt.Sprint(he.Message)}
		if body.Code == "" {
			body.Code = strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_"))
		}
		return failure{status: he.Code, body: body}
	case errors.As(err, &gone), errors.Is(ctx.Err(), context.Canceled):
		return failure{status: statusClientClosedRequest, body: errorDetail{Code: codeClientGone,
			Message: "the client closed the request before the answer"}}
	case errors.As(err, &timeout), errors.Is(ctx.Err(), context.DeadlineExceeded):
		limit := "its time limit"
		if timeout != nil {
			limit = "the " + timeout.limit.String() + " limit"
		}
		return failure{status: http.StatusServiceUnavailable, body: errorDetail{Code: codeTimeout,
			Message: "the request took longer than " + limit + " for database work and was stopped; " +
				"narrow it (fewer or simpler rules, a smaller page) or try again later"}}
	case databaseUnavailable(err):
		return unavailable
	}
	return failure{status: http.StatusInternalServerError, unexpected: true,
		body: errorDetail{Code: models.EINTERNAL, Message: "internal error; the request id in the logs has details"}}
}

// unavailable is the answer while the database cannot be reached.
var unavailable = failure{status: http.StatusServiceUnavailable, retryAfter: strconv.Itoa(unavailableRetryAfter),
	body: errorDetail{Code: codeUnavailable, Message: "the database cannot be reached; try again in a few seconds"}}

// failure is failureOf, plus a check of the database when the error is not one it knows: a
// connection the server dropped mid-statement (a crashed backend) fails with an unexpected EOF
// that has no type of its own, but then the database does not answer a ping either.
func (s *Server) failure(ctx context.Context, err error) failure {
	f := failureOf(ctx, err)
	if !f.unexpected {
		return f
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if perr := s.db.Ping(pctx); perr != nil && (databaseUnavailable(perr) || errors.Is(perr, context.DeadlineExceeded)) {
		return unavailable
	}
	return f
}

// databaseUnavailable reports whether err says the database cannot be reached, as opposed to a
// statement that failed on a working database.
func databaseUnavailable(err error) bool {
	var (
		connect *pgconn.ConnectError
		pgErr   *pgconn.PgError
		netErr  *net.OpError
	)
	switch {
	case errors.As(err, &connect): // a new connection failed: refused, DNS, authentication at start-up
		return true
	case errors.As(err, &pgErr):
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", // admin_shutdown: the server is stopping
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now: starting up, or in recovery
			pgErr.Code == "53300": // too_many_connections
			return true
		}
		return false
	case errors.As(err, &netErr), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return true
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone):
		return true
	}
	return false
}

// handleError is the one place where errors become HTTP responses, as WTF Dial's http.Error:
// one mapping from the error to a status, code and message (failure), one log line with the
// request id, and a renderer chosen by the request's area (renderFailure). Handlers and
// middleware just return their errors.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ctx := c.Request().Context()
	f := s.failure(ctx, err)
	requestID := c.Response().Header().Get(echo.HeaderXRequestID)
	switch {
	case f.unexpected:
		s.log.ErrorContext(ctx, "request failed", "err", err, "request_id", requestID)
	case f.status == http.StatusServiceUnavailable:
		s.log.WarnContext(ctx, "request failed", "code", f.body.Code, "err", err, "request_id", requestID)
	}
	h := c.Response().Header()
	if f.retryAfter != "" {
		h.Set("Retry-After", f.retryAfter)
	}
	if f.status == http.StatusTooManyRequests && h.Get("Retry-After") == "" {
		h.Set("Retry-After", "60")
	}
	if rerr := s.renderFailure(c, f); rerr != nil && !c.Response().Committed {
		s.log.ErrorContext(ctx, "render error page", "err", rerr, "request_id", requestID)
		_ = c.String(f.status, f.body.Message)
	}
}

// renderFailure answers f in the format of the request's area: the console's JSON under
// /console/api/, console pages under /console/, the API's JSON under /api/ and on the
// operational endpoints, and the club's HTML pages everywhere else (unknown paths included).
func (s *Server) renderFailure(c echo.Context, f failure) error {
	path := c.Request().URL.Path
	switch {
	case path == "/console/api" || strings.HasPrefix(path, "/console/api/"):
		return renderJSONFailure(c, f)
	case path == "/console" || strings.HasPrefix(path, "/console/"):
		return (&console{s: s}).renderFailure(c, f)
	case isPagePath(path):
		return s.renderPageFailure(c, f)
	}
	return renderJSONFailure(c, f)
}

// renderJSONFailure writes the contract's JSON error.
func renderJSONFailure(c echo.Context, f failure) error {
	if c.Request().Method == http.MethodHead {
		return c.NoContent(f.status)
	}
	return c.JSON(f.status, errorBody{Error: f.body})
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

package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// spec is the parsed OpenAPI document, loaded once per test binary.
var spec struct {
	once   sync.Once
	err    error
	doc    *openapi3.T
	router routers.Router
	mu     sync.Mutex // kin-openapi is not documented as safe for concurrent validation
}

func loadSpec(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	spec.once.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(openAPIDoc)
		if err != nil {
			spec.err = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			spec.err = err
			return
		}
		spec.doc = doc
		spec.router, spec.err = gorillamux.NewRouter(doc)
	})
	if spec.err != nil {
		t.Fatalf("openapi.yaml: %v", spec.err)
	}
	return spec.doc, spec.router
}

// api is a real server (real Echo stack, real PostgreSQL) and a client whose every exchange is
// checked against openapi.yaml.
type api struct {
	srv *testServer
	ts  *httptest.Server
	db  *models.DB
}

func newAPI(t *testing.T) *api {
	t.Helper()
	loadSpec(t)
	db := dbtest.New(t)
	ts := newTestServer(t, db)
	return &api{srv: ts, ts: ts.Server, db: db}
}

// response is one answer of the server, body read.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as generic JSON (numbers as json.Number).
func (r *response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("response body is not a JSON object: %v\n%s", err, r.Body)
	}
	return v
}

// ErrorFields returns the response's error code and error.fields.
func (r *response) ErrorFields(t testing.TB) (code string, fields map[string]string) {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("error body is not the contract's error: %v\n%s", err, r.Body)
	}
	return e.Error.Code, e.Error.Fields
}

// raw marks a request body sent exactly as given rather than marshalled to JSON.
type raw []byte

// chunked is a raw body sent without a Content-Length, so that the server finds its size only
// by reading it.
type chunked []byte

// do sends one request and checks the exchange against the OpenAPI document: the route must be
// documented, the response must match the documented status, headers and body, and a request
// the server accepted (2xx) must be one the document accepts too. Failures are reported with
// t.Errorf, so do is safe to call from several goroutines; a transport error gives status 0.
func (a *api) do(t testing.TB, method, path, token string, body any) *response {
	t.Helper()
	var payload []byte
	switch b := body.(type) {
	case nil:
	case raw:
		payload = b
	case chunked:
		payload = b
	default:
		var err error
		if payload, err = json.Marshal(b); err != nil {
			t.Errorf("marshal request body: %v", err)
			return &response{}
		}
	}
	newReq := func(base string) *http.Request {
		var rd io.Reader
		if payload != nil {
			rd = bytes.NewReader(payload)
			if _, ok := body.(chunked); ok {
				rd = io.MultiReader(rd) // hides the length
			}
		}
		req, err := http.NewRequest(method, base+path, rd)
		if err != nil {
			t.Errorf("build request: %v", err)
			return nil
		}
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return req
	}

	req := newReq(a.ts.URL)
	if req == nil {
		return &response{}
	}
	res, err := a.ts.Client().Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return &response{}
	}
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil {
		t.Errorf("%s %s: read response: %v", method, path, err)
		return &response{}
	}
	out := &response{Status: res.StatusCode, Header: res.Header, Body: got}
	a.check(t, newReq("http://localhost"), out)
	return out
}

// check validates one exchange against the document.
func (a *api) check(t testing.TB, req *http.Request, res *response) {
	t.Helper()
	_, router := loadSpec(t)
	spec.mu.Lock()
	defer spec.mu.Unlock()
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Errorf("%s %s is not in openapi.yaml: %v", req.Method, req.URL.Path, err)
		return
	}
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: bearerPresent, MultiError: true},
	}
	if reqErr := openapi3filter.ValidateRequest(ctx, in); reqErr != nil && accepted(route, res) {
		t.Errorf("%s %s: the server accepted (%d) a request openapi.yaml rejects: %v", req.Method, req.URL.Path, res.Status, reqErr)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 res.Status,
		Header:                 res.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(res.Body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s %s: response %d does not match openapi.yaml: %v\nbody: %.2000s", req.Method, req.URL.Path, res.Status, err, res.Body)
	}
}

// accepted reports whether the server took the request as valid. A batch answers 200 whatever
// its items hold, so it counts as accepted only when no item failed.
func accepted(route *routers.Route, res *response) bool {
	if res.Status >= 300 {
		return false
	}
	if route.Operation.OperationID == "createTransactionBatch" {
		var out struct{ Failed int }
		return json.Unmarshal(res.Body, &out) == nil && out.Failed == 0
	}
	return true
}

// bearerPresent stands in for the server's token check: the document only says a bearer token
// is sent; whether it is a good one is the server's business, and the tests check that.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecuritySchemeName == "bearerAuth" && strings.HasPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
		return nil
	}
	return errors.New("no bearer token")
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, _ := loadSpec(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi version %q, want 3.0.3", doc.OpenAPI)
	}
	for _, name := range []string{"Error", "Transaction", "TransactionInput", "Member", "MemberLookup", "BatchOutput", "Store"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("components.schemas.%s is missing", name)
		}
	}
	if doc.Components.SecuritySchemes["bearerAuth"] == nil {
		t.Error("components.securitySchemes.bearerAuth is missing")
	}
}

func TestAPIDocsServesTheDocument(t *testing.T) {
	a := newAPI(t)
	res := a.do(t, http.MethodGet, "/api/docs", "", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("GET /api/docs: %d", res.Status)
	}
	onDisk, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Body, onDisk) {
		t.Error("GET /api/docs does not serve openapi.yaml byte for byte")
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/yaml") {
		t.Errorf("Content-Type %q, want application/yaml", ct)
	}
}

var echoParam = regexp.MustCompile(`:([A-Za-z_][A-Za-z0-9_]*)`)

func TestEveryRouteIsDocumentedAndEveryDocumentedRouteExists(t *testing.T) {
	doc, _ := loadSpec(t)
	s := mustNew(t, testConfig(dbtest.New(t)))
	var served []string
	for _, r := range s.echo.Routes() {
		if strings.HasPrefix(r.Method, "echo_") { // Echo's own not-found routes
			continue
		}
		if r.Path == "/console" || strings.HasPrefix(r.Path, "/console/") { // the console's HTML pages are not API
			continue
		}
		served = append(served, r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}"))
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is served but not in openapi.yaml", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("%s is in openapi.yaml but not served", r)
		}
	}
}

// TestDocumentRejectsDrift makes sure the checks have teeth: a response that breaks the
// document fails validation.
func TestDocumentRejectsDrift(t *testing.T) {
	_, router := loadSpec(t)
	cases := []struct {
		name   string
		status int
		body   string
	}{
		{"a transaction with a float amount", 201, `{"id":"R-1","store":"oslo-1","kind":"sale","occurred_at":"2026-11-20T14:03:00+01:00","amount":129.5,"currency":"NOK","items":[],"received_at":"2026-11-20T14:03:01Z"}`},
		{"a transaction with an extra field", 201, `{"id":"R-1","store":"oslo-1","kind":"sale","occurred_at":"2026-11-20T14:03:00+01:00","amount":12950,"currency":"NOK","items":[],"received_at":"2026-11-20T14:03:01Z","extra":1}`},
		{"a transaction without received_at", 201, `{"id":"R-1","store":"oslo-1","kind":"sale","occurred_at":"2026-11-20T14:03:00+01:00","amount":12950,"currency":"NOK","items":[]}`},
		{"a time without offset", 201, `{"id":"R-1","store":"oslo-1","kind":"sale","occurred_at":"2026-11-20T14:03:00","amount":12950,"currency":"NOK","items":[],"received_at":"2026-11-20T14:03:01Z"}`},
		{"an error not in the contract's shape", 422, `{"Code":"invalid","Message":"x"}`},
		{"a status the operation does not document", 404, `{"error":{"code":"not_found","message":"x"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "http://localhost/api/v1/transactions", nil)
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatal(err)
			}
			in := &openapi3filter.ResponseValidationInput{
				RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
				Status:                 tc.status,
				Header:                 http.Header{"Content-Type": {"application/json"}},
				Options:                &openapi3filter.Options{IncludeResponseStatus: true},
			}
			in.SetBodyBytes([]byte(tc.body))
			if err := openapi3filter.ValidateResponse(context.Background(), in); err == nil {
				t.Error("validation passed")
			}
		})
	}
}

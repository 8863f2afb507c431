package handlers

// Shared test helpers of the console (for every console_*_test.go).
//
//	cc := newConsole(t)                       // a Server on a fresh dbtest database, served by httptest
//	client, csrf := cc.loginAs(t, "marketer") // a new user of that role, logged in through the real form
//	res := cc.get(t, client, "/console/members")            // status, headers, body (redirects NOT followed)
//	res = cc.postForm(t, client, "/console/tiers", csrf, url.Values{"name.0": {"Gold"}})
//	res.Status, res.Header.Get("Location"), res.Body (string)
//	cc.DB (*models.DB), cc.URL (the base URL, no trailing slash), cc.Server (*testServer)
//
// Clients from loginAs keep their cookies in a jar and do not follow redirects, so a test sees
// each 303 and its Location. csrf is the session's token for the _csrf form field or the
// X-CSRF-Token header. Each loginAs call makes a new user (admin-1@example.com, marketer-2@...),
// so one test can hold an admin and a marketer at once. The users get a cheap bcrypt hash
// (cost 4) so that logging in many times stays fast; models tests cover the real cost.

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
	"golang.org/x/crypto/bcrypt"
)

// consolePassword is the password of every user loginAs makes.
const consolePassword = "correct horse battery"

// consoleClient is a console served over HTTP for tests.
type consoleClient struct {
	URL    string
	DB     *models.DB
	Server *testServer
	users  atomic.Int64
}

// newConsole starts a Server on a fresh database.
func newConsole(t *testing.T) *consoleClient {
	t.Helper()
	db := dbtest.New(t)
	ts := newTestServer(t, db)
	return &consoleClient{URL: ts.URL, DB: db, Server: ts}
}

// newClient is a browser without a session: a cookie jar, redirects not followed.
func (cc *consoleClient) newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// createUser adds a console user with consolePassword (cheap hash) and returns its email.
func (cc *consoleClient) createUser(t *testing.T, role string) string {
	t.Helper()
	email := fmt.Sprintf("%s-%d@example.com", role, cc.users.Add(1))
	hash, err := bcrypt.GenerateFromPassword([]byte(consolePassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cc.DB.Pool.Exec(context.Background(),
		`INSERT INTO console_users (email, role, password_hash) VALUES ($1, $2, $3)`, email, role, string(hash)); err != nil {
		t.Fatalf("create console user %s: %v", email, err)
	}
	return email
}

// loginAs makes a user with role (admin or marketer), logs in through the login form and returns
// the logged-in client and the session's CSRF token.
func (cc *consoleClient) loginAs(t *testing.T, role string) (*http.Client, string) {
	t.Helper()
	email := cc.createUser(t, role)
	client := cc.newClient(t)
	res := cc.login(t, client, email, consolePassword)
	if res.Status != http.StatusSeeOther {
		t.Fatalf("log in as %s: status %d, want 303\n%s", email, res.Status, res.Body)
	}
	page := cc.get(t, client, "/console/login?next=/console/members") // logged in: redirects
	if page.Status != http.StatusSeeOther {
		t.Fatalf("log in as %s: not logged in afterwards (GET /console/login: %d)", email, page.Status)
	}
	return client, cc.sessionCSRF(t, client)
}

// login posts the login form as a browser would (GET the form, then POST it with its token).
func (cc *consoleClient) login(t *testing.T, client *http.Client, email, password string) *consoleResponse {
	t.Helper()
	form := cc.get(t, client, "/console/login")
	token := formCSRF(t, form.Body)
	return cc.postForm(t, client, "/console/login", token, url.Values{"email": {email}, "password": {password}})
}

// sessionCSRF reads the session's CSRF token from the logout form of a console page.
func (cc *consoleClient) sessionCSRF(t *testing.T, client *http.Client) string {
	t.Helper()
	// Any page with the layout's logout form will do; the error page of an unknown path is one
	// every console has.
	res := cc.get(t, client, "/console/no-such-page")
	return formCSRF(t, res.Body)
}

var consoleCSRFField = regexp.MustCompile(`name="_csrf" value="([^"]*)"`)

// formCSRF is the value of the first _csrf field in a page.
func formCSRF(t *testing.T, body string) string {
	t.Helper()
	m := consoleCSRFField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no _csrf field in the page:\n%s", body)
	}
	return html.UnescapeString(m[1])
}

// consoleResponse is one answer, body read.
type consoleResponse struct {
	Status int
	Header http.Header
	Body   string
}

// do sends req with client and reads the answer.
func (cc *consoleClient) do(t *testing.T, client *http.Client, req *http.Request) *consoleResponse {
	t.Helper()
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &consoleResponse{Status: res.StatusCode, Header: res.Header, Body: string(body)}
}

// get fetches path (e.g. "/console/members?q=anna").
func (cc *consoleClient) get(t *testing.T, client *http.Client, path string) *consoleResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, cc.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cc.do(t, client, req)
}

// postForm posts form to path with csrf in its _csrf field ("" posts none).
func (cc *consoleClient) postForm(t *testing.T, client *http.Client, path, csrf string, form url.Values) *consoleResponse {
	t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	if csrf != "" {
		f.Set("_csrf", csrf)
	}
	req, err := http.NewRequest(http.MethodPost, cc.URL+path, strings.NewReader(f.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return cc.do(t, client, req)
}

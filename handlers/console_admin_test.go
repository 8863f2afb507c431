package handlers

// Tests of the owner's console pages (issue 13.2): stores, till keys, staff logins, the audit
// log, and every admin page's role and CSRF checks.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// adminPages are every admin-only console route, with a form that would change something.
var adminPages = []struct {
	method, path string
	form         url.Values
}{
	{http.MethodGet, "/console/stores", nil},
	{http.MethodPost, "/console/stores", url.Values{"code": {"evil-1"}, "name": {"Evil"}, "timezone": {"UTC"}, "currency": {"EUR"}}},
	{http.MethodPost, "/console/stores/oslo-1", url.Values{"name": {"Evil"}, "timezone": {"UTC"}, "currency": {"NOK"}}},
	{http.MethodGet, "/console/keys", nil},
	{http.MethodPost, "/console/keys", url.Values{"name": {"evil till"}, "store": {"oslo-1"}}},
	{http.MethodPost, "/console/keys/1/revoke", url.Values{}},
	{http.MethodGet, "/console/users", nil},
	{http.MethodPost, "/console/users", url.Values{"email": {"evil@example.com"}, "role": {"admin"}, "password": {"evil password 1"}}},
	{http.MethodPost, "/console/users/1/disable", url.Values{}},
	{http.MethodPost, "/console/users/1/enable", url.Values{}},
	{http.MethodPost, "/console/users/1/password", url.Values{"password": {"evil password 1"}}},
	{http.MethodPost, "/console/users/1/role", url.Values{"role": {"marketer"}}},
	{http.MethodGet, "/console/audit", nil},
}

// adminFixture is a console with store oslo-1, a till key (id 1) and an admin (user 1).
type adminFixture struct {
	*consoleClient
	admin     *http.Client
	adminCSRF string
	till      string // the till key's token
}

func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	cc := newConsole(t)
	ctx := context.Background()
	if _, err := cc.DB.CreateStore(ctx, models.StoreInput{Code: "oslo-1", Name: "Oslo", Timezone: "Europe/Oslo", Currency: "NOK"}); err != nil {
		t.Fatal(err)
	}
	token, err := cc.DB.CreateAPIKey(ctx, models.RoleRegister, "oslo-1", "till-1")
	if err != nil {
		t.Fatal(err)
	}
	admin, csrf := cc.loginAs(t, "admin")
	return &adminFixture{consoleClient: cc, admin: admin, adminCSRF: csrf, till: token}
}

// fingerprint is what the admin pages could change: stores, keys, users and their sessions.
func (f *adminFixture) fingerprint(t *testing.T) string {
	t.Helper()
	var s string
	err := f.DB.Pool.QueryRow(context.Background(), `SELECT concat_ws('|',
		(SELECT string_agg(concat_ws(',', code, name, timezone, currency), ';' ORDER BY id) FROM stores),
		(SELECT string_agg(concat_ws(',', id, name, revoked_at), ';' ORDER BY id) FROM api_keys),
		(SELECT string_agg(concat_ws(',', id, email, role, password_hash, disabled_at), ';' ORDER BY id) FROM console_users),
		(SELECT count(*) FROM console_sessions))`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *adminFixture) send(t *testing.T, client *http.Client, method, path, csrf string, form url.Values) *consoleResponse {
	t.Helper()
	if method == http.MethodGet {
		return f.get(t, client, path)
	}
	return f.postForm(t, client, path, csrf, form)
}

// Every admin page refuses a marketer (403, nothing changed, no link to it in the menu), sends a
// visitor without a session to the login page, and refuses an admin's form without the
// session's CSRF token (403, nothing changed).
func TestConsoleAdminPagesRoleAndCSRF(t *testing.T) {
	f := newAdminFixture(t)
	marketer, marketerCSRF := f.loginAs(t, "marketer")
	before := f.fingerprint(t)
	for _, p := range adminPages {
		t.Run(p.method+" "+p.path+" is refused to a marketer", func(t *testing.T) {
			res := f.send(t, marketer, p.method, p.path, marketerCSRF, p.form)
			if res.Status != http.StatusForbidden || !strings.Contains(res.Body, "You need the admin role") {
				t.Fatalf("%d\n%s", res.Status, res.Body)
			}
		})
		t.Run(p.method+" "+p.path+" sends a visitor to the login page", func(t *testing.T) {
			res := f.send(t, f.newClient(t), p.method, p.path, "", p.form)
			if res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/console/login") {
				t.Fatalf("%d %s", res.Status, res.Header.Get("Location"))
			}
		})
		if p.method == http.MethodPost {
			t.Run(p.method+" "+p.path+" needs the session's CSRF token", func(t *testing.T) {
				for _, token := range []string{"", "forged-token"} {
					res := f.postForm(t, f.admin, p.path, token, p.form)
					if res.Status != http.StatusForbidden || !strings.Contains(res.Body, "did not come from your console session") {
						t.Fatalf("token %q: %d\n%s", token, res.Status, res.Body)
					}
				}
			})
		}
	}
	if after := f.fingerprint(t); after != before {
		t.Fatalf("refused requests changed something:\nbefore %s\nafter  %s", before, after)
	}
	t.Run("a marketer's menu has no admin links; an admin's has them all", func(t *testing.T) {
		links := []string{`href="/console/stores"`, `href="/console/keys"`, `href="/console/users"`, `href="/console/audit"`}
		m := f.get(t, marketer, "/console/members")
		a := f.get(t, f.admin, "/console/members")
		for _, l := range links {
			if strings.Contains(m.Body, l) {
				t.Errorf("a marketer sees %s", l)
			}
			if !strings.Contains(a.Body, l) {
				t.Errorf("an admin lacks %s", l)
			}
		}
	})
	t.Run("an admin reads every admin page", func(t *testing.T) {
		for _, p := range adminPages {
			if p.method != http.MethodGet {
				continue
			}
			if res := f.get(t, f.admin, p.path); res.Status != http.StatusOK {
				t.Errorf("%s: %d\n%s", p.path, res.Status, res.Body)
			}
		}
	})
	t.Run("every user has an account page", func(t *testing.T) {
		if res := f.get(t, marketer, "/console/account"); res.Status != http.StatusOK || !strings.Contains(res.Body, "current_password") {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
		before := f.fingerprint(t)
		res := f.postForm(t, marketer, "/console/account/password", "", url.Values{"current_password": {consolePassword},
			"password": {"a new password 1"}, "password_again": {"a new password 1"}})
		if res.Status != http.StatusForbidden || f.fingerprint(t) != before {
			t.Fatalf("password change without CSRF: %d", res.Status)
		}
	})
}

func TestConsoleStores(t *testing.T) {
	f := newAdminFixture(t)
	ctx := context.Background()
	post := func(t *testing.T, path string, form url.Values) *consoleResponse {
		t.Helper()
		return f.postForm(t, f.admin, path, f.adminCSRF, form)
	}
	t.Run("an admin creates a store", func(t *testing.T) {
		res := post(t, "/console/stores", url.Values{"code": {"bergen-1"}, "name": {"Bergen"}, "timezone": {"Europe/Oslo"}, "currency": {"nok"}})
		if res.Status != http.StatusSeeOther {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
		s, err := f.DB.FindStoreByCode(ctx, "bergen-1")
		if err != nil || s.Currency != "NOK" || s.Name != "Bergen" {
			t.Fatalf("%+v %v", s, err)
		}
		page := f.get(t, f.admin, "/console/stores?saved=new")
		if !strings.Contains(page.Body, "Store created.") || !strings.Contains(page.Body, "bergen-1") {
			t.Fatalf("list:\n%s", page.Body)
		}
	})
	t.Run("bad input is refused field by field and nothing is stored", func(t *testing.T) {
		res := post(t, "/console/stores", url.Values{"code": {"Bad Code"}, "name": {""}, "timezone": {"Mars/Olympus"}, "currency": {"XXXX"}})
		if res.Status != http.StatusUnprocessableEntity {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
		for _, want := range []string{"Code must be", "Name is required", "Time zone must be an IANA time zone", "Currency must be an ISO 4217"} {
			if !strings.Contains(res.Body, want) {
				t.Errorf("no %q", want)
			}
		}
		if res := post(t, "/console/stores", url.Values{"code": {"oslo-1"}, "name": {"Again"}, "timezone": {"UTC"}, "currency": {"NOK"}}); res.Status != http.StatusConflict || !strings.Contains(res.Body, "is taken") {
			t.Fatalf("taken code: %d", res.Status)
		}
	})
	t.Run("a store without sales is renamed, moved and changes currency", func(t *testing.T) {
		res := post(t, "/console/stores/bergen-1", url.Values{"name": {"Bergen Bryggen"}, "timezone": {"Europe/London"}, "currency": {"GBP"}})
		if res.Status != http.StatusSeeOther {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
		s, err := f.DB.FindStoreByCode(ctx, "bergen-1") // this process forgot its cached copy
		if err != nil || s.Name != "Bergen Bryggen" || s.Timezone != "Europe/London" || s.Currency != "GBP" || s.Location().String() != "Europe/London" {
			t.Fatalf("%+v %v", s, err)
		}
	})
	t.Run("a store with sales keeps its currency and says why", func(t *testing.T) {
		postSale(t, f.URL, f.till, "S-1", http.StatusCreated)
		page := f.get(t, f.admin, "/console/stores")
		if !strings.Contains(page.Body, "fixed: the store has sales") {
			t.Fatalf("the page does not say the currency is fixed:\n%s", page.Body)
		}
		res := post(t, "/console/stores/oslo-1", url.Values{"name": {"Oslo sentrum"}, "timezone": {"Europe/Oslo"}, "currency": {"EUR"}})
		if res.Status != http.StatusConflict || !strings.Contains(res.Body, "cannot change once the store has sales") {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
		if s, _ := f.DB.FindStoreByCode(ctx, "oslo-1"); s.Currency != "NOK" || s.Name != "Oslo" {
			t.Fatalf("changed anyway: %+v", s)
		}
		// The name and time zone still change.
		if res := post(t, "/console/stores/oslo-1", url.Values{"name": {"Oslo sentrum"}, "timezone": {"Europe/Oslo"}, "currency": {"NOK"}}); res.Status != http.StatusSeeOther {
			t.Fatalf("rename: %d\n%s", res.Status, res.Body)
		}
	})
	t.Run("an unknown store is 404", func(t *testing.T) {
		if res := post(t, "/console/stores/nowhere", url.Values{"name": {"X"}, "timezone": {"UTC"}, "currency": {"EUR"}}); res.Status != http.StatusNotFound {
			t.Fatalf("%d", res.Status)
		}
	})
}

// postSale posts a sale with a till's token and wants status.
func postSale(t *testing.T, base, token, id string, status int) {
	t.Helper()
	body := fmt.Sprintf(`{"id": %q, "store": "oslo-1", "register": "till-1", "kind": "sale", "occurred_at": %q, "amount": 12950, "currency": "NOK"}`,
		id, time.Now().Format(time.RFC3339))
	res := apiRequest(t, base, http.MethodPost, "/api/v1/transactions", token, body)
	if res.StatusCode != status {
		t.Fatalf("POST /transactions %s: %d, want %d", id, res.StatusCode, status)
	}
}

// apiRequest sends an API request with a bearer token (body: JSON or "").
func apiRequest(t *testing.T, base, method, path, token, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

var shownToken = regexp.MustCompile(`id="created-token" class="secret" value="(rgl_[A-Za-z0-9_-]+)"`)

func TestConsoleTillKeys(t *testing.T) {
	f := newAdminFixture(t)
	res := f.postForm(t, f.admin, "/console/keys", f.adminCSRF, url.Values{"name": {"Oslo till 2"}, "store": {"oslo-1"}})
	if res.Status != http.StatusCreated {
		t.Fatalf("create: %d\n%s", res.Status, res.Body)
	}
	m := shownToken.FindStringSubmatch(res.Body)
	if m == nil {
		t.Fatalf("no token shown:\n%s", res.Body)
	}
	token := m[1]
	t.Run("the token is shown once, with a curl line that posts a sale to this server", func(t *testing.T) {
		if res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", res.Header.Get("Cache-Control"))
		}
		for _, want := range []string{"curl -sS -X POST &#39;" + f.URL + "/api/v1/transactions&#39;", "Authorization: Bearer " + token, `&#34;store&#34;: &#34;oslo-1&#34;`, `&#34;currency&#34;: &#34;NOK&#34;`} {
			if !strings.Contains(res.Body, want) {
				t.Errorf("no %q in\n%s", want, res.Body)
			}
		}
		list := f.get(t, f.admin, "/console/keys")
		if strings.Contains(list.Body, token) || !strings.Contains(list.Body, "Oslo till 2") {
			t.Fatalf("the list shows the token, or not the key:\n%s", list.Body)
		}
	})
	t.Run("the key posts sales for its store", func(t *testing.T) {
		postSale(t, f.URL, token, "K-1", http.StatusCreated)
	})
	t.Run("a key needs a name and one of the stores", func(t *testing.T) {
		res := f.postForm(t, f.admin, "/console/keys", f.adminCSRF, url.Values{"name": {" "}, "store": {"nowhere"}})
		if res.Status != http.StatusUnprocessableEntity || shownToken.MatchString(res.Body) ||
			!strings.Contains(res.Body, "Name is required") {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
		res = f.postForm(t, f.admin, "/console/keys", f.adminCSRF, url.Values{"name": {"x"}, "store": {"nowhere"}})
		if res.Status != http.StatusUnprocessableEntity || !strings.Contains(res.Body, "Store is not one of your stores") {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
	})
	t.Run("a revoked key is refused at once", func(t *testing.T) {
		var id int64
		if err := f.DB.Pool.QueryRow(context.Background(), `SELECT id FROM api_keys WHERE name = 'Oslo till 2'`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		res := f.postForm(t, f.admin, fmt.Sprintf("/console/keys/%d/revoke", id), f.adminCSRF, url.Values{})
		if res.Status != http.StatusSeeOther {
			t.Fatalf("revoke: %d\n%s", res.Status, res.Body)
		}
		postSale(t, f.URL, token, "K-2", http.StatusUnauthorized)
		postSale(t, f.URL, f.till, "K-3", http.StatusCreated) // the other till goes on
		list := f.get(t, f.admin, "/console/keys?revoked=1")
		if !strings.Contains(list.Body, "Key revoked") || strings.Contains(list.Body, fmt.Sprintf(`id="revoke-%d"`, id)) {
			t.Fatalf("list after revoking:\n%s", list.Body)
		}
	})
}

func TestSaleCurlQuotesForTheShell(t *testing.T) {
	st := &models.Store{Code: "oslo-1", Timezone: "UTC", Currency: "NOK"}
	got := saleCurl("https://x.example/it's", "rgl_abc", st, time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	want := `curl -sS -X POST 'https://x.example/it'\''s/api/v1/transactions' -H 'Authorization: Bearer rgl_abc' -H 'Content-Type: application/json' -d '{"id": "TEST-1796551200", "store": "oslo-1", "register": "test", "kind": "sale", "occurred_at": "2026-12-06T10:00:00Z", "amount": 100, "currency": "NOK"}'`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestConsoleStaffLogins(t *testing.T) {
	f := newAdminFixture(t)
	ctx := context.Background()
	post := func(t *testing.T, path string, form url.Values) *consoleResponse {
		t.Helper()
		return f.postForm(t, f.admin, path, f.adminCSRF, form)
	}
	userID := func(t *testing.T, email string) int64 {
		t.Helper()
		u, err := f.DB.FindUserByEmail(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		return u.ID
	}
	loggedIn := func(client *http.Client) bool {
		return f.get(t, client, "/console/members").Status == http.StatusOK
	}

	t.Run("an admin invites a marketer, who logs in with the password set", func(t *testing.T) {
		res := post(t, "/console/users", url.Values{"email": {"nina@example.com"}, "role": {"marketer"}, "password": {"first password 1"}})
		if res.Status != http.StatusSeeOther {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
		if res := f.login(t, f.newClient(t), "nina@example.com", "first password 1"); res.Status != http.StatusSeeOther {
			t.Fatalf("login: %d", res.Status)
		}
		res = post(t, "/console/users", url.Values{"email": {"NINA@example.com"}, "role": {"marketer"}, "password": {"short"}})
		if res.Status != http.StatusUnprocessableEntity || !strings.Contains(res.Body, "Password must be at least 10 characters") {
			t.Fatalf("bad invitation: %d\n%s", res.Status, res.Body)
		}
		if strings.Contains(res.Body, "short") && strings.Contains(res.Body, `value="short"`) {
			t.Error("the password typed is shown again")
		}
	})
	t.Run("a disabled user is logged out at once and cannot log in", func(t *testing.T) {
		nina := f.newClient(t)
		if res := f.login(t, nina, "nina@example.com", "first password 1"); res.Status != http.StatusSeeOther || !loggedIn(nina) {
			t.Fatal("not logged in")
		}
		id := userID(t, "nina@example.com")
		if res := post(t, fmt.Sprintf("/console/users/%d/disable", id), url.Values{}); res.Status != http.StatusSeeOther {
			t.Fatalf("disable: %d\n%s", res.Status, res.Body)
		}
		if loggedIn(nina) {
			t.Fatal("the disabled user's session still works")
		}
		if res := f.login(t, f.newClient(t), "nina@example.com", "first password 1"); res.Status != http.StatusUnauthorized {
			t.Fatalf("a disabled user logs in: %d", res.Status)
		}
		if res := post(t, fmt.Sprintf("/console/users/%d/enable", id), url.Values{}); res.Status != http.StatusSeeOther {
			t.Fatalf("enable: %d", res.Status)
		}
		if res := f.login(t, f.newClient(t), "nina@example.com", "first password 1"); res.Status != http.StatusSeeOther {
			t.Fatalf("enabled again, cannot log in: %d", res.Status)
		}
	})
	t.Run("a reset password logs the user out and is the new one", func(t *testing.T) {
		nina := f.newClient(t)
		f.login(t, nina, "nina@example.com", "first password 1")
		id := userID(t, "nina@example.com")
		if res := post(t, fmt.Sprintf("/console/users/%d/password", id), url.Values{"password": {"second password 2"}}); res.Status != http.StatusSeeOther {
			t.Fatalf("reset: %d\n%s", res.Status, res.Body)
		}
		if loggedIn(nina) {
			t.Fatal("the old session survives the reset")
		}
		if res := f.login(t, f.newClient(t), "nina@example.com", "first password 1"); res.Status != http.StatusUnauthorized {
			t.Fatalf("the old password works: %d", res.Status)
		}
		if res := f.login(t, f.newClient(t), "nina@example.com", "second password 2"); res.Status != http.StatusSeeOther {
			t.Fatalf("the new password fails: %d", res.Status)
		}
		if res := post(t, fmt.Sprintf("/console/users/%d/password", id), url.Values{"password": {"short"}}); res.Status != http.StatusUnprocessableEntity ||
			!strings.Contains(res.Body, "Password must be at least 10 characters") {
			t.Fatalf("short reset: %d\n%s", res.Status, res.Body)
		}
	})
	t.Run("a role change shows on the user's next request", func(t *testing.T) {
		nina := f.newClient(t)
		f.login(t, nina, "nina@example.com", "second password 2")
		if res := f.get(t, nina, "/console/stores"); res.Status != http.StatusForbidden {
			t.Fatalf("marketer: %d", res.Status)
		}
		id := userID(t, "nina@example.com")
		if res := post(t, fmt.Sprintf("/console/users/%d/role", id), url.Values{"role": {"admin"}}); res.Status != http.StatusSeeOther {
			t.Fatalf("role: %d", res.Status)
		}
		if res := f.get(t, nina, "/console/stores"); res.Status != http.StatusOK {
			t.Fatalf("promoted, still refused: %d", res.Status)
		}
		if res := post(t, fmt.Sprintf("/console/users/%d/role", id), url.Values{"role": {"owner"}}); res.Status != http.StatusUnprocessableEntity {
			t.Fatalf("unknown role: %d", res.Status)
		}
		if res := post(t, fmt.Sprintf("/console/users/%d/role", id), url.Values{"role": {"marketer"}}); res.Status != http.StatusSeeOther {
			t.Fatalf("demote: %d", res.Status)
		}
	})
	t.Run("the last enabled admin cannot disable or demote themself", func(t *testing.T) {
		self := currentUserID(t, f)
		for _, tc := range []struct{ path, role string }{{"disable", ""}, {"role", "marketer"}} {
			res := post(t, fmt.Sprintf("/console/users/%d/%s", self, tc.path), url.Values{"role": {tc.role}})
			if res.Status != http.StatusConflict || !strings.Contains(res.Body, "last enabled admin") {
				t.Fatalf("%s: %d\n%s", tc.path, res.Status, res.Body)
			}
		}
		if !loggedIn(f.admin) {
			t.Fatal("the admin was logged out")
		}
	})
	t.Run("a user changes their own password with the current one; other sessions end", func(t *testing.T) {
		nina, other := f.newClient(t), f.newClient(t)
		f.login(t, nina, "nina@example.com", "second password 2")
		f.login(t, other, "nina@example.com", "second password 2")
		csrf := f.sessionCSRF(t, nina)
		res := f.postForm(t, nina, "/console/account/password", csrf, url.Values{"current_password": {"wrong password"},
			"password": {"third password 3"}, "password_again": {"third password 3"}})
		if res.Status != http.StatusUnprocessableEntity || !strings.Contains(res.Body, "Current password is not your current password") {
			t.Fatalf("wrong current: %d\n%s", res.Status, res.Body)
		}
		res = f.postForm(t, nina, "/console/account/password", csrf, url.Values{"current_password": {"second password 2"},
			"password": {"third password 3"}, "password_again": {"third password 4"}})
		if res.Status != http.StatusUnprocessableEntity || !strings.Contains(res.Body, "is not the same") {
			t.Fatalf("mismatch: %d\n%s", res.Status, res.Body)
		}
		res = f.postForm(t, nina, "/console/account/password", csrf, url.Values{"current_password": {"second password 2"},
			"password": {"third password 3"}, "password_again": {"third password 3"}})
		if res.Status != http.StatusSeeOther {
			t.Fatalf("change: %d\n%s", res.Status, res.Body)
		}
		if !loggedIn(nina) || loggedIn(other) {
			t.Fatalf("this session should stay (%v) and the other end (%v)", loggedIn(nina), !loggedIn(other))
		}
		if res := f.login(t, f.newClient(t), "nina@example.com", "third password 3"); res.Status != http.StatusSeeOther {
			t.Fatalf("new password: %d", res.Status)
		}
	})
}

// currentUserID is the fixture admin's user id.
func currentUserID(t *testing.T, f *adminFixture) int64 {
	t.Helper()
	var id int64
	if err := f.DB.Pool.QueryRow(context.Background(), `SELECT min(id) FROM console_users WHERE role = 'admin'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestConsoleAuditLog(t *testing.T) {
	f := newAdminFixture(t)
	ctx := context.Background()
	marketer, marketerCSRF := f.loginAs(t, "marketer")
	admin := "admin-1@example.com"

	// Actions: an admin creates a store and a login (a password in the form), a marketer tries
	// an admin page, an admin API key and a till use the API.
	f.postForm(t, f.admin, "/console/stores", f.adminCSRF, url.Values{"code": {"bergen-1"}, "name": {"Bergen"}, "timezone": {"Europe/Oslo"}, "currency": {"NOK"}})
	f.postForm(t, f.admin, "/console/users", f.adminCSRF, url.Values{"email": {"ola@example.com"}, "role": {"marketer"}, "password": {"secret password 9"}})
	f.postForm(t, marketer, "/console/stores/oslo-1", marketerCSRF, url.Values{"name": {"Mine"}, "timezone": {"UTC"}, "currency": {"NOK"}})
	adminKey, err := f.DB.CreateAPIKey(ctx, models.RoleAdmin, "", "ops script")
	if err != nil {
		t.Fatal(err)
	}
	apiRequest(t, f.URL, http.MethodPost, "/api/v1/stores", adminKey, `{"code": "trondheim-1", "name": "Trondheim", "timezone": "Europe/Oslo", "currency": "NOK"}`)
	apiRequest(t, f.URL, http.MethodDelete, "/api/v1/apikeys/1", adminKey, "")
	postSale(t, f.URL, f.till, "A-1", http.StatusUnauthorized) // the till's key was just revoked

	entries, err := f.DB.FindAudit(ctx, models.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		actor, action, target string
		status                int
	}
	var got []row
	for _, e := range entries {
		got = append(got, row{e.Actor, e.Action, e.Target, e.Status})
		if e.IP != "127.0.0.1" {
			t.Errorf("entry %s: ip %q", e.Action, e.IP)
		}
	}
	want := []row{
		{"API key ops script", "DELETE /api/v1/apikeys/:id", "1", 200},
		{"API key ops script", "POST /api/v1/stores", "", 201},
		{"marketer-2@example.com", "POST /console/stores/:code", "oslo-1", 403},
		{admin, "POST /console/users", "", 303},
		{admin, "POST /console/stores", "", 303},
	}
	// Before these: the logins of the fixture's admin and marketer.
	if len(got) != len(want)+2 || fmt.Sprint(got[:len(want)]) != fmt.Sprint(want) {
		t.Fatalf("audit log:\n got %v\nwant %v then two logins", got, want)
	}
	if got[len(got)-1].action != "POST /console/login" || got[len(got)-1].actor != admin {
		t.Errorf("the admin's login is not recorded: %v", got[len(got)-1])
	}
	var leaked int
	if err := f.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE concat(actor, action, target) LIKE '%secret%' OR concat(actor, action, target) LIKE '%rgl_%'`).Scan(&leaked); err != nil || leaked != 0 {
		t.Fatalf("secrets in the audit log: %d %v", leaked, err)
	}

	t.Run("the page filters by user, action and date and pages newest first", func(t *testing.T) {
		res := f.get(t, f.admin, "/console/audit?actor="+url.QueryEscape("MARKETER-2@example.com"))
		if res.Status != http.StatusOK || !strings.Contains(res.Body, "<code>POST /console/stores/:code</code>") || strings.Contains(res.Body, "<code>POST /console/users</code>") {
			t.Fatalf("by user: %d\n%s", res.Status, res.Body)
		}
		res = f.get(t, f.admin, "/console/audit?action=apikeys")
		if !strings.Contains(res.Body, "DELETE /api/v1/apikeys/:id") || strings.Contains(res.Body, "POST /api/v1/stores") {
			t.Fatalf("by action:\n%s", res.Body)
		}
		today := time.Now().UTC().Format(time.DateOnly)
		if res := f.get(t, f.admin, "/console/audit?from="+today+"&to="+today); !strings.Contains(res.Body, "<code>POST /console/users</code>") {
			t.Fatalf("today:\n%s", res.Body)
		}
		if res := f.get(t, f.admin, "/console/audit?to=2020-01-01"); !strings.Contains(res.Body, "No entries match") {
			t.Fatalf("2019:\n%s", res.Body)
		}
		if res := f.get(t, f.admin, "/console/audit?from=yesterday"); res.Status != http.StatusUnprocessableEntity || !strings.Contains(res.Body, "From must be a date") {
			t.Fatalf("bad date: %d", res.Status)
		}
		// Paging: auditPageSize + 5 more entries.
		for i := range auditPageSize + 5 {
			uid := currentUserID(t, f)
			if err := f.DB.RecordAudit(ctx, models.AuditEntry{UserID: &uid, Actor: "pager@example.com", Action: fmt.Sprintf("POST /page/%03d", i), Status: 200}); err != nil {
				t.Fatal(err)
			}
		}
		res = f.get(t, f.admin, "/console/audit?actor=pager@example.com")
		next := regexp.MustCompile(`href="([^"]*before=[0-9]+[^"]*)" rel="next"`).FindStringSubmatch(res.Body)
		if next == nil || !strings.Contains(res.Body, "POST /page/054") || strings.Contains(res.Body, "POST /page/004") {
			t.Fatalf("first page:\n%s", res.Body)
		}
		res = f.get(t, f.admin, strings.ReplaceAll(next[1], "&amp;", "&"))
		if !strings.Contains(res.Body, "POST /page/004") || !strings.Contains(res.Body, "POST /page/000") ||
			strings.Contains(res.Body, "POST /page/005") || strings.Contains(res.Body, `rel="next"`) {
			t.Fatalf("second page:\n%s", res.Body)
		}
	})

	t.Run("the address is the client's under the trusted-proxy rule", func(t *testing.T) {
		_, loopback, _ := net.ParseCIDR("127.0.0.1/32")
		for _, tc := range []struct {
			name    string
			trusted []*net.IPNet
			want    string
		}{
			{"a forged X-Forwarded-For is ignored without trusted proxies", nil, "127.0.0.1"},
			{"a trusted proxy's X-Forwarded-For is believed", []*net.IPNet{loopback}, "203.0.113.9"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f.Server.reconfigure(t, func(c *Config) { c.Security.TrustedProxies = tc.trusted })
				form := url.Values{"_csrf": {f.adminCSRF}, "name": {"Oslo"}, "timezone": {"Europe/Oslo"}, "currency": {"NOK"}}
				req, _ := http.NewRequest(http.MethodPost, f.URL+"/console/stores/oslo-1", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Forwarded-For", "203.0.113.9")
				f.do(t, f.admin, req)
				e, err := f.DB.FindAudit(ctx, models.AuditFilter{Action: "/console/stores/:code", Limit: 1})
				if err != nil || len(e) != 1 || e[0].IP != tc.want {
					t.Fatalf("%+v %v", e, err)
				}
			})
		}
	})
}

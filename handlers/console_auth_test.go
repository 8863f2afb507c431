package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestConsoleLogin(t *testing.T) {
	cc := newConsole(t)

	t.Run("the right password logs in and goes to the dashboard", func(t *testing.T) {
		email := cc.createUser(t, "marketer")
		client := cc.newClient(t)
		res := cc.login(t, client, email, consolePassword)
		if res.Status != http.StatusSeeOther || res.Header.Get("Location") != "/console/" {
			t.Fatalf("login: %d to %q, want 303 to /console/", res.Status, res.Header.Get("Location"))
		}
		ck := sessionCookie(res)
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/console" {
			t.Fatalf("session cookie %+v, want HttpOnly, SameSite=Lax, path /console", ck)
		}
		page := cc.get(t, client, "/console/members")
		if page.Status != http.StatusOK || !strings.Contains(page.Body, email) {
			t.Fatalf("members page after login: %d\n%s", page.Status, page.Body)
		}
	})

	t.Run("a login goes back to the page that asked for it", func(t *testing.T) {
		client := cc.newClient(t)
		res := cc.get(t, client, "/console/members?q=anna")
		loc := res.Header.Get("Location")
		if res.Status != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/login?") {
			t.Fatalf("members without session: %d to %q", res.Status, loc)
		}
		form := cc.get(t, client, loc)
		email := cc.createUser(t, "admin")
		res = cc.postForm(t, client, "/console/login", formCSRF(t, form.Body),
			url.Values{"email": {email}, "password": {consolePassword}, "next": {"/console/members?q=anna"}})
		if got := res.Header.Get("Location"); got != "/console/members?q=anna" {
			t.Fatalf("after login to %q", got)
		}
	})

	t.Run("next never leads off the console", func(t *testing.T) {
		for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", "/console/../api/v1/stores", "javascript:alert(1)"} {
			if got := safeNext(next); got != "/console/" {
				t.Errorf("safeNext(%q) = %q", next, got)
			}
		}
	})

	t.Run("a wrong password gives the generic error and no session", func(t *testing.T) {
		email := cc.createUser(t, "marketer")
		client := cc.newClient(t)
		res := cc.login(t, client, email, "not the password")
		if res.Status != http.StatusUnauthorized || !strings.Contains(res.Body, "The email or password is wrong.") {
			t.Fatalf("wrong password: %d\n%s", res.Status, res.Body)
		}
		if sessionCookie(res) != nil {
			t.Fatal("a failed login set a session cookie")
		}
		unknown := cc.login(t, cc.newClient(t), "nobody@example.com", consolePassword)
		if unknown.Status != http.StatusUnauthorized || !strings.Contains(unknown.Body, "The email or password is wrong.") {
			t.Fatalf("unknown email: %d\n%s", unknown.Status, unknown.Body)
		}
		if page := cc.get(t, client, "/console/members"); page.Status != http.StatusSeeOther {
			t.Fatalf("members after a failed login: %d", page.Status)
		}
	})

	t.Run("a login form without its token is refused", func(t *testing.T) {
		email := cc.createUser(t, "admin")
		client := cc.newClient(t)
		res := cc.postForm(t, client, "/console/login", "", url.Values{"email": {email}, "password": {consolePassword}})
		if res.Status != http.StatusForbidden || sessionCookie(res) != nil {
			t.Fatalf("login without token: %d", res.Status)
		}
		// A token of the attacker's own (form field only, no matching cookie) fails too.
		res = cc.postForm(t, cc.newClient(t), "/console/login", "forged-token-forged-token-forged-token-123",
			url.Values{"email": {email}, "password": {consolePassword}})
		if res.Status != http.StatusForbidden || sessionCookie(res) != nil {
			t.Fatalf("login with a forged token: %d", res.Status)
		}
	})

	t.Run("five wrong passwords lock the account until the lock time has passed", func(t *testing.T) {
		email := cc.createUser(t, "marketer")
		client := cc.newClient(t)
		for i := range 5 {
			if res := cc.login(t, client, email, "wrong password"); res.Status != http.StatusUnauthorized {
				t.Fatalf("attempt %d: %d", i+1, res.Status)
			}
		}
		res := cc.login(t, client, email, consolePassword)
		if res.Status != http.StatusUnauthorized || !strings.Contains(res.Body, "The email or password is wrong.") || sessionCookie(res) != nil {
			t.Fatalf("right password on a locked account: %d\n%s", res.Status, res.Body)
		}
		if _, err := cc.DB.Pool.Exec(context.Background(),
			`UPDATE console_users SET locked_until = now() - interval '1 second' WHERE email = $1`, email); err != nil {
			t.Fatal(err)
		}
		if res := cc.login(t, client, email, consolePassword); res.Status != http.StatusSeeOther {
			t.Fatalf("right password after the lock: %d\n%s", res.Status, res.Body)
		}
	})

	t.Run("the session id changes at each login and the old one ends", func(t *testing.T) {
		email := cc.createUser(t, "admin")
		client := cc.newClient(t)
		first := sessionCookie(cc.login(t, client, email, consolePassword))
		if first == nil {
			t.Fatal("no session cookie")
		}
		// Log in again in the same browser (its session cookie still set): a logged-in GET of the
		// form redirects, so take a form from another browser and hand over its token cookie.
		other := cc.newClient(t)
		form := cc.get(t, other, "/console/login")
		u, _ := url.Parse(cc.URL + "/console/login")
		client.Jar.SetCookies(u, other.Jar.Cookies(u))
		res := cc.postForm(t, client, "/console/login", formCSRF(t, form.Body),
			url.Values{"email": {email}, "password": {consolePassword}})
		second := sessionCookie(res)
		if res.Status != http.StatusSeeOther || second == nil || second.Value == first.Value {
			t.Fatalf("second login: %d, cookie %+v", res.Status, second)
		}
		replay := cc.newClient(t)
		setSessionCookie(t, cc, replay, first.Value)
		if page := cc.get(t, replay, "/console/members"); page.Status != http.StatusSeeOther {
			t.Fatalf("the first session still works: %d", page.Status)
		}
	})
}

func TestConsoleSessions(t *testing.T) {
	cc := newConsole(t)
	ctx := context.Background()

	t.Run("an expired session goes to the login page with a notice", func(t *testing.T) {
		client, _ := cc.loginAs(t, "marketer")
		if _, err := cc.DB.Pool.Exec(ctx, `UPDATE console_sessions SET expires_at = now() - interval '1 minute'`); err != nil {
			t.Fatal(err)
		}
		res := cc.get(t, client, "/console/members")
		loc := res.Header.Get("Location")
		if res.Status != http.StatusSeeOther || !strings.Contains(loc, "expired=1") {
			t.Fatalf("expired session: %d to %q", res.Status, loc)
		}
		page := cc.get(t, client, loc)
		if page.Status != http.StatusOK || !strings.Contains(page.Body, "Your session expired") {
			t.Fatalf("login page after expiry: %d\n%s", page.Status, page.Body)
		}
	})

	t.Run("logout ends the session and the old cookie is refused", func(t *testing.T) {
		client, csrf := cc.loginAs(t, "admin")
		u, _ := url.Parse(cc.URL + "/console/")
		var token string
		for _, ck := range client.Jar.Cookies(u) {
			if ck.Name == consoleCookie {
				token = ck.Value
			}
		}
		res := cc.postForm(t, client, "/console/logout", csrf, nil)
		if res.Status != http.StatusSeeOther || res.Header.Get("Location") != "/console/login?out=1" {
			t.Fatalf("logout: %d to %q", res.Status, res.Header.Get("Location"))
		}
		replay := cc.newClient(t)
		setSessionCookie(t, cc, replay, token)
		if page := cc.get(t, replay, "/console/members"); page.Status != http.StatusSeeOther {
			t.Fatalf("old cookie after logout: %d", page.Status)
		}
	})

	t.Run("logout without the CSRF token is refused and keeps the session", func(t *testing.T) {
		client, _ := cc.loginAs(t, "admin")
		if res := cc.postForm(t, client, "/console/logout", "", nil); res.Status != http.StatusForbidden {
			t.Fatalf("logout without token: %d", res.Status)
		}
		if page := cc.get(t, client, "/console/members"); page.Status != http.StatusOK {
			t.Fatalf("members after refused logout: %d", page.Status)
		}
	})

	t.Run("the CSRF token may come in the X-CSRF-Token header", func(t *testing.T) {
		client, csrf := cc.loginAs(t, "admin")
		req, _ := http.NewRequest(http.MethodPost, cc.URL+"/console/logout", nil)
		req.Header.Set("X-CSRF-Token", csrf)
		if res := cc.do(t, client, req); res.Status != http.StatusSeeOther {
			t.Fatalf("logout with header token: %d\n%s", res.Status, res.Body)
		}
	})

	t.Run("a session is refused after its absolute lifetime however busy", func(t *testing.T) {
		client, _ := cc.loginAs(t, "marketer")
		if _, err := cc.DB.Pool.Exec(ctx, `UPDATE console_sessions SET created_at = now() - interval '8 days',
			last_seen_at = now() - interval '2 minutes'`); err != nil {
			t.Fatal(err)
		}
		// The first request slides the idle expiry, capped at created_at + 7 days: in the past.
		cc.get(t, client, "/console/members")
		if res := cc.get(t, client, "/console/members"); res.Status != http.StatusSeeOther {
			t.Fatalf("session older than its lifetime: %d", res.Status)
		}
	})

	t.Run("console pages send the security headers", func(t *testing.T) {
		res := cc.get(t, cc.newClient(t), "/console/login")
		if !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") ||
			res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("headers %v", res.Header)
		}
	})
}

func TestConsoleSecureCookieOverHTTPS(t *testing.T) {
	cc := newConsole(t)
	cc.Server.reconfigure(t, func(c *Config) { c.Club.BaseURL = "https://club.example" })
	email := cc.createUser(t, "admin")
	res := cc.login(t, cc.newClient(t), email, consolePassword)
	if ck := sessionCookie(res); ck == nil || !ck.Secure {
		t.Fatalf("session cookie over https: %+v", ck)
	}
}

func TestConsoleRoles(t *testing.T) {
	cc := newConsole(t)
	marketer, csrf := cc.loginAs(t, "marketer")
	for _, tc := range []struct {
		name, path string
	}{
		{"a marketer cannot change the tiers", "/console/tiers"},
		{"a marketer cannot erase a member", "/console/members/1/erase"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := cc.postForm(t, marketer, tc.path, csrf, url.Values{"confirm": {"yes"}})
			if res.Status != http.StatusForbidden || !strings.Contains(res.Body, "You need the admin role") {
				t.Fatalf("%s: %d\n%s", tc.path, res.Status, res.Body)
			}
		})
	}
	t.Run("a marketer cannot export a member", func(t *testing.T) {
		if res := cc.get(t, marketer, "/console/members/1/export"); res.Status != http.StatusForbidden {
			t.Fatalf("export: %d", res.Status)
		}
	})
	t.Run("unknown console pages are a console 404 page", func(t *testing.T) {
		res := cc.get(t, marketer, "/console/no-such-page")
		if res.Status != http.StatusNotFound || !strings.Contains(res.Body, "no such page") {
			t.Fatalf("404: %d\n%s", res.Status, res.Body)
		}
	})
}

// sessionCookie is the session cookie a response sets, or nil.
func sessionCookie(res *consoleResponse) *http.Cookie {
	for _, ck := range (&http.Response{Header: res.Header}).Cookies() {
		if ck.Name == consoleCookie && ck.Value != "" {
			return ck
		}
	}
	return nil
}

// setSessionCookie gives client the session cookie token.
func setSessionCookie(t *testing.T, cc *consoleClient, client *http.Client, token string) {
	t.Helper()
	u, err := url.Parse(cc.URL + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	client.Jar.SetCookies(u, []*http.Cookie{{Name: consoleCookie, Value: token, Path: "/console"}})
}

// One address trying many accounts is slowed down even though no single account locks: once
// the per-minute allowance is spent, attempts are refused with 429 and Retry-After. The attempts
// go out at once (each with its own login form), so the allowance cannot refill meanwhile,
// however slow the machine.
func TestConsoleLoginIsRateLimitedPerAddress(t *testing.T) {
	cc := newConsole(t)
	const attempts = loginAttemptsPerMinute + 5
	var emails []string
	for range 5 { // five accounts, so no single one gets past its own lock-out threshold
		emails = append(emails, cc.createUser(t, "marketer"))
	}
	type attempt struct {
		client *http.Client
		body   string
	}
	prepared := make([]attempt, attempts)
	for i := range prepared {
		client := cc.newClient(t)
		token := formCSRF(t, cc.get(t, client, "/console/login").Body)
		prepared[i] = attempt{client, url.Values{"_csrf": {token}, "email": {emails[i%len(emails)]},
			"password": {"not the password"}}.Encode()}
	}
	statuses := make([]int, attempts)
	retryAfter := make([]string, attempts)
	var wg sync.WaitGroup
	for i, a := range prepared {
		wg.Go(func() {
			res, err := a.client.Post(cc.URL+"/console/login", "application/x-www-form-urlencoded", strings.NewReader(a.body))
			if err != nil {
				t.Errorf("attempt %d: %v", i, err)
				return
			}
			res.Body.Close()
			statuses[i], retryAfter[i] = res.StatusCode, res.Header.Get("Retry-After")
		})
	}
	wg.Wait()
	refused := 0
	for i, status := range statuses {
		if status == http.StatusTooManyRequests {
			refused++
			if retryAfter[i] == "" {
				t.Errorf("attempt %d: 429 without Retry-After", i)
			}
		}
	}
	// All past the allowance are refused, none within it (one may slip through if the burst
	// itself took over 60/allowance seconds to reach the server).
	if refused == 0 || attempts-refused < loginAttemptsPerMinute {
		t.Errorf("%d of %d simultaneous attempts refused, want %d (the allowance is %d a minute); statuses %v",
			refused, attempts, attempts-loginAttemptsPerMinute, loginAttemptsPerMinute, statuses)
	}
}

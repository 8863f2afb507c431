package handlers

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// peerTransport serves requests in process as if they came from peer (an IP address), so a test
// can be any client on any network.
type peerTransport struct {
	h    http.Handler
	peer string
}

func (p peerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.RemoteAddr = net.JoinHostPort(p.peer, "40000")
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// peerClient is a browser (cookie jar, redirects not followed) at address peer.
func peerClient(h http.Handler, peer string) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: peerTransport{h: h, peer: peer}, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// loopbackClient is a client connecting from its own loopback address ip (127.0.0.0/8 is all
// local on Linux), with the cookies of jar and redirects not followed.
func loopbackClient(t *testing.T, jar http.CookieJar, ip string) *http.Client {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	transport := &http.Transport{DialContext: dialer.DialContext}
	t.Cleanup(transport.CloseIdleConnections)
	return &http.Client{Transport: transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// postJoin fills in the join form as client, with X-Forwarded-For xff ("" sends none).
func postJoin(t *testing.T, client *http.Client, fields url.Values, xff string) int {
	t.Helper()
	send := func(method string, body url.Values) *http.Response {
		var req *http.Request
		if body == nil {
			req, _ = http.NewRequest(method, "http://club.example/join", nil)
		} else {
			req, _ = http.NewRequest(method, "http://club.example/join", strings.NewReader(body.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	form := send(http.MethodGet, nil)
	body, err := io.ReadAll(form.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := csrfField.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("GET /join: %d, no form", form.StatusCode)
	}
	f := url.Values{"_csrf": {m[1]}, "lang": {"en"}}
	for k, v := range fields {
		f[k] = v
	}
	return send(http.MethodPost, f).StatusCode
}

// consentIP is the address recorded with the consent answer of the member with email.
func consentIP(t *testing.T, db *models.DB, email string) string {
	t.Helper()
	var ip string
	if err := db.Pool.QueryRow(context.Background(), `SELECT coalesce(host(c.ip), '') FROM consents c
		JOIN members m ON m.id = c.member_id WHERE m.email = $1 ORDER BY c.id DESC LIMIT 1`, email).Scan(&ip); err != nil {
		t.Fatalf("consent of %s: %v", email, err)
	}
	return ip
}

// X-Forwarded-For is believed only from REGULARS_TRUSTED_PROXIES. Before, Echo's default believed
// it from any loopback or private-network peer, so a client on the same network (or any client of
// a proxy that passes the header on) could dodge the join limit and write any address into the
// consent evidence.
func TestXForwardedForIsBelievedOnlyFromTrustedProxies(t *testing.T) {
	db := dbtest.New(t)
	if _, err := db.CreateStore(context.Background(), models.StoreInput{Code: "oslo-1", Name: "Oslo", Timezone: "Europe/Oslo", Currency: "NOK"}); err != nil {
		t.Fatal(err)
	}
	newServer := func(trusted ...string) *Server {
		cfg := testConfig(db)
		cfg.Club.JoinRate = 2
		var nets []*net.IPNet
		for _, c := range trusted {
			_, n, err := net.ParseCIDR(c)
			if err != nil {
				t.Fatal(err)
			}
			nets = append(nets, n)
		}
		cfg.Security.TrustedProxies = nets
		return mustNew(t, cfg)
	}
	empty := url.Values{} // 422, still counted by the limit

	t.Run("without trusted proxies a forged header does not dodge the join limit", func(t *testing.T) {
		for _, peer := range []string{"127.0.0.1", "172.17.0.5", "198.51.100.7"} {
			client := peerClient(newServer(), peer)
			for i, xff := range []string{"203.0.113.1", "203.0.113.2"} {
				if got := postJoin(t, client, empty, xff); got != http.StatusUnprocessableEntity {
					t.Fatalf("peer %s, attempt %d: %d, want 422", peer, i+1, got)
				}
			}
			if got := postJoin(t, client, empty, "203.0.113.3"); got != http.StatusTooManyRequests {
				t.Errorf("peer %s, attempt 3 with yet another forwarded address: %d, want 429", peer, got)
			}
		}
	})

	t.Run("without trusted proxies the consent evidence holds the peer's address", func(t *testing.T) {
		client := peerClient(newServer(), "172.17.0.5")
		fields := url.Values{"name": {"Kari"}, "email": {"kari@example.com"}, "home_store": {"oslo-1"}, "marketing_consent": {"yes"}}
		if got := postJoin(t, client, fields, "203.0.113.66"); got != http.StatusSeeOther {
			t.Fatalf("join: %d, want 303", got)
		}
		if ip := consentIP(t, db, "kari@example.com"); ip != "172.17.0.5" {
			t.Errorf("consent recorded from %q, want the peer 172.17.0.5", ip)
		}
	})

	t.Run("a trusted proxy's header names the client for the join limit", func(t *testing.T) {
		proxy := peerClient(newServer("10.0.0.0/8"), "10.1.2.3")
		for i := range 2 {
			if got := postJoin(t, proxy, empty, "203.0.113.1"); got != http.StatusUnprocessableEntity {
				t.Fatalf("attempt %d: %d, want 422", i+1, got)
			}
		}
		if got := postJoin(t, proxy, empty, "203.0.113.1"); got != http.StatusTooManyRequests {
			t.Errorf("client 203.0.113.1's third attempt: %d, want 429", got)
		}
		if got := postJoin(t, proxy, empty, "203.0.113.2"); got != http.StatusUnprocessableEntity {
			t.Errorf("another client behind the proxy: %d, want 422 (the limit is per client)", got)
		}
	})

	t.Run("a trusted proxy's header names the client in the consent evidence", func(t *testing.T) {
		proxy := peerClient(newServer("10.0.0.0/8", "2001:db8::/32"), "10.1.2.3")
		// The client may put anything in front; the proxy appends the address it saw.
		fields := url.Values{"name": {"Ola"}, "email": {"ola@example.com"}, "home_store": {"oslo-1"}, "marketing_consent": {"yes"}}
		if got := postJoin(t, proxy, fields, "192.0.2.1, 203.0.113.9"); got != http.StatusSeeOther {
			t.Fatalf("join: %d, want 303", got)
		}
		if ip := consentIP(t, db, "ola@example.com"); ip != "203.0.113.9" {
			t.Errorf("consent recorded from %q, want the client the proxy saw, 203.0.113.9", ip)
		}
	})
}

// Strict-Transport-Security is on every response of a server reached over https (pages, API,
// console, errors, unknown paths), and on none otherwise.
func TestHSTSWhenTheBaseURLIsHTTPS(t *testing.T) {
	db := dbtest.New(t)
	for _, hsts := range []bool{true, false} {
		cfg := testConfig(db)
		cfg.Security.HSTS = hsts
		s := mustNew(t, cfg)
		client := peerClient(s, "198.51.100.7")
		for _, r := range []struct{ method, path string }{
			{http.MethodGet, "/healthz"},
			{http.MethodGet, "/join"},
			{http.MethodGet, "/console/login"},
			{http.MethodGet, "/api/v1/stores"}, // 401
			{http.MethodPost, "/api/v1/stores"},
			{http.MethodGet, "/no-such-page"},
			{http.MethodDelete, "/join"}, // 405
		} {
			req, _ := http.NewRequest(r.method, "https://club.example"+r.path, nil)
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			got := res.Header.Get("Strict-Transport-Security")
			if hsts && got != "max-age=31536000; includeSubDomains" {
				t.Errorf("https: %s %s (%d): Strict-Transport-Security %q", r.method, r.path, res.StatusCode, got)
			}
			if !hsts && got != "" {
				t.Errorf("http: %s %s (%d): Strict-Transport-Security %q, want none", r.method, r.path, res.StatusCode, got)
			}
		}
	}
}

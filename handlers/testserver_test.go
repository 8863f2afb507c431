package handlers

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/models"
)

// testServer is a Server built by New, served over httptest. reconfigure builds a new Server
// from a changed Config and serves it at the same address, so that a test can change a setting
// half-way without losing its clients' cookies (sessions live in the database).
type testServer struct {
	*httptest.Server
	mu  sync.Mutex
	cfg Config
	srv *Server
}

// testConfig is the Config of the tests' servers: db, no log, and the pages' test secret.
func testConfig(db *models.DB) Config {
	return Config{DB: db, Club: ClubOptions{Secret: testSecret}}
}

// newTestServer serves a Server on db, built from testConfig changed by each of configure.
func newTestServer(t testing.TB, db *models.DB, configure ...func(*Config)) *testServer {
	t.Helper()
	ts := &testServer{cfg: testConfig(db)}
	ts.reconfigure(t, configure...)
	ts.Server = httptest.NewServer(ts)
	t.Cleanup(ts.Close)
	return ts
}

// mustNew is New for tests.
func mustNew(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("handlers.New: %v", err)
	}
	return s
}

// reconfigure changes the Config with each of configure and serves a Server built from it.
func (ts *testServer) reconfigure(t testing.TB, configure ...func(*Config)) {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, f := range configure {
		f(&ts.cfg)
	}
	ts.srv = mustNew(t, ts.cfg)
}

// withCampaignMail is a Config change: campaign mail (test sends) goes to the SMTP server at
// smtpURL, links in it to baseURL, and campaigns without a From are from from.
func withCampaignMail(t testing.TB, smtpURL, baseURL, from string) func(*Config) {
	t.Helper()
	m, err := mailer.New(smtpURL, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return func(c *Config) { c.Campaigns = CampaignOptions{Mail: m, BaseURL: baseURL, From: from} }
}

// server is the Server being served.
func (ts *testServer) server() *Server {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.srv
}

// ServeHTTP serves the current Server.
func (ts *testServer) ServeHTTP(w http.ResponseWriter, r *http.Request) { ts.server().ServeHTTP(w, r) }

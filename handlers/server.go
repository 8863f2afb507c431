// Package handlers is the HTTP layer: the route table (routes.go), thin handlers (bind, call
// models, respond), authentication, and the one place where errors become responses
// (handleError, errors.go): the API's JSON errors, the club's and the console's error pages.
// Echo's types stay inside this package so that moving to another Echo version is mechanical.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/regulars/regulars/campaigns/providers"
	"github.com/regulars/regulars/jobs/metrics"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/templates"
)

// Config is everything the HTTP server needs. New checks it and fills in its defaults in one
// place, so that handlers read settings that are complete and never change while serving.
type Config struct {
	// DB is the database (required).
	DB *models.DB
	// Log receives the request log and the errors; nil discards them.
	Log *slog.Logger
	// Registry receives the HTTP and database-pool metrics and is what /metrics exposes; nil: a
	// registry of its own.
	Registry *prometheus.Registry
	// Timezone is the shop's time zone (REGULARS_TIMEZONE): "today" of the metrics and the join
	// funnel, the default zone of schedules and the zone every console page shows times in. nil:
	// UTC. When the database has a zone (models.DB.Timezone), it must be the same one.
	Timezone *time.Location
	// StatementTimeout is the time limit of the database statements run for a request
	// (REGULARS_STATEMENT_TIMEOUT, deadline.go); 0: models.DefaultStatementTimeout.
	StatementTimeout time.Duration
	// Metrics are the settings of runs started over HTTP: the nightly job's, so that both give
	// the same figures. Their Timezone is Timezone (leave it nil, or set the same zone).
	Metrics metrics.Options
	// Club configures the public club pages and the tracked links.
	Club ClubOptions
	// Campaigns configures the campaign routes.
	Campaigns CampaignOptions
	// Tracking configures the campaign statistics.
	Tracking TrackingOptions
	// Security configures client addresses and HSTS.
	Security SecurityOptions
	// Webhooks are the mail providers' webhook secrets (webhooks.go); a provider left unset
	// answers 404.
	Webhooks providers.Settings
	// Templates are the parsed pages and console templates; nil: New loads them (templates.Load),
	// so a broken template stops the server at start-up.
	Templates *templates.Engine
}

// Server serves the HTTP API and pages.
type Server struct {
	db      *models.DB
	log     *slog.Logger
	metrics *httpMetrics
	echo    *echo.Echo
	// tz is the shop's time zone (Config.Timezone), never nil.
	tz *time.Location
	// statementLimit is the time limit of a request's database statements (deadline.go).
	statementLimit time.Duration
	// metricsOpts are the settings of runs started by POST /metrics/run.
	metricsOpts metrics.Options
	club        ClubOptions
	campaigns   CampaignOptions
	tracking    TrackingOptions
	security    SecurityOptions
	// providers are the configured mail providers' webhook checks (webhooks.go).
	providers *providers.Set
	// templates are the pages and console templates, parsed once.
	templates *templates.Engine
	// countSlot lets one background segment count run at a time in this process (segments.go),
	// so that page views cannot fill the pool with slow counts.
	countSlot chan struct{}
}

// New builds the server's handler from cfg: it checks the settings, fills in the defaults and
// registers every route with its middleware (routes.go).
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil {
		return nil, errors.New("handlers: no database")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Timezone == nil {
		cfg.Timezone = time.UTC
	}
	if db := cfg.DB.Timezone; db != nil && db.String() != cfg.Timezone.String() {
		return nil, fmt.Errorf("handlers: time zone %s differs from the database's %s", cfg.Timezone, db)
	}
	if mz := cfg.Metrics.Timezone; mz != nil && mz.String() != cfg.Timezone.String() {
		return nil, fmt.Errorf("handlers: metrics time zone %s differs from the shop's %s", mz, cfg.Timezone)
	}
	cfg.Metrics.Timezone = cfg.Timezone
	switch {
	case cfg.StatementTimeout < 0:
		return nil, fmt.Errorf("handlers: negative statement timeout %v", cfg.StatementTimeout)
	case cfg.StatementTimeout == 0:
		cfg.StatementTimeout = models.DefaultStatementTimeout
	}
	switch {
	case cfg.Club.JoinRate < 0:
		return nil, fmt.Errorf("handlers: negative join rate %d", cfg.Club.JoinRate)
	case cfg.Club.JoinRate == 0:
		cfg.Club.JoinRate = DefaultJoinRate
	}
	if cfg.Templates == nil {
		t, err := templates.Load()
		if err != nil {
			return nil, fmt.Errorf("handlers: %w", err)
		}
		cfg.Templates = t
	}
	provs, err := providers.New(cfg.Webhooks)
	if err != nil {
		return nil, fmt.Errorf("handlers: %w", err)
	}
	s := &Server{db: cfg.DB, log: cfg.Log, metrics: newHTTPMetrics(cfg.Registry), echo: echo.New(),
		tz: cfg.Timezone, statementLimit: cfg.StatementTimeout, metricsOpts: cfg.Metrics,
		club: cfg.Club, campaigns: cfg.Campaigns, tracking: cfg.Tracking, security: cfg.Security,
		templates: cfg.Templates, countSlot: make(chan struct{}, 1), providers: provs}
	cfg.Registry.MustRegister(newPoolCollector(cfg.DB))
	s.echo.HideBanner = true
	s.echo.HidePort = true
	s.echo.HTTPErrorHandler = s.handleError
	// A client's IP (rate limits, consent evidence) is the peer's unless trusted proxies are
	// named; never Echo's default, which believes any X-Forwarded-For.
	s.echo.IPExtractor = clientIP(cfg.Security.TrustedProxies)
	s.routes(cfg.Registry)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Serve runs an HTTP server on addr until ctx ends, then lets in-flight requests finish (up to
// drain) before returning. ready, if not nil, receives the bound address once listening.
func Serve(ctx context.Context, addr string, h http.Handler, drain time.Duration, log *slog.Logger, ready func(addr string)) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "grace", drain)
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	return nil
}

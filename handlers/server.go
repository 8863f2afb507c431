// Package handlers is the HTTP layer: the route table, thin handlers (bind, call models,
// respond), authentication, and the one place where domain errors become the API's JSON errors.
// Echo's types stay inside this package so that moving to another Echo version is mechanical.
package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/regulars/regulars/jobs/metrics"
	"github.com/regulars/regulars/models"
)

// Server serves the HTTP API and pages.
type Server struct {
	db      *models.DB
	log     *slog.Logger
	metrics *httpMetrics
	echo    *echo.Echo
	// metricsOpts are the settings of runs started by POST /metrics/run (SetMetricsOptions).
	metricsOpts metrics.Options
	// club configures the public club pages (SetClub).
	club ClubOptions
	// campaigns configures the campaign routes (SetCampaigns).
	campaigns CampaignOptions
	// tracking configures the campaign statistics (SetTracking).
	tracking TrackingOptions
	// security configures client addresses and HSTS (SetSecurity, security.go).
	security SecurityOptions
	// countSlot lets one background segment count run at a time in this process (segments.go),
	// so that page views cannot fill the pool with slow counts.
	countSlot chan struct{}
}

// New builds the server's handler. reg receives the HTTP and database-pool metrics and is what
// /metrics exposes.
func New(db *models.DB, log *slog.Logger, reg *prometheus.Registry) *Server {
	s := &Server{db: db, log: log, metrics: newHTTPMetrics(reg), echo: echo.New(), countSlot: make(chan struct{}, 1)}
	reg.MustRegister(newPoolCollector(db))
	s.echo.HideBanner = true
	s.echo.HidePort = true
	s.echo.HTTPErrorHandler = s.handleError
	// A client's IP (rate limits, consent evidence) is the peer's until SetSecurity names
	// trusted proxies; never Echo's default, which believes any X-Forwarded-For.
	s.echo.IPExtractor = clientIP(nil)
	s.echo.Pre(s.strictTransport) // before routing, so that 404s and 405s get HSTS too
	s.routes(reg)
	return s
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

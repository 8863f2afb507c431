package handlers

import (
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/regulars/regulars/models"
)

// routes is the whole route table.
func (s *Server) routes(reg *prometheus.Registry) {
	e := s.echo
	e.Use(middleware.RequestID())
	e.Use(s.observe) // logs and metrics; renders errors so the status it records is the real one
	e.Use(middleware.Recover())

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	e.GET("/api/docs", s.apiDocs)

	api := e.Group("/api/v1")
	api.POST("/stores", s.createStore, s.auth(models.RoleAdmin))
	api.GET("/stores", s.listStores, s.auth(models.RoleAdmin, models.RoleMarketer, models.RoleRegister))
	api.POST("/transactions", s.createTransaction, s.auth(models.RoleRegister))
	api.POST("/transactions/batch", s.createTransactionBatch, s.auth(models.RoleRegister))
	api.POST("/members", s.createMember, s.auth(models.RoleRegister, models.RoleAdmin))
	api.GET("/members/lookup", s.lookupMember, s.auth(models.RoleRegister))
	api.GET("/tiers", s.listTiers, s.auth(models.RoleAdmin, models.RoleMarketer))
	api.PUT("/tiers", s.replaceTiers, s.auth(models.RoleAdmin))
	api.POST("/metrics/run", s.runMetrics, s.auth(models.RoleAdmin))
	api.GET("/metrics/segments", s.metricsSegments, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.GET("/metrics/model", s.metricsModel, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.GET("/metrics/series", s.metricsSeries, s.auth(models.RoleMarketer, models.RoleAdmin))
}

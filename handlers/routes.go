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
	e.Use(s.statementDeadline) // a time limit for the request's database statements (deadline.go)

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
	api.GET("/members/:id", s.getMember, s.auth(models.RoleAdmin))
	api.PATCH("/members/:id", s.updateMember, s.auth(models.RoleAdmin))
	api.DELETE("/members/:id", s.eraseMember, s.auth(models.RoleAdmin))
	api.GET("/members/:id/export", s.exportMember, s.auth(models.RoleAdmin))
	api.GET("/club/funnel", s.joinFunnel, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.GET("/tiers", s.listTiers, s.auth(models.RoleAdmin, models.RoleMarketer))
	api.PUT("/tiers", s.replaceTiers, s.auth(models.RoleAdmin))
	api.POST("/metrics/run", s.runMetrics, s.auth(models.RoleAdmin))
	api.GET("/metrics/segments", s.metricsSegments, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.GET("/metrics/model", s.metricsModel, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.GET("/metrics/series", s.metricsSeries, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.GET("/campaigns", s.listCampaigns, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.POST("/campaigns", s.createCampaign, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.GET("/campaigns/:id", s.getCampaign, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.PATCH("/campaigns/:id", s.updateCampaign, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.POST("/campaigns/:id/preview", s.previewCampaign, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.POST("/campaigns/:id/test", s.testCampaign, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.POST("/campaigns/:id/schedule", s.scheduleCampaign, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.POST("/campaigns/:id/pause", s.pauseCampaign, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.POST("/campaigns/:id/resume", s.resumeCampaign, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.POST("/campaigns/:id/cancel", s.cancelCampaign, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.GET("/segments", s.listSegments, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.POST("/segments", s.createSegment, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.GET("/segments/fields", s.segmentFields, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.GET("/segments/:id", s.getSegment, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.PATCH("/segments/:id", s.updateSegment, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.DELETE("/segments/:id", s.deleteSegment, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.GET("/segments/:id/members", s.segmentMembers, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.GET("/campaigns/:id/stats", s.campaignStats, s.auth(models.RoleMarketer, models.RoleAdmin))
	api.POST("/webhooks/bounce", s.bounceWebhook, s.auth(models.RoleAdmin))
	e.GET("/c/:token", s.click) // tracked campaign links (clicks.go)
	e.GET("/o/:file", s.open)   // the open-tracking pixel <token>.gif

	s.pageRoutes()    // the public club pages (pages.go)
	s.consoleRoutes() // the marketers' console (console*.go)
}

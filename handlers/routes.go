package handlers

import (
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/regulars/regulars/campaigns/dispatch"
	"github.com/regulars/regulars/flows"
	"github.com/regulars/regulars/models"
)

// routes is the whole route table: every route and group with its middleware. The handlers are
// in the file of their resource.
func (s *Server) routes(reg *prometheus.Registry) {
	e := s.echo
	if s.security.HSTS {
		e.Pre(strictTransport) // before routing, so that 404s and 405s get HSTS too (security.go)
	}
	e.Use(middleware.RequestID())
	e.Use(s.observe) // logs and metrics; renders errors so the status it records is the real one
	e.Use(middleware.Recover())
	e.Use(s.statementDeadline) // a time limit for the request's database statements (deadline.go)
	e.Use(s.audit)             // admins' and marketers' changes go to the audit log (audit.go)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	e.GET("/api/docs", s.apiDocs) // the document, or to a browser the page showing it (ops.go)
	e.GET("/api/docs/openapi.yaml", s.apiDocsYAML)
	e.GET("/api/docs/:file", s.apiDocsFile)

	// The API (JSON under /api/v1, auth.go): each route names the roles that may call it.
	admin := s.auth(models.RoleAdmin)
	register := s.auth(models.RoleRegister)
	staff := s.auth(models.RoleMarketer, models.RoleAdmin)
	api := e.Group("/api/v1")
	api.POST("/stores", s.createStore, admin)
	api.GET("/stores", s.listStores, s.auth(models.RoleAdmin, models.RoleMarketer, models.RoleRegister))
	api.GET("/apikeys", s.listAPIKeys, admin)
	api.DELETE("/apikeys/:id", s.revokeAPIKey, admin)
	api.POST("/transactions", s.createTransaction, register)
	api.POST("/transactions/batch", s.createTransactionBatch, register)
	api.POST("/members", s.createMember, s.auth(models.RoleRegister, models.RoleAdmin))
	api.GET("/members/lookup", s.lookupMember, register)
	api.GET("/members/:id", s.getMember, admin)
	api.PATCH("/members/:id", s.updateMember, admin)
	api.DELETE("/members/:id", s.eraseMember, admin)
	api.GET("/members/:id/export", s.exportMember, admin)
	api.POST("/members/:id/vouchers", s.createVoucher, admin)
	api.GET("/members/:id/points", s.memberPoints, staff)
	api.GET("/club/funnel", s.joinFunnel, staff)
	api.GET("/tiers", s.listTiers, s.auth(models.RoleAdmin, models.RoleMarketer))
	api.PUT("/tiers", s.replaceTiers, admin)
	api.PUT("/products", s.upsertProducts, admin)
	api.GET("/products", s.searchProducts, staff)
	api.POST("/metrics/run", s.runMetrics, admin)
	api.GET("/metrics/segments", s.metricsSegments, staff)
	api.GET("/metrics/model", s.metricsModel, staff)
	api.GET("/metrics/series", s.metricsSeries, staff)
	api.GET("/metrics/revenue", s.metricsRevenue, staff)
	api.GET("/metrics/categories", s.metricsCategories, staff)
	api.GET("/campaigns", s.listCampaigns, staff)
	api.POST("/campaigns", s.createCampaign, staff)
	api.GET("/campaigns/:id", s.getCampaign, staff)
	api.PATCH("/campaigns/:id", s.updateCampaign, staff)
	api.POST("/campaigns/:id/preview", s.previewCampaign, staff)
	api.POST("/campaigns/:id/test", s.testCampaign, staff)
	api.POST("/campaigns/:id/schedule", s.scheduleCampaign, staff)
	api.POST("/campaigns/:id/send", s.sendCampaignNow, staff)
	api.POST("/campaigns/:id/pause", s.pauseCampaign, staff)
	api.POST("/campaigns/:id/resume", s.resumeCampaign, staff)
	api.POST("/campaigns/:id/cancel", s.cancelCampaign, staff)
	api.GET("/segments", s.listSegments, staff)
	api.POST("/segments", s.createSegment, staff)
	api.GET("/segments/fields", s.segmentFields, staff)
	api.GET("/segments/:id", s.getSegment, staff)
	api.PATCH("/segments/:id", s.updateSegment, staff)
	api.DELETE("/segments/:id", s.deleteSegment, staff)
	api.GET("/segments/:id/members", s.segmentMembers, staff)
	api.GET("/campaigns/:id/stats", s.campaignStats, staff)
	api.GET("/flows", s.listFlows, staff)
	api.POST("/flows", s.createFlow, staff)
	api.GET("/flows/:id", s.getFlow, staff)
	api.PATCH("/flows/:id", s.updateFlow, staff)
	api.POST("/flows/:id/activate", s.activateFlow, staff)
	api.POST("/flows/:id/pause", s.pauseFlow, staff)
	api.GET("/flows/:id/stats", s.flowStats, staff)
	api.GET("/rewards/program", s.getRewardProgram, s.auth(models.RoleAdmin, models.RoleMarketer, models.RoleRegister))
	api.PUT("/rewards/program", s.setRewardProgram, admin)
	api.GET("/rewards", s.listRewards, s.auth(models.RoleAdmin, models.RoleMarketer, models.RoleRegister))
	api.POST("/rewards", s.createReward, admin)
	api.GET("/rewards/liability", s.rewardsLiability, admin)
	api.PATCH("/rewards/:code", s.updateReward, admin)
	api.POST("/redemptions", s.createRedemption, register)
	api.POST("/redemptions/:store/:id/cancel", s.cancelRedemption, register)
	// Mail providers (webhooks.go): the generic format takes a webhook (or admin) token, the
	// providers' own endpoints check the provider's signature or basic auth instead.
	api.POST("/webhooks/bounce", s.bounceWebhook, s.auth(models.RoleWebhook, models.RoleAdmin))
	api.POST("/webhooks/ses", s.sesWebhook)
	api.POST("/webhooks/sendgrid", s.sendgridWebhook)
	api.POST("/webhooks/mailgun", s.mailgunWebhook)
	api.POST("/webhooks/postmark", s.postmarkWebhook)

	// Tracked links of campaign mail (clicks.go).
	e.GET("/c/:token", s.click)
	e.GET("/o/:file", s.open) // the open-tracking pixel <token>.gif

	// The public club pages (pages.go). Every route gets p.guard (headers, body limit, form
	// parsing); the forms get CSRF protection; POST /join is rate-limited per IP. POST
	// /unsubscribe has no CSRF check: it is the RFC 8058 one-click target, called by mail
	// providers, and its signed token is the proof.
	p := newPages(s)
	e.GET("/join", p.joinForm, p.guard, p.csrfCheck)
	e.POST("/join", p.join, p.guard, p.rateLimit, p.csrfCheck)
	e.GET("/join/sent", p.joinSent, p.guard)
	e.GET("/confirm", p.confirmForm, p.guard, p.csrfCheck)
	e.POST("/confirm", p.confirm, p.guard, p.csrfCheck)
	e.GET("/card.png", p.cardImage, p.guard)
	e.GET("/preferences", p.preferencesForm, p.guard, p.csrfCheck)
	e.POST("/preferences", p.savePreferences, p.guard, p.csrfCheck)
	e.POST("/preferences/request", p.requestLink, p.guard, p.csrfCheck)
	e.GET("/preferences/export", p.linkForm(models.LinkExport, "link_export"), p.guard, p.csrfCheck)
	e.POST("/preferences/export", p.export, p.guard, p.csrfCheck)
	e.GET("/preferences/erase", p.linkForm(models.LinkErase, "erase"), p.guard, p.csrfCheck)
	e.POST("/preferences/erase", p.erase, p.guard, p.csrfCheck)
	e.GET("/preferences/consent", p.linkForm(models.LinkConsent, "link_consent"), p.guard, p.csrfCheck)
	e.POST("/preferences/consent", p.grantConsent, p.guard, p.csrfCheck)
	e.GET("/unsubscribe", p.unsubscribeForm, p.guard)
	e.POST("/unsubscribe", p.unsubscribe, p.guard)
	e.GET("/static/:file", p.static)

	// The marketers' console (console*.go). cn.session (console_auth.go) limits the body, loads
	// the session, if any, and checks the CSRF token of every POST; each page adds the roles it
	// needs (cn.require).
	cn := &console{s: s}
	con := e.Group("/console", cn.session)
	consoleStaff := cn.require(models.RoleAdmin, models.RoleMarketer)
	consoleAdmin := cn.require(models.RoleAdmin)
	con.GET("/login", cn.loginForm)
	con.POST("/login", cn.login, loginRateLimit())
	con.POST("/logout", cn.logout)

	con.GET("/", cn.dashboard, consoleStaff)
	con.POST("/metrics/run", cn.runMetricsNow, consoleAdmin)
	con.GET("/help", cn.help, consoleStaff)
	con.GET("/help/:doc", cn.helpDoc, consoleStaff)
	con.GET("/revenue", cn.revenue, consoleStaff)

	con.GET("/segments", cn.segmentList, consoleStaff)
	con.GET("/segments/new", cn.segmentNew, consoleStaff)
	con.GET("/segments/:id", cn.segmentEdit, consoleStaff)
	con.POST("/segments", cn.segmentCreate, consoleStaff)
	con.POST("/segments/:id", cn.segmentUpdate, consoleStaff)
	con.POST("/segments/:id/delete", cn.segmentDelete, consoleStaff)
	con.GET("/api/segments/preview", cn.segmentPreview, consoleStaff)
	con.GET("/api/catalogue", cn.catalogueOptions, consoleStaff)

	con.GET("/campaigns", cn.campaignList, consoleStaff)
	con.GET("/campaigns/new", cn.campaignNew, consoleStaff)
	con.POST("/campaigns", cn.campaignCreate, consoleStaff)
	con.GET("/campaigns/:id", cn.campaignEdit, consoleStaff)
	con.POST("/campaigns/:id", cn.campaignUpdate, consoleStaff)
	con.POST("/campaigns/:id/preview", cn.campaignPreviewForm, consoleStaff)
	con.POST("/campaigns/:id/schedule", cn.campaignSchedule, consoleStaff)
	con.POST("/campaigns/:id/send", cn.campaignSendNow, consoleStaff)
	con.POST("/campaigns/:id/pause", cn.campaignStateForm(dispatch.Pause, "paused"), consoleStaff)
	con.POST("/campaigns/:id/resume", cn.campaignStateForm(dispatch.Resume, "resumed"), consoleStaff)
	con.POST("/campaigns/:id/cancel", cn.campaignStateForm(dispatch.Cancel, "cancelled"), consoleStaff)
	con.POST("/campaigns/:id/test", cn.campaignTestSend, consoleStaff)
	con.GET("/campaigns/:id/report", cn.campaignReport, consoleStaff)
	con.GET("/api/campaigns/:id/preview", cn.campaignPreviewJSON, consoleStaff)

	con.GET("/flows", cn.flowList, consoleStaff)
	con.GET("/flows/new", cn.flowNew, consoleStaff)
	con.POST("/flows", cn.flowCreate, consoleStaff)
	con.GET("/flows/:id", cn.flowEdit, consoleStaff)
	con.POST("/flows/:id", cn.flowUpdate, consoleStaff)
	con.POST("/flows/:id/preview", cn.flowPreviewForm, consoleStaff)
	con.POST("/flows/:id/activate", cn.flowStateForm(flows.Activate, "activated"), consoleStaff)
	con.POST("/flows/:id/pause", cn.flowStateForm(flows.Pause, "paused"), consoleStaff)
	con.GET("/flows/:id/report", cn.flowReport, consoleStaff)
	con.GET("/api/flows/:id/steps/:step/preview", cn.flowPreviewJSON, consoleStaff)

	con.GET("/members", cn.members, consoleStaff)
	con.GET("/members/:id", cn.member, consoleStaff)
	con.GET("/members/:id/export", cn.exportMember, consoleAdmin)
	con.GET("/members/:id/erase", cn.eraseMemberForm, consoleAdmin)
	con.POST("/members/:id/erase", cn.eraseMember, consoleAdmin)
	con.GET("/tiers", cn.tiers, consoleStaff)
	con.POST("/tiers", cn.saveTiers, consoleAdmin)

	con.GET("/rewards", cn.rewards, consoleStaff)
	con.POST("/rewards/program", cn.saveRewardProgram, consoleAdmin)
	con.POST("/rewards", cn.createReward, consoleAdmin)
	con.POST("/rewards/edit/:code", cn.updateReward, consoleAdmin)

	// The owner's pages (admin only; marketers see neither the links nor the pages), and every
	// user's own account.
	con.GET("/stores", cn.stores, consoleAdmin)
	con.POST("/stores", cn.createStoreForm, consoleAdmin)
	con.POST("/stores/:code", cn.updateStoreForm, consoleAdmin)
	con.GET("/keys", cn.tillKeys, consoleAdmin)
	con.POST("/keys", cn.createTillKey, consoleAdmin)
	con.POST("/keys/:id/revoke", cn.revokeTillKey, consoleAdmin)
	con.GET("/users", cn.users, consoleAdmin)
	con.POST("/users", cn.inviteUser, consoleAdmin)
	con.POST("/users/:id/disable", cn.userAction("disabled", cn.disableUser), consoleAdmin)
	con.POST("/users/:id/enable", cn.userAction("enabled", cn.enableUser), consoleAdmin)
	con.POST("/users/:id/password", cn.userAction("password", cn.resetUserPassword), consoleAdmin)
	con.POST("/users/:id/role", cn.userAction("role", cn.setUserRole), consoleAdmin)
	con.GET("/audit", cn.auditLog, consoleAdmin)
	con.GET("/account", cn.account, consoleStaff)
	con.POST("/account/password", cn.changeOwnPassword, consoleStaff)
}

package handlers

// The audit log's one recorder (issue 13.2): every request that changes state (any method but
// GET, HEAD and OPTIONS), and the few reads that hand out personal data (exports), by a console
// user or by an admin or marketer API key is written to audit_log through models.RecordAudit,
// with the route as the action, its parameters as the target, the client address under the
// trusted-proxy rule (clientIP) and the status sent. Request bodies are never recorded, so no
// password, token or member data ends up in the log. Register keys are left out: their sales are
// the transactions themselves, and one more write per till sale would cost the till path.

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

// ctxAuditUser names, for a request that has no session yet (the login form), the console user
// it acted as.
const ctxAuditUser = "audit.user"

// auditWriteTimeout bounds the write of one entry, made after the response (the request's own
// context may be over by then).
const auditWriteTimeout = 5 * time.Second

// auditedReads are the GET routes recorded although they change nothing: they hand out a
// member's personal data.
var auditedReads = map[string]bool{
	"/api/v1/members/:id/export":  true,
	"/console/members/:id/export": true,
}

// audit records the request after it ran (audit.go's comment says which). It renders a
// handler's error itself, as observe does, so that the status recorded is the one sent.
func (s *Server) audit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		req := c.Request()
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			if !auditedReads[c.Path()] {
				return err
			}
		}
		e, ok := auditActor(c)
		if !ok {
			return err
		}
		if err != nil {
			c.Error(err)
		}
		names, values := c.ParamNames(), c.ParamValues()
		var target []string
		for i := range names {
			if i < len(values) {
				target = append(target, values[i])
			}
		}
		e.Action = req.Method + " " + c.Path()
		e.Target = strings.Join(target, "/")
		e.IP = c.RealIP()
		e.Status = c.Response().Status
		ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), auditWriteTimeout)
		defer cancel()
		if werr := s.db.RecordAudit(ctx, e); werr != nil {
			// The action happened; failing its response now would only hide that.
			s.log.ErrorContext(ctx, "audit log", "err", werr, "action", e.Action, "actor", e.Actor)
		}
		return nil
	}
}

// auditActor is who made the request, if it is someone the log records.
func auditActor(c echo.Context) (models.AuditEntry, bool) {
	if p := principal(c); p != nil {
		if p.Role != models.RoleAdmin && p.Role != models.RoleMarketer {
			return models.AuditEntry{}, false
		}
		id := p.KeyID
		return models.AuditEntry{APIKeyID: &id, Actor: "API key " + p.Name}, true
	}
	if u := currentConsoleUser(c); u != nil {
		id := u.ID
		return models.AuditEntry{UserID: &id, Actor: u.Email}, true
	}
	if u, _ := c.Get(ctxAuditUser).(*models.ConsoleUser); u != nil {
		id := u.ID
		return models.AuditEntry{UserID: &id, Actor: u.Email}, true
	}
	return models.AuditEntry{}, false
}

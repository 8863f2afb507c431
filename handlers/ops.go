package handlers

import (
	"context"
	_ "embed"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

//go:embed openapi.yaml
var openAPIDoc []byte

// OpenAPIDocument returns the OpenAPI 3 document served at /api/docs.
func OpenAPIDocument() []byte { return openAPIDoc }

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only while the database answers, so a load balancer stops sending
// traffic to a replica that lost it.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "database unavailable", "error": err.Error()})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) apiDocs(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", openAPIDoc)
}

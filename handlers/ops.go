package handlers

import (
	"context"
	_ "embed"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/templates"
)

//go:embed openapi.yaml
var openAPIDoc []byte

// OpenAPIDocument returns the OpenAPI 3 document served at /api/docs and /api/docs/openapi.yaml.
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

// apiDocs serves /api/docs: to a browser (Accept names text/html) the readable page, Swagger UI
// on the document; to anything else the OpenAPI document itself, as the contract has it.
func (s *Server) apiDocs(c echo.Context) error {
	if strings.Contains(c.Request().Header.Get("Accept"), "text/html") {
		return apiDocsServe(c, "index.html")
	}
	return s.apiDocsYAML(c)
}

// apiDocsYAML serves the OpenAPI document at its own stable URL, /api/docs/openapi.yaml.
func (s *Server) apiDocsYAML(c echo.Context) error {
	c.Response().Header().Set("Access-Control-Allow-Origin", "*") // a public document; tools elsewhere may load it
	return c.Blob(http.StatusOK, "application/yaml", openAPIDoc)
}

// apiDocsFile serves the page's script, stylesheets and licences (templates.APIDocs).
func (s *Server) apiDocsFile(c echo.Context) error {
	name := c.Param("file")
	if name == "index.html" || !fs.ValidPath(name) {
		return echo.ErrNotFound
	}
	if _, err := fs.Stat(templates.APIDocs(), name); err != nil {
		return echo.ErrNotFound
	}
	return apiDocsServe(c, name)
}

// apiDocsServe writes a file of the docs page under a policy that lets it run only its own
// script: Swagger UI sets styles from script (hence style-src 'unsafe-inline') and fetches the
// document from this server.
func apiDocsServe(c echo.Context, name string) error {
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	if name != "index.html" {
		h.Set("Cache-Control", "public, max-age=3600")
	}
	http.ServeFileFS(c.Response(), c.Request(), templates.APIDocs(), name)
	return nil
}

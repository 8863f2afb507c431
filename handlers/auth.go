package handlers

import (
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

const principalKey = "principal"

// auth admits callers with a bearer token of one of roles.
func (s *Server) auth(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			token, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
			if !ok || token == "" {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="regulars"`)
				return models.Errorf(models.EUNAUTHORIZED, "send an API token as Authorization: Bearer <token>")
			}
			p, err := s.db.Authenticate(c.Request().Context(), strings.TrimSpace(token))
			if err != nil {
				if models.ErrorCode(err) == models.EUNAUTHORIZED {
					c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="regulars", error="invalid_token"`)
				}
				return err
			}
			if !slices.Contains(roles, p.Role) {
				return models.Errorf(models.EFORBIDDEN, "the %s role may not do this (allowed: %s)", p.Role, strings.Join(roles, ", "))
			}
			c.Set(principalKey, p)
			return next(c)
		}
	}
}

func principal(c echo.Context) *models.Principal {
	p, _ := c.Get(principalKey).(*models.Principal)
	return p
}

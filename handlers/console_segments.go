package handlers

// STUB: being written.

import "github.com/labstack/echo/v4"

func (cn *console) segmentRoutes(g *echo.Group) {}

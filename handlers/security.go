package handlers

import (
	"net"

	"github.com/labstack/echo/v4"
)

// SecurityOptions configure what the server believes about its clients and what it asks of
// browsers.
type SecurityOptions struct {
	// TrustedProxies are the peers whose X-Forwarded-For is believed (REGULARS_TRUSTED_PROXIES).
	// Without any, the peer's address is the client's: anyone else could forge the header to
	// dodge the join and login rate limits or write another address into consent evidence.
	TrustedProxies []*net.IPNet
	// HSTS sends Strict-Transport-Security on every response, for a server reached over https
	// (REGULARS_BASE_URL); browsers then never try plain http, where cookies could be read.
	HSTS bool
}

// hstsValue is a year, for the subdomains too, as browsers' preload lists ask.
const hstsValue = "max-age=31536000; includeSubDomains"

// clientIP is the client's address: the peer's, or with trusted proxies the nearest address in
// X-Forwarded-For that is not one of them. Echo's own defaults trust loopback and private
// networks, where an attacker on the same network could forge the header, so every one is off.
func clientIP(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// strictTransport adds HSTS to every response, errors and unknown paths included; routes.go
// uses it when the server is reached over https.
func strictTransport(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Strict-Transport-Security", hstsValue)
		return next(c)
	}
}

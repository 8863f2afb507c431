package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// healthcheck asks the server on this machine for /healthz, so that a container image without a
// shell or curl can still have a HEALTHCHECK: exit status 0 when it answers 200.
func (env *environment) healthcheck(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("regulars healthcheck: unexpected argument %q", args[0])
	}
	host, port, err := net.SplitHostPort(env.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("healthcheck: REGULARS_HTTP_ADDR %q: %w", env.cfg.HTTPAddr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // listening on every interface: loopback is one of them
	}
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: %s", url, resp.Status)
	}
	return nil
}

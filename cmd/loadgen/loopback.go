package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"syscall"
)

// checkLoopback refuses any target whose host is not, or does not resolve only to, a loopback
// address (127.0.0.0/8 or ::1): this tool generates load and must never aim it at anything but
// the machine it runs on.
func checkLoopback(ctx context.Context, rawURL string, resolver *net.Resolver) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("-url %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("-url %q: scheme must be http or https", rawURL)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("-url %q: no host", rawURL)
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("refusing -url %q: %s is not a loopback address (127.0.0.0/8 or ::1); loadgen only targets this machine", rawURL, ip)
		}
		return nil
	}
	addrs, err := resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("refusing -url %q: cannot resolve %s to a loopback address: %w", rawURL, host, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("refusing -url %q: %s resolves to no address", rawURL, host)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return fmt.Errorf("refusing -url %q: %s resolves to %s, which is not a loopback address (127.0.0.0/8 or ::1); loadgen only targets this machine", rawURL, host, a.IP)
		}
	}
	return nil
}

// loopbackOnly is a net.Dialer Control hook: it refuses, at connect time, any address that is
// not loopback, so that a DNS answer that changes after the check cannot redirect the load.
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing to connect to %s: not a loopback address", address)
	}
	return nil
}

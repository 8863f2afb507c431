package main

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// The first minutes with a new program are mostly its failures: these turn the commonest
// start-up errors into one line that says what to do. pgx reports every connection attempt
// (with sslmode=prefer a TLS one, then a plain one; one per address of "localhost"), each on a
// line of its own, and the first is often "server refused TLS connection", which is not the
// problem; the OS says "bind: address already in use" without the setting that chose the port.

// explainDatabaseError rewrites an error of connecting to the database at REGULARS_DATABASE_URL.
func explainDatabaseError(err error) error {
	var ce *pgconn.ConnectError
	if err == nil || !errors.As(err, &ce) {
		return err
	}
	where := net.JoinHostPort(ce.Config.Host, fmt.Sprint(ce.Config.Port))
	if strings.HasPrefix(ce.Config.Host, "/") {
		where = ce.Config.Host // a Unix socket directory
	}
	var pe *pgconn.PgError
	var ne *net.OpError
	switch {
	case errors.As(err, &pe) && pe.Code == "3D000": // invalid_catalog_name
		return fmt.Errorf("database %q does not exist on the PostgreSQL server at %s: create it with `createdb %s`, or set REGULARS_DATABASE_URL to one that exists",
			ce.Config.Database, where, ce.Config.Database)
	case errors.As(err, &pe) && (pe.Code == "28P01" || pe.Code == "28000"): // bad password, no pg_hba entry
		return fmt.Errorf("PostgreSQL at %s refused user %q: %s (check the user and password in REGULARS_DATABASE_URL)",
			where, ce.Config.User, pe.Message)
	case errors.As(err, &pe):
		return fmt.Errorf("PostgreSQL at %s: %s (SQLSTATE %s)", where, pe.Message, pe.Code)
	case errors.As(err, &ne) && ne.Op == "dial":
		return fmt.Errorf("no PostgreSQL server answers at %s (%s): start it, or set REGULARS_DATABASE_URL to one that runs (unset, regulars starts its own)",
			where, dialReason(ne))
	}
	return fmt.Errorf("connect to the database at %s: %s", where, lastLine(ce))
}

// dialReason is the operating system's reason a connection failed, without the addresses that
// the message already names.
func dialReason(ne *net.OpError) string {
	var se syscall.Errno
	if errors.As(ne.Err, &se) {
		return se.Error()
	}
	return ne.Err.Error()
}

// lastLine is the last attempt's error: the one without TLS when the server refused TLS.
func lastLine(ce *pgconn.ConnectError) string {
	lines := strings.Split(strings.TrimSpace(errors.Unwrap(ce).Error()), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// explainListenError rewrites an error of listening on REGULARS_HTTP_ADDR.
func explainListenError(err error, addr string) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("cannot listen on %s: another program uses the port; stop it, or choose another address with --http-addr or REGULARS_HTTP_ADDR (e.g. --http-addr 127.0.0.1:8081)", addr)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("cannot listen on %s: permission denied (ports below 1024 need privileges); choose another address with --http-addr or REGULARS_HTTP_ADDR (e.g. --http-addr :8080)", addr)
	}
	return err
}

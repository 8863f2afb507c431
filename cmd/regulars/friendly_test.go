package main

import (
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/regulars/regulars/models/dbtest"
)

// TestFriendlyStartFailures runs the commands against a database that is not there, a server
// that is not there and a port that is taken, and wants one line that says what to do.
func TestFriendlyStartFailures(t *testing.T) {
	t.Parallel()
	oneLine := func(t *testing.T, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatal("no error")
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("the error has more than one line:\n%s", msg)
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("the error %q does not say %q", msg, w)
			}
		}
	}
	t.Run("a missing database says how to create it, and nothing about TLS", func(t *testing.T) {
		t.Parallel()
		u, err := url.Parse(dbtest.AdminURL(t))
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/regulars_not_created"
		_, err = runCmd(t, u.String(), "migrate")
		oneLine(t, err, `database "regulars_not_created" does not exist`, "create it with `createdb regulars_not_created`")
		if err != nil && strings.Contains(err.Error(), "TLS") {
			t.Errorf("the error mentions TLS: %v", err)
		}
	})
	t.Run("no server at the URL is one line naming the address", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nobody listens there now
		_, err = runCmd(t, "postgres://regulars@"+addr+"/regulars", "migrate")
		oneLine(t, err, "no PostgreSQL server answers at "+addr, "connection refused", "REGULARS_DATABASE_URL")
	})
	t.Run("a port in use names --http-addr and REGULARS_HTTP_ADDR", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, err = runCmd(t, dbtest.URL(t), "serve", "--http-addr", ln.Addr().String())
		oneLine(t, err, "cannot listen on "+ln.Addr().String(), "another program uses the port", "--http-addr", "REGULARS_HTTP_ADDR")
	})
}

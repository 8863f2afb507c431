package handlers

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models/dbtest"
)

// A metrics run started over HTTP may outlast the server's write timeout: allowLongRun lifts it
// for that request, through Echo's response and the observing middleware.
func TestAllowLongRunOutlastsTheWriteTimeout(t *testing.T) {
	s := mustNew(t, testConfig(dbtest.New(t)))
	slow := func(extend bool) echo.HandlerFunc {
		return func(c echo.Context) error {
			if extend {
				s.allowLongRun(c)
			}
			time.Sleep(300 * time.Millisecond) // a run longer than the write timeout below
			return c.String(http.StatusOK, "done")
		}
	}
	s.echo.GET("/test/slow", slow(false))
	s.echo.GET("/test/slow-allowed", slow(true))
	srv := httptest.NewUnstartedServer(s)
	srv.Config.WriteTimeout = 100 * time.Millisecond
	srv.Start()
	defer srv.Close()

	get := func(path string) (string, error) {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return string(b), err
	}
	if body, err := get("/test/slow"); err == nil && body == "done" {
		t.Fatal("a slow answer arrived past the write timeout: the test cannot tell anything")
	}
	if body, err := get("/test/slow-allowed"); err != nil || body != "done" {
		t.Errorf("with allowLongRun: body %q, err %v; want the answer", body, err)
	}
}

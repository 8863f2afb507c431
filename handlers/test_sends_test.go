package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/models"
)

// someAddresses is n distinct addresses at shop.example, named after prefix.
func someAddresses(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d@shop.example", prefix, i+1)
	}
	return out
}

// A test send goes to any address a marketer types, signed with our DKIM key: at most 10
// addresses a call and 50 an hour per API key (or console user), counted in PostgreSQL so that
// replicas share the count.
func TestTestSendsAreLimited(t *testing.T) {
	ca := newCampaignAPI(t)
	res := ca.do(t, "POST", "/api/v1/campaigns", ca.marketer, ca.campaign(ca.segmentID))
	if res.Status != http.StatusCreated {
		t.Fatalf("create campaign: %d %s", res.Status, res.Body)
	}
	path := "/api/v1/campaigns/" + res.JSON(t)["id"].(interface{ String() string }).String() + "/test"
	send := func(a *api, token string, addresses []string) *response {
		t.Helper()
		return a.do(t, "POST", path, token, map[string]any{"addresses": addresses})
	}

	t.Run("eleven addresses in one call are refused naming the field", func(t *testing.T) {
		res := ca.do(t, "POST", path, ca.marketer, map[string]any{"addresses": someAddresses("eleven", 11)})
		if code, fields := res.ErrorFields(t); res.Status != http.StatusUnprocessableEntity || code != "invalid" || fields["addresses"] == "" {
			t.Fatalf("%d %s, want 422 naming addresses", res.Status, res.Body)
		}
	})
	t.Run("a refused call uses none of the allowance", func(t *testing.T) {
		bad := append(someAddresses("bad", 9), "not-an-address")
		if res := send(ca.api, ca.marketer, bad); res.Status != http.StatusUnprocessableEntity {
			t.Fatalf("%d %s, want 422", res.Status, res.Body)
		}
		if n := ca.smtp.Count(); n != 0 {
			t.Fatalf("%d mails sent by refused calls", n)
		}
	})

	t.Run("fifty addresses an hour, then 429 with Retry-After", func(t *testing.T) {
		for i := range 5 {
			if res := send(ca.api, ca.marketer, someAddresses("round"+strconv.Itoa(i), 10)); res.Status != http.StatusAccepted {
				t.Fatalf("call %d: %d %s, want 202", i+1, res.Status, res.Body)
			}
		}
		res := send(ca.api, ca.marketer, someAddresses("one-more", 1))
		if code, _ := res.ErrorFields(t); res.Status != http.StatusTooManyRequests || code != models.ERATELIMITED {
			t.Fatalf("the 51st address: %d %s, want 429 rate_limited", res.Status, res.Body)
		}
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || s < 3500 || s > 3600 {
			t.Errorf("Retry-After %q, want about an hour", res.Header.Get("Retry-After"))
		}
		if n := ca.smtp.Count(); n != 50 {
			t.Errorf("%d mails sent, want 50", n)
		}
	})

	t.Run("another replica counts the same allowance", func(t *testing.T) {
		other := newTestServer(t, ca.db, withCampaignMail(t, smtptest.New(t).URL(), "https://club.example", "Vinyl shop <news@shop.example>"))
		replica := &api{srv: other, ts: other.Server, db: ca.db}
		if res := send(replica, ca.marketer, someAddresses("replica", 1)); res.Status != http.StatusTooManyRequests {
			t.Errorf("the other replica: %d %s, want 429", res.Status, res.Body)
		}
	})

	t.Run("another API key has an allowance of its own", func(t *testing.T) {
		token, err := ca.db.CreateAPIKey(context.Background(), models.RoleMarketer, "", "second marketer")
		if err != nil {
			t.Fatal(err)
		}
		if res := send(ca.api, token, someAddresses("second", 10)); res.Status != http.StatusAccepted {
			t.Errorf("%d %s, want 202", res.Status, res.Body)
		}
	})

	t.Run("an hour later the allowance is back", func(t *testing.T) {
		ca.db.Now = func() time.Time { return time.Now().Add(61 * time.Minute) }
		t.Cleanup(func() { ca.db.Now = time.Now })
		if res := send(ca.api, ca.marketer, someAddresses("later", 10)); res.Status != http.StatusAccepted {
			t.Errorf("%d %s, want 202", res.Status, res.Body)
		}
	})
}

// The console's test send has the same limits, per console user, shown next to the field.
func TestConsoleTestSendsAreLimited(t *testing.T) {
	e := newCampaignConsole(t)
	id := e.create(t, e.campaignForm())
	smtp := smtptest.New(t)
	e.Server.reconfigure(t, withCampaignMail(t, smtp.URL(), "https://club.example", "Vinyl shop <news@shop.example>"))
	send := func(addresses []string) *consoleResponse {
		t.Helper()
		return e.postForm(t, e.client, e.path(id, "/test"), e.csrf, url.Values{"addresses": {strings.Join(addresses, ", ")}})
	}

	if res := send(someAddresses("eleven", 11)); res.Status != http.StatusUnprocessableEntity ||
		!strings.Contains(campFieldError(res.Body, "e-t-addresses"), "1 to 10 addresses") {
		t.Fatalf("eleven addresses: %d, error %q", res.Status, campFieldError(res.Body, "e-t-addresses"))
	}
	for i := range 5 {
		if res := send(someAddresses("round"+strconv.Itoa(i), 10)); res.Status != http.StatusSeeOther {
			t.Fatalf("call %d: %d %q", i+1, res.Status, campFieldError(res.Body, "e-t-addresses"))
		}
	}
	res := send(someAddresses("one-more", 1))
	if res.Status != http.StatusTooManyRequests || !strings.Contains(campFieldError(res.Body, "e-t-addresses"), "at most 50 test-send addresses an hour") {
		t.Fatalf("the 51st address: %d, error %q", res.Status, campFieldError(res.Body, "e-t-addresses"))
	}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || s < 3500 || s > 3600 {
		t.Errorf("Retry-After %q, want about an hour", res.Header.Get("Retry-After"))
	}
	if n := smtp.Count(); n != 50 {
		t.Errorf("%d mails sent, want 50", n)
	}
}

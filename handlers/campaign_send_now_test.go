package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/dispatch"
)

func TestCampaignSendNow(t *testing.T) {
	ca := newCampaignAPI(t)
	create := func(t *testing.T, segment *int64) string {
		t.Helper()
		body := ca.campaign(ca.segmentID)
		if segment == nil {
			delete(body, "segment_id")
		}
		res := ca.do(t, "POST", "/api/v1/campaigns", ca.marketer, body)
		if res.Status != 201 {
			t.Fatalf("create campaign: %d %s", res.Status, res.Body)
		}
		return "/api/v1/campaigns/" + res.JSON(t)["id"].(json.Number).String()
	}
	base := create(t, &ca.segmentID)

	t.Run("a register may not send a campaign", func(t *testing.T) {
		wantError(t, ca.do(t, "POST", base+"/send", ca.oslo, nil), 403, "")
	})
	t.Run("a marketer sends a draft now", func(t *testing.T) {
		before := time.Now().Add(-time.Second)
		res := ca.do(t, "POST", base+"/send", ca.marketer, nil)
		if res.Status != 200 {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		c := res.JSON(t)
		at, err := time.Parse(time.RFC3339Nano, c["send_at"].(string))
		if c["status"] != "scheduled" || err != nil || at.Before(before) || at.After(time.Now()) {
			t.Errorf("campaign %v, want scheduled with send_at now", c)
		}
		// The dispatcher's next tick makes its run (cmd/regulars tests the mail that follows).
		if err := (&dispatch.Dispatcher{DB: ca.db}).Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := ca.count(t, `SELECT count(*) FROM campaign_runs`); n != 1 {
			t.Errorf("%d runs after the dispatcher's tick, want 1", n)
		}
	})
	t.Run("a campaign already sent now cannot be sent again", func(t *testing.T) {
		res := ca.do(t, "POST", base+"/send", ca.marketer, nil)
		wantError(t, res, 409, "")
		if !strings.Contains(string(res.Body), "is scheduled") {
			t.Errorf("the 409 does not say why: %s", res.Body)
		}
	})
	t.Run("a sent campaign is 409", func(t *testing.T) {
		if _, err := ca.db.Pool.Exec(context.Background(), `UPDATE campaigns SET status = 'sent' WHERE id = $1`,
			strings.TrimPrefix(base, "/api/v1/campaigns/")); err != nil {
			t.Fatal(err)
		}
		wantError(t, ca.do(t, "POST", base+"/send", ca.admin, nil), 409, "")
	})
	t.Run("a cancelled campaign is 409", func(t *testing.T) {
		other := create(t, &ca.segmentID)
		if res := ca.do(t, "POST", other+"/cancel", ca.marketer, nil); res.Status != 200 {
			t.Fatalf("cancel: %d", res.Status)
		}
		wantError(t, ca.do(t, "POST", other+"/send", ca.admin, nil), 409, "")
	})
	t.Run("an admin may send, and a campaign without a segment is 422", func(t *testing.T) {
		other := create(t, nil)
		wantError(t, ca.do(t, "POST", other+"/send", ca.admin, nil), 422, "segment_id")
		if _, err := ca.db.Pool.Exec(context.Background(), `UPDATE campaigns SET segment_id = $2 WHERE id = $1`,
			strings.TrimPrefix(other, "/api/v1/campaigns/"), ca.segmentID); err != nil {
			t.Fatal(err)
		}
		if res := ca.do(t, "POST", other+"/send", ca.admin, nil); res.Status != 200 {
			t.Errorf("admin: %d %s", res.Status, res.Body)
		}
	})
	t.Run("an unknown campaign is 404", func(t *testing.T) {
		wantError(t, ca.do(t, "POST", "/api/v1/campaigns/999999/send", ca.marketer, nil), 404, "")
	})
}

// TestConsoleSendNow: the Send now button asks first, showing the audience, so a stray click
// mails nobody; only the confirming second post (with the CSRF token) sends.
func TestConsoleSendNow(t *testing.T) {
	e := newCampaignConsole(t)
	id := e.create(t, e.campaignForm())

	t.Run("the editor offers Send now beside the schedule forms", func(t *testing.T) {
		page := e.get(t, e.client, e.path(id, ""))
		if !strings.Contains(page.Body, `action="/console/campaigns/`+strings.TrimPrefix(e.path(id, "/send"), "/console/campaigns/")+`"`) ||
			!strings.Contains(page.Body, `id="s-now"`) {
			t.Errorf("no Send now button\n%s", page.Body)
		}
	})
	t.Run("a post without the CSRF token is refused", func(t *testing.T) {
		res := e.postForm(t, e.client, e.path(id, "/send"), "", url.Values{"confirm": {"send"}})
		if res.Status != http.StatusForbidden {
			t.Errorf("without CSRF: %d", res.Status)
		}
		if got := e.status(t, id); got != "draft" {
			t.Errorf("status %s after a refused post", got)
		}
	})
	t.Run("the first click shows the audience and sends nothing", func(t *testing.T) {
		res := e.postForm(t, e.client, e.path(id, "/send"), e.csrf, url.Values{})
		if res.Status != http.StatusOK {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
		for _, want := range []string{"now to up to 3 members of Everyone?", `name="confirm" value="send"`, "Yes, send to 3 members now"} {
			if !strings.Contains(res.Body, want) {
				t.Errorf("the confirmation lacks %q\n%s", want, res.Body)
			}
		}
		if got := e.status(t, id); got != "draft" {
			t.Errorf("status %s after the first click, want draft", got)
		}
	})
	t.Run("the confirming click sends it now", func(t *testing.T) {
		res := e.postForm(t, e.client, e.path(id, "/send"), e.csrf, url.Values{"confirm": {"send"}})
		if res.Status != http.StatusSeeOther || !strings.HasSuffix(res.Header.Get("Location"), "done=sending") {
			t.Fatalf("%d %s\n%s", res.Status, res.Header.Get("Location"), res.Body)
		}
		if got := e.status(t, id); got != "scheduled" {
			t.Errorf("status %s, want scheduled for now", got)
		}
		page := e.get(t, e.client, e.path(id, "?done=sending"))
		if !strings.Contains(page.Body, "Campaign sending now") || strings.Contains(page.Body, `id="s-now"`) {
			t.Errorf("the page after sending\n%s", page.Body)
		}
	})
	t.Run("a campaign already sending cannot be sent again and the page says why", func(t *testing.T) {
		res := e.postForm(t, e.client, e.path(id, "/send"), e.csrf, url.Values{"confirm": {"send"}})
		if res.Status != http.StatusConflict || !strings.Contains(res.Body, "Not sent: the campaign is scheduled") {
			t.Errorf("%d\n%s", res.Status, res.Body)
		}
	})
}

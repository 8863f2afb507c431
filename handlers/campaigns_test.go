package handlers

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/regulars/regulars/campaigns/mailer/smtptest"
)

// campaignAPI is a till with campaign options wired to an SMTP test server, one member and one
// segment.
type campaignAPI struct {
	*till
	smtp      *smtptest.Server
	memberID  int64
	segmentID int64
}

func newCampaignAPI(t *testing.T) *campaignAPI {
	t.Helper()
	tl := newTill(t)
	srv := smtptest.New(t)
	tl.srv.reconfigure(t, withCampaignMail(t, srv.URL(), "https://club.example", "Vinyl shop <news@shop.example>"))
	res := tl.do(t, "POST", "/api/v1/members", tl.oslo, map[string]any{"card": goodCard, "name": "Kari Nordmann",
		"email": "kari@example.com", "marketing_consent": false})
	if res.Status != 201 {
		t.Fatalf("create member: %d %s", res.Status, res.Body)
	}
	ca := &campaignAPI{till: tl, smtp: srv}
	id, _ := res.JSON(t)["id"].(json.Number).Int64()
	ca.memberID = id
	if err := tl.db.Pool.QueryRow(context.Background(),
		`INSERT INTO segments (name, rules) VALUES ('Everyone', '{"all": []}') RETURNING id`).Scan(&ca.segmentID); err != nil {
		t.Fatal(err)
	}
	return ca
}

func (ca *campaignAPI) campaign(segmentID int64) map[string]any {
	return map[string]any{"name": "November vinyl", "subject": "Hi {{.Member.FirstName}}, new records are in",
		"html": "<p>New records are in.</p>\n<p>{{.Barcode}}</p>", "text": "New records are in. Card {{.Barcode}}",
		"segment_id": segmentID, "holdout_percent": 10}
}

func TestCampaigns(t *testing.T) {
	ca := newCampaignAPI(t)
	var id string
	t.Run("a marketer creates a draft campaign", func(t *testing.T) {
		res := ca.do(t, "POST", "/api/v1/campaigns", ca.marketer, ca.campaign(ca.segmentID))
		if res.Status != 201 {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		c := res.JSON(t)
		if c["status"] != "draft" || c["subject"] != "Hi {{.Member.FirstName}}, new records are in" {
			t.Errorf("created %v", c)
		}
		id = c["id"].(json.Number).String()
	})
	if id == "" {
		t.FailNow()
	}
	cases := []struct {
		name   string
		token  string
		body   map[string]any
		status int
		field  string
		want   string // in the field's message
	}{
		{"a register may not create campaigns", ca.oslo, ca.campaign(ca.segmentID), 403, "", ""},
		{"an unclosed action is refused with its field and line", ca.marketer,
			with(ca.campaign(ca.segmentID), "html", "<p>New</p>\n<p>\n{{.Member.Name</p>"), 422, "html", "line 3"},
		{"an unknown field in the subject is refused", ca.marketer,
			with(ca.campaign(ca.segmentID), "subject", "Hi {{.Member.Password}}"), 422, "subject", "line 1"},
		{"an unknown function is refused", ca.marketer,
			with(ca.campaign(ca.segmentID), "text", "{{printf \"%s\" .Member.Name | exec}}"), 422, "text", "not defined"},
		{"a segment that does not exist is refused", ca.marketer, ca.campaign(ca.segmentID + 100), 422, "segment_id", ""},
		{"a holdout over 50 percent is refused", ca.marketer, with(ca.campaign(ca.segmentID), "holdout_percent", 60), 422, "holdout_percent", ""},
		{"a campaign without a name is refused", ca.marketer, without(ca.campaign(ca.segmentID), "name"), 422, "name", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := ca.do(t, "POST", "/api/v1/campaigns", tc.token, tc.body)
			wantError(t, res, tc.status, tc.field)
			if tc.want != "" {
				if _, fields := res.ErrorFields(t); !strings.Contains(fields[tc.field], tc.want) {
					t.Errorf("fields[%s] = %q, want it to contain %q", tc.field, fields[tc.field], tc.want)
				}
			}
		})
	}
	t.Run("the campaign is listed and read back", func(t *testing.T) {
		res := ca.do(t, "GET", "/api/v1/campaigns", ca.marketer, nil)
		if res.Status != 200 || !strings.Contains(string(res.Body), `"name":"November vinyl"`) {
			t.Errorf("list: %d %s", res.Status, res.Body)
		}
		if res := ca.do(t, "GET", "/api/v1/campaigns/"+id, ca.admin, nil); res.Status != 200 {
			t.Errorf("get: %d %s", res.Status, res.Body)
		}
		wantError(t, ca.do(t, "GET", "/api/v1/campaigns/999999", ca.marketer, nil), 404, "")
	})
	t.Run("a preview for a real member shows their first name and the unsubscribe link", func(t *testing.T) {
		res := ca.do(t, "POST", "/api/v1/campaigns/"+id+"/preview", ca.marketer, map[string]any{"member_id": ca.memberID})
		if res.Status != 200 {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		p := res.JSON(t)
		if p["subject"] != "Hi Kari, new records are in" {
			t.Errorf("subject %v", p["subject"])
		}
		for _, part := range []string{"html", "text"} {
			if !strings.Contains(p[part].(string), "https://club.example/unsubscribe?token=") {
				t.Errorf("%s lacks the unsubscribe link: %s", part, p[part])
			}
		}
		if !strings.Contains(p["text"].(string), "Card "+goodCard) {
			t.Errorf("text lacks the member's card: %s", p["text"])
		}
	})
	t.Run("a preview for a member who does not exist is refused", func(t *testing.T) {
		wantError(t, ca.do(t, "POST", "/api/v1/campaigns/"+id+"/preview", ca.marketer, map[string]any{"member_id": ca.memberID + 99}), 422, "member_id")
	})
	t.Run("a test send mails exactly the given addresses with unsubscribe headers", func(t *testing.T) {
		targets := []string{"anne@shop.example", "bo@shop.example"}
		res := ca.do(t, "POST", "/api/v1/campaigns/"+id+"/test", ca.marketer, map[string]any{"addresses": targets, "member_id": ca.memberID})
		if res.Status != 202 || strings.TrimSpace(string(res.Body)) != `{"sent":2}` {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		msgs := ca.smtp.Messages()
		if len(msgs) != len(targets) {
			t.Fatalf("%d messages, want %d", len(msgs), len(targets))
		}
		for i, m := range msgs {
			if len(m.To) != 1 || m.To[0] != targets[i] {
				t.Errorf("message %d went to %v, want only %s", i, m.To, targets[i])
			}
			if got := m.Header.Get("Subject"); got != "[TEST] Hi Kari, new records are in" {
				t.Errorf("subject %q", got)
			}
			if lu := m.Header.Get("List-Unsubscribe"); !strings.Contains(lu, "<https://club.example/unsubscribe?token=") ||
				!strings.Contains(lu, "<mailto:news@shop.example?subject=unsubscribe>") {
				t.Errorf("List-Unsubscribe = %q", lu)
			}
			if got := m.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
				t.Errorf("List-Unsubscribe-Post = %q", got)
			}
		}
	})
	t.Run("a test send to a bad address is refused naming it", func(t *testing.T) {
		before := len(ca.smtp.Messages())
		wantError(t, ca.do(t, "POST", "/api/v1/campaigns/"+id+"/test", ca.marketer,
			map[string]any{"addresses": []string{"ok@shop.example", "not an address"}}), 422, "addresses.1")
		if n := len(ca.smtp.Messages()); n != before {
			t.Errorf("%d mails sent for a refused request", n-before)
		}
	})
	t.Run("a draft is changed", func(t *testing.T) {
		res := ca.do(t, "PATCH", "/api/v1/campaigns/"+id, ca.marketer, map[string]any{"holdout_percent": 0})
		if res.Status != 200 || res.JSON(t)["holdout_percent"].(json.Number).String() != "0" {
			t.Errorf("%d %s", res.Status, res.Body)
		}
	})
	t.Run("a sent campaign's content cannot change", func(t *testing.T) {
		n, _ := strconv.ParseInt(id, 10, 64)
		if _, err := ca.db.Pool.Exec(context.Background(), `UPDATE campaigns SET status = 'sent' WHERE id = $1`, n); err != nil {
			t.Fatal(err)
		}
		wantError(t, ca.do(t, "PATCH", "/api/v1/campaigns/"+id, ca.marketer, map[string]any{"subject": "Changed"}), 409, "")
	})
}

package handlers

import (
	"encoding/json"
	"testing"
	"time"
)

func TestCampaignSchedule(t *testing.T) {
	ca := newCampaignAPI(t)
	res := ca.do(t, "POST", "/api/v1/campaigns", ca.marketer, ca.campaign(ca.segmentID))
	if res.Status != 201 {
		t.Fatalf("create campaign: %d %s", res.Status, res.Body)
	}
	base := "/api/v1/campaigns/" + res.JSON(t)["id"].(json.Number).String()
	sendAt := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)

	invalid := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"send_at that is not RFC 3339", map[string]any{"send_at": "tomorrow at nine"}, "send_at"},
		{"send_at in the past", map[string]any{"send_at": "2020-01-01T09:00:00Z"}, "send_at"},
		{"a bad cron", map[string]any{"cron": "every monday", "timezone": "Europe/Oslo"}, "cron"},
		{"an unknown time zone", map[string]any{"cron": "0 9 * * 1", "timezone": "Mars/Olympus"}, "timezone"},
		{"neither", map[string]any{}, "send_at"},
	}
	for _, tc := range invalid {
		t.Run(tc.name+" is 422", func(t *testing.T) {
			res := ca.do(t, "POST", base+"/schedule", ca.marketer, tc.body)
			if code, fields := res.ErrorFields(t); res.Status != 422 || code != "invalid" || fields[tc.field] == "" {
				t.Errorf("%d %s, want 422 naming %s", res.Status, res.Body, tc.field)
			}
		})
	}

	steps := []struct {
		name   string
		token  string
		path   string
		body   any
		status int
		want   string // the campaign's status
	}{
		{"a register may not schedule", ca.oslo, "/schedule", map[string]any{"send_at": sendAt}, 403, ""},
		{"a draft cannot be paused", ca.marketer, "/pause", nil, 409, ""},
		{"a marketer schedules a one-off send", ca.marketer, "/schedule", map[string]any{"send_at": sendAt}, 200, "scheduled"},
		{"a scheduled campaign cannot be scheduled again", ca.marketer, "/schedule", map[string]any{"send_at": sendAt}, 409, ""},
		{"a scheduled campaign cannot be resumed", ca.marketer, "/resume", nil, 409, ""},
		{"an admin pauses it", ca.admin, "/pause", nil, 200, "paused"},
		{"paused before it started, it is scheduled anew on a cron", ca.marketer, "/schedule",
			map[string]any{"cron": "0 9 * * 1", "timezone": "Europe/Oslo"}, 200, "scheduled"},
		{"paused again", ca.marketer, "/pause", nil, 200, "paused"},
		{"resumed", ca.marketer, "/resume", nil, 200, "scheduled"},
		{"cancelled", ca.marketer, "/cancel", nil, 200, "cancelled"},
		{"a cancelled campaign cannot be cancelled again", ca.marketer, "/cancel", nil, 409, ""},
		{"nor scheduled", ca.marketer, "/schedule", map[string]any{"send_at": sendAt}, 409, ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			res := ca.do(t, "POST", base+st.path, st.token, st.body)
			if res.Status != st.status {
				t.Fatalf("%d %s, want %d", res.Status, res.Body, st.status)
			}
			if st.want != "" {
				if got := res.JSON(t)["status"]; got != st.want {
					t.Errorf("campaign is %v, want %s", got, st.want)
				}
			}
		})
	}
	t.Run("the cron and time zone are on the campaign", func(t *testing.T) {
		c := ca.do(t, "GET", base, ca.marketer, nil).JSON(t)
		if c["cron"] != "0 9 * * 1" || c["timezone"] != "Europe/Oslo" || c["send_at"] != nil {
			t.Errorf("campaign %v", c)
		}
	})
	t.Run("an unknown campaign is 404", func(t *testing.T) {
		if res := ca.do(t, "POST", "/api/v1/campaigns/999999/pause", ca.marketer, nil); res.Status != 404 {
			t.Errorf("%d %s", res.Status, res.Body)
		}
	})
}

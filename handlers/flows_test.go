package handlers

import (
	"encoding/json"
	"testing"
	"time"
)

func winBack() map[string]any {
	return map[string]any{
		"name":    "Win back",
		"trigger": map[string]any{"event": "lapsed", "days": 60},
		"steps": []any{
			map[string]any{"mail": map[string]any{"subject": "We miss you, {{.Member.FirstName}}", "text": "Come by."}},
			map[string]any{"wait": "168h"},
			map[string]any{"if": map[string]any{"all": []any{map[string]any{"field": "p_alive", "op": "lt", "value": 0.5}}},
				"then": []any{map[string]any{"mail": map[string]any{"subject": "A coffee on us", "text": "Card {{.Barcode}}"}}}},
		},
		"reentry_days": 180, "holdout_percent": 10,
	}
}

// TestFlowsAPI walks a flow through its routes as a marketer would, and checks the refusals.
func TestFlowsAPI(t *testing.T) {
	tl := newTill(t)
	var id string
	t.Run("a marketer creates a draft flow", func(t *testing.T) {
		res := tl.do(t, "POST", "/api/v1/flows", tl.marketer, winBack())
		if res.Status != 201 {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		f := res.JSON(t)
		if f["status"] != "draft" || f["exit_on_purchase"] != true || f["reentry_days"] != json.Number("180") {
			t.Errorf("created %v", f)
		}
		id = f["id"].(json.Number).String()
	})
	t.Run("a till may not", func(t *testing.T) {
		if res := tl.do(t, "POST", "/api/v1/flows", tl.oslo, winBack()); res.Status != 403 {
			t.Errorf("register: %d", res.Status)
		}
		if res := tl.do(t, "GET", "/api/v1/flows", tl.oslo, nil); res.Status != 403 {
			t.Errorf("register list: %d", res.Status)
		}
	})
	t.Run("bad flows are 422 naming the field", func(t *testing.T) {
		for field, body := range map[string]map[string]any{
			"steps.1.wait": func() map[string]any {
				b := winBack()
				b["steps"].([]any)[1] = map[string]any{"wait": "10s"}
				return b
			}(),
			"steps.2.if.all.0.field": func() map[string]any {
				b := winBack()
				b["steps"].([]any)[2].(map[string]any)["if"] = map[string]any{"all": []any{map[string]any{"field": "shoe_size", "op": "eq", "value": 1}}}
				return b
			}(),
			"steps.0.mail.subject": func() map[string]any {
				b := winBack()
				b["steps"].([]any)[0] = map[string]any{"mail": map[string]any{"subject": "{{.Member.Shoe}}", "text": "x"}}
				return b
			}(),
			"steps.0.voucher": func() map[string]any {
				b := winBack()
				b["steps"].([]any)[0] = map[string]any{"voucher": "coffee", "expires_in": "720h"}
				return b
			}(),
			"trigger.days": func() map[string]any {
				b := winBack()
				b["trigger"] = map[string]any{"event": "lapsed"}
				return b
			}(),
			"segment_id": func() map[string]any {
				b := winBack()
				b["segment_id"] = 999
				return b
			}(),
		} {
			res := tl.do(t, "POST", "/api/v1/flows", tl.marketer, body)
			if res.Status != 422 {
				t.Errorf("%s: %d %s", field, res.Status, res.Body)
				continue
			}
			fields, _ := res.JSON(t)["error"].(map[string]any)["fields"].(map[string]any)
			if _, ok := fields[field]; !ok {
				t.Errorf("%s: fields %v", field, fields)
			}
		}
		if n := tl.count(t, `SELECT count(*) FROM flows`); n != 1 {
			t.Errorf("%d flows stored, want only the good one", n)
		}
	})
	t.Run("activate, pause, activate again", func(t *testing.T) {
		if res := tl.do(t, "POST", "/api/v1/flows/"+id+"/pause", tl.marketer, nil); res.Status != 409 {
			t.Errorf("pause a draft: %d", res.Status)
		}
		for _, step := range []struct{ route, want string }{{"activate", "active"}, {"activate", "active"}, {"pause", "paused"}, {"activate", "active"}} {
			res := tl.do(t, "POST", "/api/v1/flows/"+id+"/"+step.route, tl.marketer, nil)
			if res.Status != 200 || res.JSON(t)["status"] != step.want {
				t.Errorf("%s: %d %s", step.route, res.Status, res.Body)
			}
		}
	})
	t.Run("the trigger of an active flow waits for a pause; texts may change", func(t *testing.T) {
		res := tl.do(t, "PATCH", "/api/v1/flows/"+id, tl.marketer, map[string]any{"trigger": map[string]any{"event": "lapsed", "days": 90}})
		if res.Status != 409 {
			t.Errorf("trigger of an active flow: %d %s", res.Status, res.Body)
		}
		b := winBack()
		b["steps"].([]any)[0] = map[string]any{"mail": map[string]any{"subject": "We miss you!", "text": "Come by soon."}}
		res = tl.do(t, "PATCH", "/api/v1/flows/"+id, tl.marketer, map[string]any{"steps": b["steps"], "name": "Win back (60 days)"})
		if res.Status != 200 || res.JSON(t)["name"] != "Win back (60 days)" {
			t.Errorf("edit texts: %d %s", res.Status, res.Body)
		}
		if res := tl.do(t, "GET", "/api/v1/flows/"+id, tl.marketer, nil); res.Status != 200 {
			t.Errorf("get: %d", res.Status)
		}
	})
	t.Run("its mail steps are not campaigns", func(t *testing.T) {
		res := tl.do(t, "GET", "/api/v1/campaigns", tl.marketer, nil)
		if list := res.JSON(t)["campaigns"].([]any); len(list) != 0 {
			t.Errorf("campaign list shows %d flow steps", len(list))
		}
		var stepID string
		if err := tl.db.Pool.QueryRow(t.Context(), `SELECT id::text FROM campaigns WHERE flow_id IS NOT NULL LIMIT 1`).Scan(&stepID); err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct{ method, path string }{{"GET", ""}, {"PATCH", ""}, {"POST", "/schedule"}, {"POST", "/pause"}} {
			body := map[string]any{"name": "x"}
			if r.path == "/schedule" {
				body = map[string]any{"send_at": time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)}
			}
			if res := tl.do(t, r.method, "/api/v1/campaigns/"+stepID+r.path, tl.marketer, body); res.Status != 404 {
				t.Errorf("%s campaign %s%s: %d %s", r.method, stepID, r.path, res.Status, res.Body)
			}
		}
	})
	t.Run("stats", func(t *testing.T) {
		res := tl.do(t, "GET", "/api/v1/flows/"+id+"/stats", tl.marketer, nil)
		if res.Status != 200 {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		st := res.JSON(t)
		if st["preliminary"] != true || st["final_at"] != nil || len(st["steps"].([]any)) != 2 {
			t.Errorf("stats of an empty flow: %v", st)
		}
	})
	t.Run("unknown flows are 404", func(t *testing.T) {
		for _, p := range []string{"/api/v1/flows/999", "/api/v1/flows/abc", "/api/v1/flows/999/stats"} {
			if res := tl.do(t, "GET", p, tl.marketer, nil); res.Status != 404 {
				t.Errorf("%s: %d", p, res.Status)
			}
		}
	})
}

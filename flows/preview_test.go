package flows

import (
	"context"
	"strings"
	"testing"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/models"
)

func TestPreviewRendersAMailStepForAMember(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	member, _ := e.member(t, "confirmed")
	if _, err := e.db.Pool.Exec(ctx, `UPDATE members SET name = 'Ola Hansen' WHERE id = $1`, member); err != nil {
		t.Fatal(err)
	}
	// Step 0 is a wait, 1 an if, 2 the mail in its then branch, 3 the mail after the if.
	f := e.flow(t, `{"name": "Win back", "trigger": {"event": "lapsed", "days": 60}, "steps": [
		{"wait": "1h"},
		{"if": {"field": "email_domain", "op": "eq", "value": "example.com"},
		 "then": [{"mail": {"subject": "Inside, {{.Member.FirstName}}", "html": "<p>Hi {{.Member.FirstName}}</p>", "text": "Hi"}}]},
		{"mail": {"subject": "After, {{.Member.FirstName}}", "html": "<p>{{.Member.Card}}</p>", "text": "Bye"}}]}`)
	cfg := campaigns.Config{BaseURL: "https://club.example", DefaultFrom: testFrom}

	tests := []struct {
		name        string
		step        int
		member      int64
		wantSubject string
	}{
		{"a mail inside a branch is rendered for the chosen member", 2, member, "Inside, Ola"},
		{"the mail after the if is its own step", 3, member, "After, Ola"},
		{"member 0 is the made-up sample member", 3, 0, "After, Kari"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Preview(ctx, e.db, cfg, f.ID, tc.step, tc.member)
			if err != nil {
				t.Fatal(err)
			}
			if out.Subject != tc.wantSubject {
				t.Errorf("subject %q, want %q", out.Subject, tc.wantSubject)
			}
			if !strings.Contains(out.HTML, "https://club.example") {
				t.Errorf("the footer's placeholder links are missing: %s", out.HTML)
			}
		})
	}

	refusals := []struct {
		name  string
		flow  int64
		step  int
		code  string
		field string
	}{
		{"a step that is not a mail is refused on step", f.ID, 0, models.EINVALID, "step"},
		{"an unknown member is refused on member_id", f.ID, 3, models.EINVALID, "member_id"},
		{"an unknown flow is not found", f.ID + 100, 3, models.ENOTFOUND, ""},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			memberID := int64(0)
			if tc.field == "member_id" {
				memberID = member + 1000
			}
			_, err := Preview(ctx, e.db, cfg, tc.flow, tc.step, memberID)
			if models.ErrorCode(err) != tc.code {
				t.Fatalf("error %v, want %s", err, tc.code)
			}
			if me, ok := err.(*models.Error); tc.field != "" && (!ok || me.Fields[tc.field] == "") {
				t.Errorf("error %v does not name %s", err, tc.field)
			}
		})
	}
}

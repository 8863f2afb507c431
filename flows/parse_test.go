package flows

import (
	"strings"
	"testing"

	"github.com/regulars/regulars/models"
)

// TestBadFlowsNameTheField checks that each kind of mistake is refused with the JSON path of
// the field, as segment rules are.
func TestBadFlowsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name, body, field, why string
	}{
		{"wait too short", `{"steps": [{"wait": "30s"}]}`, "steps.0.wait", "at least 1m"},
		{"wait not a duration", `{"steps": [{"mail": {"subject": "a", "text": "b"}}, {"wait": "a week"}]}`, "steps.1.wait", "duration"},
		{"two kinds in a step", `{"steps": [{"wait": "1h", "mail": {"subject": "a", "text": "b"}}]}`, "steps.0", "exactly one"},
		{"unknown step key", `{"steps": [{"wait": "1h", "then": []}]}`, "steps.0.then", "unknown"},
		{"mail without subject", `{"steps": [{"mail": {"text": "b"}}]}`, "steps.0.mail.subject", "required"},
		{"mail without body", `{"steps": [{"mail": {"subject": "a"}}]}`, "steps.0.mail.html", "required"},
		{"unknown mail key", `{"steps": [{"mail": {"subject": "a", "text": "b", "from": "x"}}]}`, "steps.0.mail", "unknown field"},
		{"bad rule in an if", `{"steps": [{"if": {"field": "shoe_size", "op": "eq", "value": 1}, "then": []}]}`, "steps.0.if.field", "unknown field"},
		{"bad rule deep in a branch", `{"steps": [{"if": {"field": "p_alive", "op": "lt", "value": 0.5},
			"then": [{"if": {"all": [{"field": "p_alive", "op": "lt", "value": "x"}]}}]}]}`, "steps.0.then.0.if.all.0.value", ""},
		{"voucher not a reward code", `{"steps": [{"voucher": "Free coffee!", "expires_in": "720h"}]}`, "steps.0.voucher", "reward code"},
		{"voucher life too short", `{"steps": [{"voucher": "coffee", "expires_in": "10m"}]}`, "steps.0.expires_in", "between 1h"},
		{"expires_in without a voucher", `{"steps": [{"wait": "1h", "expires_in": "720h"}]}`, "steps.0.expires_in", "unknown"},
		{"empty steps", `{"steps": []}`, "steps", "at least one"},
		{"steps not a list", `{"steps": {"wait": "1h"}}`, "steps", "list"},
		{"no event", `{"trigger": {}}`, "trigger.event", "required"},
		{"unknown event", `{"trigger": {"event": "rainy_day"}}`, "trigger.event", "one of"},
		{"lapsed without days", `{"trigger": {"event": "lapsed"}}`, "trigger.days", "required"},
		{"personal without factor", `{"trigger": {"event": "lapsed", "days": 30, "personal": true}}`, "trigger.factor", "required"},
		{"factor without personal", `{"trigger": {"event": "lapsed", "days": 30, "factor": 2}}`, "trigger.factor", "personal"},
		{"p_alive out of range", `{"trigger": {"event": "p_alive_below", "value": 1.5}}`, "trigger.value", "between 0 and 1"},
		{"count on the wrong event", `{"trigger": {"event": "joined", "count": 2}}`, "trigger.count", "does not apply"},
		{"purchase_count without count", `{"trigger": {"event": "purchase_count"}}`, "trigger.count", "required"},
		{"reward_affordable with a bad reward code", `{"trigger": {"event": "reward_affordable", "reward": "Free!"}}`, "trigger.reward", "reward code"},
		{"reentry zero", `{"reentry_days": 0}`, "reentry_days", "between 1"},
		{"holdout too big", `{"holdout_percent": 80}`, "holdout_percent", "between 0 and 50"},
		{"unknown top-level field", `{"audience": 3}`, "audience", "unknown"},
		{"name not a string", `{"name": 3}`, "name", "string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseInput([]byte(tc.body))
			var me *models.Error
			if err == nil || !asError(err, &me) || me.Code != models.EINVALID {
				t.Fatalf("err = %v, want invalid naming %s", err, tc.field)
			}
			why, ok := me.Fields[tc.field]
			if !ok {
				t.Fatalf("fields = %v, want %s", me.Fields, tc.field)
			}
			if !strings.Contains(why, tc.why) {
				t.Errorf("%s: %q, want it to say %q", tc.field, why, tc.why)
			}
		})
	}
}

func asError(err error, target **models.Error) bool {
	e, ok := err.(*models.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestNestingAndSizeAreBounded(t *testing.T) {
	deep := `{"wait": "1h"}`
	for range MaxDepth + 1 {
		deep = `{"if": {"field": "p_alive", "op": "lt", "value": 0.5}, "then": [` + deep + `]}`
	}
	if _, err := ParseInput([]byte(`{"steps": [` + deep + `]}`)); err == nil || !strings.Contains(err.Error(), "nest") {
		t.Errorf("too deep: %v", err)
	}
	many := strings.Repeat(`{"wait": "1h"},`, MaxSteps) + `{"wait": "1h"}`
	if _, err := ParseInput([]byte(`{"steps": [` + many + `]}`)); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("too many: %v", err)
	}
}

// TestProgramJumps checks the flattening: an if's branches come after it, each branch ends by
// going on after the if, and an empty else goes straight on.
func TestProgramJumps(t *testing.T) {
	in, err := ParseInput([]byte(`{"steps": [
		{"mail": {"subject": "a", "text": "a"}},
		{"wait": "168h"},
		{"if": {"field": "p_alive", "op": "lt", "value": 0.5},
		 "then": [{"mail": {"subject": "b", "text": "b"}}, {"wait": "1h"}]},
		{"mail": {"subject": "c", "text": "c"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	prog, err := Compile(in.Steps)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind             string
		next, then, els_ int
		path             string
	}{
		{OpMail, 1, 0, 0, "steps.0"},
		{OpWait, 2, 0, 0, "steps.1"},
		{OpIf, 5, 3, 5, "steps.2"},
		{OpMail, 4, 0, 0, "steps.2.then.0"},
		{OpWait, 5, 0, 0, "steps.2.then.1"},
		{OpMail, 6, 0, 0, "steps.3"},
	}
	if len(prog) != len(want) {
		t.Fatalf("%d instructions, want %d", len(prog), len(want))
	}
	for i, w := range want {
		op := prog[i]
		if op.Kind != w.kind || op.Next != w.next || op.Path != w.path ||
			(op.Kind == OpIf && (op.Then != w.then || op.Else != w.els_)) {
			t.Errorf("instruction %d = %s next %d then %d else %d at %s, want %+v", i, op.Kind, op.Next, op.Then, op.Else, op.Path, w)
		}
	}
	if prog[5].MailNumber != 3 {
		t.Errorf("the last mail is mail %d, want 3", prog[5].MailNumber)
	}
	// Editing texts keeps the shape; adding a step does not.
	edited, _ := ParseInput([]byte(`{"steps": [
		{"mail": {"subject": "A", "text": "A"}}, {"wait": "24h"},
		{"if": {"field": "p_alive", "op": "lt", "value": 0.2},
		 "then": [{"mail": {"subject": "B", "text": "B"}}, {"wait": "2h"}]},
		{"mail": {"subject": "C", "text": "C"}}]}`))
	p2, _ := Compile(edited.Steps)
	if !SameShape(prog, p2) {
		t.Error("texts, waits and a condition edited: not the same shape")
	}
	p3, _ := Compile(append(edited.Steps, Step{Wait: "1h"}))
	if SameShape(prog, p3) {
		t.Error("a step added: still the same shape")
	}
}

package segments

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// mustParse parses a tree the test expects to be valid.
func mustParse(t *testing.T, src string) *Node {
	t.Helper()
	n, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("parse %s: %v", src, err)
	}
	return n
}

var placeholderRE = regexp.MustCompile(`\$(\d+)`)

func TestCompileNumbersPlaceholdersFromTheOffsetAndKeepsValuesOutOfTheSQL(t *testing.T) {
	t.Parallel()
	asOf := time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC)
	tree := mustParse(t, `{"all": [
		{"field": "home_store", "op": "eq", "value": "oslo-1' OR 1=1 --"},
		{"field": "email_domain", "op": "in", "value": ["evil.example'; DROP TABLE members; --", "b.example"]},
		{"any": [{"field": "days_since_last_purchase", "op": "gt", "value": 60},
		         {"field": "spend_365d", "op": "between", "value": [1000, 987654321]},
		         {"field": "orders_365d", "op": "gte", "value": 3}]},
		{"not": {"field": "joined_at", "op": "lte", "value": "2025-12-24"}}]}`)
	for _, offset := range []int{0, 3} {
		t.Run(fmt.Sprintf("with %d arguments before", offset), func(t *testing.T) {
			where, args, err := Compile(tree, asOf, offset)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[int]bool{}
			for _, m := range placeholderRE.FindAllStringSubmatch(where, -1) {
				n, _ := strconv.Atoi(m[1])
				if n <= offset || n > offset+len(args) {
					t.Errorf("placeholder $%d outside $%d..$%d", n, offset+1, offset+len(args))
				}
				seen[n] = true
			}
			for n := offset + 1; n <= offset+len(args); n++ {
				if !seen[n] {
					t.Errorf("argument $%d is never used", n)
				}
			}
			// store, domains, as-of, days, window start, two bounds, orders, day end: as-of and
			// window start are shared by the three figures.
			if len(args) != 9 {
				t.Errorf("got %d arguments, want 9: %v", len(args), args)
			}
			for _, text := range []string{"oslo-1", "DROP", "evil", "b.example", "987654321", "2025", "60"} {
				if strings.Contains(where, text) {
					t.Errorf("SQL contains the value %q:\n%s", text, where)
				}
			}
			if strings.Contains(where, "now()") {
				t.Errorf("SQL reads the clock instead of the as-of argument:\n%s", where)
			}
		})
	}
}

func TestCompileLeavesTheWindowArgumentsOutWhenNoFigureNeedsThem(t *testing.T) {
	t.Parallel()
	where, args, err := Compile(mustParse(t, `{"field": "status", "op": "eq", "value": "active"}`), time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if where != "m.status = $1::text" || len(args) != 1 || args[0] != "active" {
		t.Errorf("got %q %v", where, args)
	}
}

func TestCompileRefusesAZeroAsOfTime(t *testing.T) {
	t.Parallel()
	if _, _, err := Compile(mustParse(t, `{"field": "status", "op": "eq", "value": "active"}`), time.Time{}, 0); err == nil {
		t.Fatal("compiled without an as-of time")
	}
}

func TestInvalidTreesNameTheBadPath(t *testing.T) {
	t.Parallel()
	deep := `{"field": "status", "op": "eq", "value": "active"}`
	for range MaxDepth {
		deep = `{"not": ` + deep + `}`
	}
	manyRules := `{"any": [` + strings.Repeat(`{"field": "orders_365d", "op": "gt", "value": 1},`, MaxRules) +
		`{"field": "orders_365d", "op": "gt", "value": 1}]}`
	// Groups of 100 rules: each list is under the limit, the tree is not.
	hundred := strings.TrimSuffix(strings.Repeat(`{"field": "orders_365d", "op": "gt", "value": 1},`, 100), ",")
	manyInGroups := `{"all": [{"any": [` + hundred + `]}, {"any": [` + hundred + `]}, {"field": "status", "op": "eq", "value": "active"}]}`
	tests := []struct {
		name, tree, path, why string
	}{
		{"a misspelt field deep in the tree", `{"all": [{"field": "home_store", "op": "eq", "value": "oslo-1"},
			{"any": [{"field": "p_alivee", "op": "lt", "value": 0.5}]}]}`, "rules.all.1.any.0.field", `unknown field "p_alivee"`},
		{"a field of a later issue", `{"field": "favourite_colour", "op": "eq", "value": "red"}`, "rules.field", `unknown field "favourite_colour"`},
		{"a birthday month of 13", `{"field": "birthday_month", "op": "eq", "value": 13}`, "rules.value", "must be an integer from 1 to 12"},
		{"a birthday month of 0 in a list", `{"field": "birthday_month", "op": "in", "value": [1, 0]}`, "rules.value",
			"item 1 must be an integer from 1 to 12"},
		{"a birthday month range past December", `{"field": "birthday_month", "op": "between", "value": [11, 14]}`, "rules.value",
			"must be a list [low, high], each an integer from 1 to 12"},
		{"a birthday month as a name", `{"field": "birthday_month", "op": "eq", "value": "May"}`, "rules.value", "must be an integer from 1 to 12"},
		{"starts_with on a tier", `{"field": "tier", "op": "starts_with", "value": "G"}`, "rules.op",
			`operator "starts_with" is not allowed for text field tier`},
		{"a tier that is not a string", `{"field": "tier", "op": "eq", "value": 1}`, "rules.value", "must be a string of 1 to 200 characters"},
		{"eq on a model figure", `{"field": "p_alive", "op": "eq", "value": 0.5}`, "rules.op",
			`operator "eq" is not allowed for number field p_alive`},
		{"a string for a model figure", `{"field": "clv_predicted", "op": "gte", "value": "500"}`, "rules.value", "must be a number"},
		{"a missing field", `{"op": "eq", "value": 1}`, "rules.field", "required"},
		{"a field that is not a string", `{"field": 5, "op": "eq", "value": 1}`, "rules.field", "must be a string"},
		{"an unknown operator", `{"field": "orders_365d", "op": "like", "value": 1}`, "rules.op", `unknown operator "like"`},
		{"contains on an integer", `{"field": "orders_365d", "op": "contains", "value": 1}`, "rules.op",
			`operator "contains" is not allowed for integer field orders_365d`},
		{"is_null on a figure that is never NULL", `{"field": "spend_365d", "op": "is_null"}`, "rules.op",
			`operator "is_null" is not allowed for integer field spend_365d`},
		{"lt on an enum", `{"field": "status", "op": "lt", "value": "active"}`, "rules.op",
			`operator "lt" is not allowed for enum field status`},
		{"a missing operator", `{"field": "status", "value": "active"}`, "rules.op", "required"},
		{"a string for an integer", `{"field": "orders_365d", "op": "eq", "value": "5"}`, "rules.value", "must be an integer"},
		{"a fraction for an integer", `{"field": "orders_365d", "op": "eq", "value": 1.5}`, "rules.value", "must be an integer"},
		{"a missing value", `{"field": "orders_365d", "op": "eq"}`, "rules.value", "required"},
		{"a null value", `{"field": "orders_365d", "op": "eq", "value": null}`, "rules.value", "required"},
		{"an enum value that does not exist", `{"field": "status", "op": "eq", "value": "deleted"}`, "rules.value",
			"must be one of pending, active, erased"},
		{"an injection in an enum value", `{"field": "status", "op": "eq", "value": "active' OR '1'='1"}`, "rules.value",
			"must be one of pending, active, erased"},
		{"a date that is not one", `{"field": "joined_at", "op": "gt", "value": "yesterday"}`, "rules.value",
			"must be a date (YYYY-MM-DD) or a time (RFC 3339 with offset)"},
		{"a time without an offset", `{"field": "joined_at", "op": "gt", "value": "2026-01-01T10:00:00"}`, "rules.value",
			"must be a date (YYYY-MM-DD) or a time (RFC 3339 with offset)"},
		{"between with one bound", `{"field": "orders_365d", "op": "between", "value": [1]}`, "rules.value",
			"must be a list [low, high], each an integer"},
		{"between upside down", `{"field": "spend_365d", "op": "between", "value": [500, 100]}`, "rules.value",
			"low must not be greater than high"},
		{"between of dates upside down", `{"field": "joined_at", "op": "between", "value": ["2026-02-01", "2026-01-01"]}`,
			"rules.value", "low must not be greater than high"},
		{"an empty in-list", `{"field": "home_store", "op": "in", "value": []}`, "rules.value",
			"must be a non-empty list, each item a string of 1 to 200 characters"},
		{"an in-list with a bad item", `{"field": "orders_365d", "op": "in", "value": [1, "two"]}`, "rules.value",
			"item 1 must be an integer"},
		{"in with a scalar", `{"field": "status", "op": "in", "value": "active"}`, "rules.value",
			"must be a non-empty list, each item one of pending, active, erased"},
		{"a value for is_null", `{"field": "home_store", "op": "is_null", "value": "oslo-1"}`, "rules.value",
			"must be left out for is_null"},
		{"an empty string", `{"field": "email_domain", "op": "contains", "value": ""}`, "rules.value",
			"must be a string of 1 to 200 characters"},
		{"an unknown key", `{"field": "status", "op": "eq", "value": "active", "note": "x"}`, "rules.note",
			"unknown key (a node has all, any, not, or field, op, value)"},
		{"a repeated key", `{"field": "status", "field": "tier", "op": "eq", "value": "x"}`, "rules.field", "repeated key"},
		{"a group and a rule in one node", `{"all": [{"field": "status", "op": "eq", "value": "active"}], "field": "status"}`,
			"rules", "a node is either a group (all, any, not) or a rule (field, op, value), not both"},
		{"two groups in one node", `{"all": [{"field": "status", "op": "eq", "value": "active"}],
			"any": [{"field": "status", "op": "eq", "value": "active"}]}`, "rules", "a node holds only one group: all, any or not"},
		{"an empty group", `{"all": []}`, "rules.all", "must hold at least one rule"},
		{"an empty nested group", `{"all": [{"field": "status", "op": "eq", "value": "active"}, {"any": []}]}`,
			"rules.all.1.any", "must hold at least one rule"},
		{"an empty node", `{}`, "rules", "must be a group (all, any, not) or a rule (field, op, value)"},
		{"a group that is not a list", `{"all": {"field": "status"}}`, "rules.all", "must be a list of rules"},
		{"a child that is not an object", `{"any": ["status"]}`, "rules.any.0",
			"must be an object: a group (all, any, not) or a rule (field, op, value)"},
		{"nesting too deep", deep, "rules" + strings.Repeat(".not", MaxDepth), "nested deeper than 10 levels"},
		{"too many rules in one group", manyRules, "rules", "more than 200 rules"},
		{"too many rules in all", manyInGroups, "rules", "more than 200 rules"},
		{"broken JSON", `{"field": "status"`, "rules", "not valid JSON: unexpected EOF"},
		{"data after the tree", `{"field": "status", "op": "eq", "value": "active"} {}`, "rules",
			"unexpected data after the rule tree"},
		{"within_days on another field", `{"field": "orders_365d", "op": "gt", "value": 1, "within_days": 30}`,
			"rules.within_days", "only bought_sku, bought_category and bought_brand take within_days"},
		{"within_days deep in a tree", `{"all": [{"field": "status", "op": "eq", "value": "active"},
			{"field": "language", "op": "eq", "value": "nb", "within_days": 30}]}`,
			"rules.all.1.within_days", "only bought_sku, bought_category and bought_brand take within_days"},
		{"within_days of 0", `{"field": "bought_sku", "op": "eq", "value": "A", "within_days": 0}`,
			"rules.within_days", "must be a whole number of days from 1 to 3660"},
		{"within_days over ten years", `{"field": "bought_category", "op": "eq", "value": "a", "within_days": 3661}`,
			"rules.within_days", "must be a whole number of days from 1 to 3660"},
		{"within_days as a string", `{"field": "bought_brand", "op": "eq", "value": "a", "within_days": "30"}`,
			"rules.within_days", "must be a whole number of days"},
		{"within_days with a fraction", `{"field": "bought_brand", "op": "eq", "value": "a", "within_days": 1.5}`,
			"rules.within_days", "must be a whole number of days"},
		{"within_days alone", `{"within_days": 30}`, "rules.field", "required"},
		{"a bought field with ne", `{"field": "bought_sku", "op": "ne", "value": "A"}`,
			"rules.op", `operator "ne" is not allowed for text field bought_sku`},
		{"a campaign id that is not an integer", `{"field": "received_campaign", "op": "eq", "value": "7"}`,
			"rules.value", "must be an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused at "+tt.path, func(t *testing.T) {
			_, err := Parse([]byte(tt.tree))
			var e *models.Error
			if !errors.As(err, &e) || e.Code != models.EINVALID {
				t.Fatalf("got %v, want an EINVALID *models.Error", err)
			}
			if got, ok := e.Fields[tt.path]; !ok || got != tt.why {
				t.Errorf("fields %q, want %s: %q", e.Fields, tt.path, tt.why)
			}
		})
	}
}

func TestValidateChecksTreesBuiltInGo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tree *Node
		path string // "" when valid
	}{
		{"typed Go values are accepted", &Node{All: []*Node{
			{Field: "orders_365d", Op: In, Value: []int64{1, 2}},
			{Field: "home_store", Op: NotIn, Value: []string{"oslo-1"}},
			{Field: "spend_365d", Op: Gt, Value: 100},
		}}, ""},
		{"a nil child is refused", &Node{Any: []*Node{nil}}, "rules.any.0"},
		{"a nil tree is refused", nil, "rules"},
		{"a float with a fraction is not an integer", &Node{Field: "orders_365d", Op: Eq, Value: 2.5}, "rules.value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.tree)
			if tt.path == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *models.Error
			if !errors.As(err, &e) || e.Fields[tt.path] == "" {
				t.Fatalf("got %v, want an error at %s", err, tt.path)
			}
		})
	}
}

func TestANodeSurvivesAJSONRoundTrip(t *testing.T) {
	t.Parallel()
	src := `{"all":[{"field":"home_store","op":"eq","value":"oslo-1"},{"any":[{"field":"days_since_last_purchase","op":"gt","value":60},{"not":{"field":"home_store","op":"is_null"}}]}]}`
	var n Node
	if err := json.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(&n)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != src {
		t.Errorf("got  %s\nwant %s", out, src)
	}
}

func TestFieldsListsEveryFieldWithItsOperators(t *testing.T) {
	t.Parallel()
	got := map[string]Field{}
	for _, f := range Fields() {
		got[f.Name] = f
	}
	for _, name := range []string{"home_store", "status", "marketing_consent", "joined_at", "email_domain",
		"days_since_last_purchase", "orders_365d", "spend_365d", "tier", "birthday_month"} {
		if _, ok := got[name]; !ok {
			t.Errorf("field %s missing", name)
		}
	}
	if ops := got["days_since_last_purchase"].Ops; !containsOp(ops, IsNull) || !containsOp(ops, Between) {
		t.Errorf("days_since_last_purchase ops %v, want is_null and between", ops)
	}
	if ops := got["tier"].Ops; !slices.Equal(ops, []Op{Eq, Ne, In, NotIn, IsNull, IsNotNull}) {
		t.Errorf("tier ops %v, want eq ne in not_in is_null is_not_null", ops)
	}
	if ops := got["birthday_month"].Ops; !containsOp(ops, Between) || !containsOp(ops, IsNull) {
		t.Errorf("birthday_month ops %v, want between and is_null", ops)
	}
}

func containsOp(ops []Op, op Op) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

func TestTierSharesTheWindowWithSpendAndKeepsItsValueOut(t *testing.T) {
	t.Parallel()
	tree := mustParse(t, `{"all": [{"field": "tier", "op": "in", "value": ["Gold'; DROP TABLE tiers; --"]},
		{"field": "spend_365d", "op": "gt", "value": 0}, {"field": "birthday_month", "op": "eq", "value": 12}]}`)
	where, args, err := Compile(tree, time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC), 9)
	if err != nil {
		t.Fatal(err)
	}
	// tier list, window start, as-of, spend bound, month: tier and spend_365d share the window.
	if len(args) != 5 {
		t.Errorf("got %d arguments, want 5: %v", len(args), args)
	}
	if strings.Contains(where, "DROP") || strings.Contains(where, "Gold") {
		t.Errorf("SQL contains the value:\n%s", where)
	}
	if !strings.Contains(where, "$10::") || strings.Contains(where, "$9::") {
		t.Errorf("placeholders do not start after the offset:\n%s", where)
	}
}

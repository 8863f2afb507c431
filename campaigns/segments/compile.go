package segments

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/regulars/regulars/models"
)

// maxTextValue bounds a text value; store codes, domains and enum values are all far shorter.
const maxTextValue = 200

// Compile validates tree and turns it into a WHERE clause for
// `SELECT m.id FROM members m WHERE <where>` plus its arguments. Placeholders are numbered from
// argOffset+1, so a caller that already has argOffset arguments can append these. Every value is
// an argument with an explicit cast; the SQL text holds only field expressions and placeholders.
//
// asOf is the instant the computed purchase figures are measured at (only transactions before it
// count), and its location is the shop's timezone: a YYYY-MM-DD value means that whole day there,
// and the 365-day window starts 365 calendar days earlier there (in_trailing_year, a SQL function
// from models/migrations/00017_tier_rule.sql). Pass a fixed asOf in tests.
func Compile(tree *Node, asOf time.Time, argOffset int) (where string, args []any, err error) {
	if asOf.IsZero() {
		return "", nil, errors.New("compile segment: as-of time not set")
	}
	c := &compiler{asOf: asOf, offset: argOffset, fe: models.FieldErrors{}}
	where = c.node(tree, RootPath, 1)
	if err := c.fe.Err("invalid segment rules"); err != nil {
		return "", nil, err
	}
	return where, c.args, nil
}

// Validate checks a tree built in Go or read by Parse: its shape, the limits, and every rule's
// field, operator and value. The error is an EINVALID *models.Error naming the bad paths.
func Validate(tree *Node) error {
	_, _, err := Compile(tree, time.Unix(0, 0).UTC(), 0)
	return err
}

// compiler walks a tree once, collecting the SQL, the arguments and every validation problem.
type compiler struct {
	asOf   time.Time
	offset int
	args   []any
	fe     models.FieldErrors
	rules  int
	// The as-of instant and its time zone are shared by all computed figures of a tree.
	asOfRef, zoneRef string
}

// arg adds an argument and returns its placeholder, cast so PostgreSQL knows its type.
func (c *compiler) arg(v any, cast string) string {
	c.args = append(c.args, v)
	return "$" + strconv.Itoa(c.offset+len(c.args)) + "::" + cast
}

func (c *compiler) asOfArg() string {
	if c.asOfRef == "" {
		c.asOfRef = c.arg(c.asOf, "timestamptz")
	}
	return c.asOfRef
}

// zoneArg is the name of the as-of time's zone, in which the SQL rules (in_trailing_year,
// member_tier) count calendar days. A time in Go's Local zone has no name PostgreSQL knows; it
// counts in UTC (callers pass the shop's named zone, see liveAsOf).
func (c *compiler) zoneArg() string {
	if c.zoneRef == "" {
		name := c.asOf.Location().String()
		if name == "Local" || name == "" {
			name = "UTC"
		}
		c.zoneRef = c.arg(name, "text")
	}
	return c.zoneRef
}

func (c *compiler) node(n *Node, path string, depth int) string {
	if n == nil {
		c.fe.Add(path, "must be a group (all, any, not) or a rule (field, op, value)")
		return ""
	}
	if depth > MaxDepth {
		c.fe.Add(path, fmt.Sprintf("nested deeper than %d levels", MaxDepth))
		return ""
	}
	groups := 0
	for _, present := range []bool{n.All != nil, n.Any != nil, n.Not != nil} {
		if present {
			groups++
		}
	}
	isRule := n.Field != "" || n.Op != "" || n.Value != nil || n.WithinDays != nil
	switch {
	case groups > 1:
		c.fe.Add(path, "a node holds only one group: all, any or not")
	case groups == 1 && isRule:
		c.fe.Add(path, "a node is either a group (all, any, not) or a rule (field, op, value), not both")
	case n.All != nil:
		return c.group(n.All, " AND ", path+".all", depth)
	case n.Any != nil:
		return c.group(n.Any, " OR ", path+".any", depth)
	case n.Not != nil:
		// COALESCE makes "not" the complement: members whose inner rule is NULL are in it.
		return "NOT COALESCE(" + c.node(n.Not, path+".not", depth+1) + ", false)"
	case isRule:
		return c.rule(n, path)
	default:
		c.fe.Add(path, "must be a group (all, any, not) or a rule (field, op, value)")
	}
	return ""
}

func (c *compiler) group(children []*Node, joiner, path string, depth int) string {
	if len(children) == 0 {
		c.fe.Add(path, "must hold at least one rule")
		return ""
	}
	parts := make([]string, len(children))
	for i, child := range children {
		parts[i] = c.node(child, path+"."+strconv.Itoa(i), depth+1)
	}
	return "(" + strings.Join(parts, joiner) + ")"
}

func (c *compiler) rule(n *Node, path string) string {
	c.rules++
	if c.rules == MaxRules+1 {
		c.fe.Add(RootPath, fmt.Sprintf("more than %d rules", MaxRules))
	}
	if n.Field == "" {
		c.fe.Add(path+".field", "required")
		return ""
	}
	f := registry[n.Field]
	if f == nil {
		c.fe.Add(path+".field", fmt.Sprintf("unknown field %q", n.Field))
		return ""
	}
	switch {
	case n.Op == "":
		c.fe.Add(path+".op", "required")
		return ""
	case !knownOps[n.Op]:
		c.fe.Add(path+".op", fmt.Sprintf("unknown operator %q", n.Op))
		return ""
	case !f.allows(n.Op):
		c.fe.Add(path+".op", fmt.Sprintf("operator %q is not allowed for %s field %s", n.Op, f.Type, f.Name))
		return ""
	}
	v, why := f.operand(n.Op, n.Value, c.asOf.Location())
	if why != "" {
		c.fe.Add(path+".value", why)
		return ""
	}
	v.days = DefaultWithinDays
	if n.WithinDays != nil {
		switch d := *n.WithinDays; {
		case !f.WithinDays:
			c.fe.Add(path+".within_days", "only bought_sku, bought_category and bought_brand take within_days")
			return ""
		case d < 1 || d > MaxWithinDays:
			c.fe.Add(path+".within_days", fmt.Sprintf("must be a whole number of days from 1 to %d", MaxWithinDays))
			return ""
		default:
			v.days = d
		}
	}
	if f.leaf != nil {
		return f.leaf(c, n.Op, v)
	}
	return c.predicate(f.Type, f.sql(c), n.Op, v)
}

// predicate compiles "expr op value". NULL expressions fall out of every comparison (SQL's
// three-valued logic), which is the package's rule for NULLs; not_in uses <> ALL for the same.
// strpos and starts_with are used instead of LIKE so % and _ in a value stay literal.
func (c *compiler) predicate(t Type, expr string, op Op, v operand) string {
	switch op {
	case IsNull:
		return expr + " IS NULL"
	case IsNotNull:
		return expr + " IS NOT NULL"
	}
	if t == TypeTime {
		return c.timePredicate(expr, op, v)
	}
	cast := t.cast()
	switch op {
	case Eq, Ne, Lt, Lte, Gt, Gte:
		return expr + " " + sqlComparison[op] + " " + c.arg(v.one, cast)
	case Between:
		return expr + " BETWEEN " + c.arg(v.lo, cast) + " AND " + c.arg(v.hi, cast)
	case In:
		return expr + " = ANY(" + c.arg(v.list, cast+"[]") + ")"
	case NotIn:
		return expr + " <> ALL(" + c.arg(v.list, cast+"[]") + ")"
	case Contains:
		return "strpos(" + expr + ", " + c.arg(v.one, cast) + ") > 0"
	case StartsWith:
		return "starts_with(" + expr + ", " + c.arg(v.one, cast) + ")"
	}
	panic("segments: no SQL for operator " + string(op)) // unreachable: operators are validated
}

var sqlComparison = map[Op]string{Eq: "=", Ne: "<>", Lt: "<", Lte: "<=", Gt: ">", Gte: ">="}

// timePredicate compares with instants or whole days: a day D is [start of D, start of D+1),
// so "lte D" includes all of D and "gt D" starts the day after.
func (c *compiler) timePredicate(expr string, op Op, v operand) string {
	atOrAfter := func(tv timeValue) string { return expr + " >= " + c.arg(tv.start, "timestamptz") }
	before := func(tv timeValue) string { return expr + " < " + c.arg(tv.start, "timestamptz") }
	atOrBefore := func(tv timeValue) string {
		if tv.day {
			return expr + " < " + c.arg(tv.end, "timestamptz")
		}
		return expr + " <= " + c.arg(tv.start, "timestamptz")
	}
	after := func(tv timeValue) string {
		if tv.day {
			return expr + " >= " + c.arg(tv.end, "timestamptz")
		}
		return expr + " > " + c.arg(tv.start, "timestamptz")
	}
	switch op {
	case Eq:
		tv := v.one.(timeValue)
		if !tv.day {
			return expr + " = " + c.arg(tv.start, "timestamptz")
		}
		return "(" + atOrAfter(tv) + " AND " + atOrBefore(tv) + ")"
	case Ne:
		tv := v.one.(timeValue)
		if !tv.day {
			return expr + " <> " + c.arg(tv.start, "timestamptz")
		}
		return "(" + before(tv) + " OR " + after(tv) + ")"
	case Lt:
		return before(v.one.(timeValue))
	case Lte:
		return atOrBefore(v.one.(timeValue))
	case Gt:
		return after(v.one.(timeValue))
	case Gte:
		return atOrAfter(v.one.(timeValue))
	case Between:
		return "(" + atOrAfter(v.lo.(timeValue)) + " AND " + atOrBefore(v.hi.(timeValue)) + ")"
	}
	panic("segments: no SQL for time operator " + string(op)) // unreachable: operators are validated
}

// operand is a rule's value, checked and converted for its field and operator.
type operand struct {
	one    any   // eq, ne, lt, lte, gt, gte, contains, starts_with
	lo, hi any   // between
	list   any   // in, not_in: []string or []int64
	days   int64 // the rule's within_days (DefaultWithinDays when not given)
}

// timeValue is an instant (start) or a whole day [start, end) in the shop's timezone.
type timeValue struct {
	start, end time.Time
	day        bool
}

// operand checks raw for op and returns it converted, or why it is wrong.
func (f *Field) operand(op Op, raw any, loc *time.Location) (operand, string) {
	switch op {
	case IsNull, IsNotNull:
		if raw != nil {
			return operand{}, "must be left out for " + string(op)
		}
		return operand{}, ""
	case In, NotIn:
		items, ok := asList(raw)
		if !ok || len(items) == 0 {
			return operand{}, "must be a non-empty list, each item " + f.describe()
		}
		if len(items) > MaxListValues {
			return operand{}, fmt.Sprintf("must hold at most %d values", MaxListValues)
		}
		var strs []string
		var ints []int64
		for i, item := range items {
			v, ok := f.scalar(item, loc)
			if !ok {
				return operand{}, fmt.Sprintf("item %d must be %s", i, f.describe())
			}
			switch v := v.(type) {
			case string:
				strs = append(strs, v)
			case int64:
				ints = append(ints, v)
			}
		}
		if f.Type == TypeInteger {
			return operand{list: ints}, ""
		}
		return operand{list: strs}, ""
	case Between:
		items, ok := asList(raw)
		if !ok || len(items) != 2 {
			return operand{}, "must be a list [low, high], each " + f.describe()
		}
		lo, okLo := f.scalar(items[0], loc)
		hi, okHi := f.scalar(items[1], loc)
		if !okLo || !okHi {
			return operand{}, "must be a list [low, high], each " + f.describe()
		}
		if greater(lo, hi) {
			return operand{}, "low must not be greater than high"
		}
		return operand{lo: lo, hi: hi}, ""
	default:
		if raw == nil {
			return operand{}, "required"
		}
		v, ok := f.scalar(raw, loc)
		if !ok {
			return operand{}, "must be " + f.describe()
		}
		return operand{one: v}, ""
	}
}

// describe says what a value of the field looks like, for error messages.
func (f *Field) describe() string {
	switch f.Type {
	case TypeEnum:
		return "one of " + strings.Join(f.Values, ", ")
	case TypeInteger:
		if f.bounded {
			return fmt.Sprintf("an integer from %d to %d", f.min, f.max)
		}
		return "an integer"
	case TypeNumber:
		return "a number"
	case TypeTime:
		return "a date (YYYY-MM-DD) or a time (RFC 3339 with offset)"
	default:
		return fmt.Sprintf("a string of 1 to %d characters", maxTextValue)
	}
}

// scalar converts one value: string (text, enum), int64, float64 or timeValue.
func (f *Field) scalar(raw any, loc *time.Location) (any, bool) {
	switch f.Type {
	case TypeText, TypeEnum:
		s, ok := raw.(string)
		if !ok || s == "" || len(s) > maxTextValue {
			return nil, false
		}
		if f.foldCase {
			s = strings.ToLower(s)
		}
		if f.Type == TypeEnum {
			for _, allowed := range f.Values {
				if s == allowed {
					return s, true
				}
			}
			return nil, false
		}
		return s, true
	case TypeInteger:
		i, ok := asInt(raw)
		if ok && f.bounded && (i < f.min || i > f.max) {
			return nil, false
		}
		return i, ok
	case TypeNumber:
		x, ok := asFloat(raw)
		return x, ok
	case TypeTime:
		s, ok := raw.(string)
		if !ok {
			return nil, false
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return timeValue{start: t}, true
		}
		if d, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
			return timeValue{start: d, end: d.AddDate(0, 0, 1), day: true}, true
		}
		return nil, false
	}
	return nil, false
}

func greater(a, b any) bool {
	switch a := a.(type) {
	case int64:
		return a > b.(int64)
	case float64:
		return a > b.(float64)
	case timeValue:
		return a.start.After(b.(timeValue).start)
	}
	return false
}

// asInt accepts JSON numbers without a fraction and Go integers (or integral floats).
func asInt(raw any) (int64, bool) {
	switch v := raw.(type) {
	case json.Number:
		i, err := strconv.ParseInt(string(v), 10, 64)
		return i, err == nil
	case int:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			return 0, false
		}
		return int64(v), true
	}
	return 0, false
}

func asFloat(raw any) (float64, bool) {
	var x float64
	switch v := raw.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return 0, false
		}
		x = f
	case float64:
		x = v
	case float32:
		x = float64(v)
	case int:
		x = float64(v)
	case int64:
		x = float64(v)
	default:
		return 0, false
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, false
	}
	return x, true
}

// asList accepts a decoded JSON array or any Go slice.
func asList(raw any) ([]any, bool) {
	if items, ok := raw.([]any); ok {
		return items, true
	}
	rv := reflect.ValueOf(raw)
	if rv.Kind() != reflect.Slice {
		return nil, false
	}
	items := make([]any, rv.Len())
	for i := range items {
		items[i] = rv.Index(i).Interface()
	}
	return items, true
}

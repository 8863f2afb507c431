// Package segments turns the contract's segment rule trees into parameterised SQL over members.
//
// A tree is a JSON object: a group ({"all": [...]}, {"any": [...]} or {"not": {...}}) or a rule
// ({"field": "home_store", "op": "eq", "value": "oslo-1"}). Parse reads one strictly, Compile
// validates it against the field registry (fields.go) and returns a WHERE clause for
// `SELECT m.id FROM members m WHERE <where>` with every value passed as an argument, never
// written into the SQL text. Validation errors are *models.Error (EINVALID) whose Fields name the
// JSON path of the bad node, e.g. "rules.all.1.any.0.field".
//
// NULLs: a rule on a value that is NULL for a member (no home store, no purchase yet for
// days_since_last_purchase, no email for email_domain) never matches, whatever its operator,
// except is_null. "not" is the complement within all members: {"not": R} matches exactly the
// members R does not match, including those R skipped for a NULL.
package segments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/regulars/regulars/models"
)

// Limits that keep a stored or posted tree cheap to parse and to run (a tree is user input).
const (
	// MaxDepth is how deeply groups may nest; the root is at depth 1.
	MaxDepth = 10
	// MaxRules is the most rules (leaves) a tree may hold.
	MaxRules = 200
	// MaxListValues is the longest value list of an in/not_in/between rule.
	MaxListValues = 1000
)

// RootPath is the name of the request field that holds a tree; error paths start with it.
const RootPath = "rules"

// Node is one node of a rule tree: either a group (exactly one of All, Any, Not) or a rule
// (Field, Op and, unless Op is is_null/is_not_null, Value). A present but empty All or Any is
// a non-nil empty slice, which Compile rejects.
type Node struct {
	All   []*Node `json:"all,omitempty"`
	Any   []*Node `json:"any,omitempty"`
	Not   *Node   `json:"not,omitempty"`
	Field string  `json:"field,omitempty"`
	Op    Op      `json:"op,omitempty"`
	// Value is a JSON value as decoded with UseNumber (json.Number, string, bool, []any), or a
	// Go value of the same shape (int, int64, float64, string, []string, []int64, ...).
	Value any `json:"value,omitempty"`
	// WithinDays is a rule's window in days, only on the fields that take one (Field.WithinDays:
	// bought_sku, bought_category, bought_brand); nil means DefaultWithinDays.
	WithinDays *int64 `json:"within_days,omitempty"`
}

// DefaultWithinDays is the window of a bought_* rule without within_days; MaxWithinDays bounds it.
const (
	DefaultWithinDays = 365
	MaxWithinDays     = 3660
)

// Op is a rule's operator.
type Op string

// Operators. Which ones a field allows depends on its type (see fields.go).
const (
	Eq         Op = "eq"
	Ne         Op = "ne"
	Lt         Op = "lt"
	Lte        Op = "lte"
	Gt         Op = "gt"
	Gte        Op = "gte"
	In         Op = "in"
	NotIn      Op = "not_in"
	Between    Op = "between" // [low, high], both ends included
	Contains   Op = "contains"
	StartsWith Op = "starts_with"
	IsNull     Op = "is_null"
	IsNotNull  Op = "is_not_null"
)

var knownOps = map[Op]bool{Eq: true, Ne: true, Lt: true, Lte: true, Gt: true, Gte: true, In: true, NotIn: true,
	Between: true, Contains: true, StartsWith: true, IsNull: true, IsNotNull: true}

// Parse reads a rule tree strictly: unknown or repeated keys, wrong JSON types, trailing data
// and trees nested deeper than MaxDepth are refused with an EINVALID *models.Error naming the
// path. The shape and meaning of the nodes (fields, operators, values) are checked by Validate.
func Parse(data []byte) (*Node, error) {
	p := &parser{dec: json.NewDecoder(bytes.NewReader(data)), fe: models.FieldErrors{}}
	p.dec.UseNumber()
	n := p.node(RootPath, 1)
	if len(p.fe) == 0 {
		if _, err := p.dec.Token(); err != io.EOF {
			p.fe.Add(RootPath, "unexpected data after the rule tree")
		}
	}
	if err := p.fe.Err("invalid segment rules"); err != nil {
		return nil, err
	}
	if err := Validate(n); err != nil {
		return nil, err
	}
	return n, nil
}

// UnmarshalJSON reads a node with Parse, so stored trees get the same checks as posted ones.
func (n *Node) UnmarshalJSON(data []byte) error {
	parsed, err := Parse(data)
	if err != nil {
		return err
	}
	*n = *parsed
	return nil
}

// parser walks the JSON tokens itself so it can name the path of every problem, refuse
// repeated keys (a map would keep the last silently) and stop at MaxDepth before recursing.
// It stops at the first problem: after one, the token stream is no longer trustworthy.
type parser struct {
	dec *json.Decoder
	fe  models.FieldErrors
}

func (p *parser) fail(path, why string) {
	p.fe.Add(path, why)
}

func (p *parser) failed() bool { return len(p.fe) > 0 }

// token reads the next token, recording a syntax error against path.
func (p *parser) token(path string) (json.Token, bool) {
	tok, err := p.dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		p.fail(path, "not valid JSON: "+err.Error())
		return nil, false
	}
	return tok, true
}

func (p *parser) node(path string, depth int) *Node {
	if depth > MaxDepth {
		p.fail(path, fmt.Sprintf("nested deeper than %d levels", MaxDepth))
		return nil
	}
	tok, ok := p.token(path)
	if !ok {
		return nil
	}
	if d, isDelim := tok.(json.Delim); !isDelim || d != '{' {
		p.fail(path, "must be an object: a group (all, any, not) or a rule (field, op, value)")
		return nil
	}
	n := &Node{}
	seen := map[string]bool{}
	for p.dec.More() {
		tok, ok := p.token(path)
		if !ok {
			return nil
		}
		key, _ := tok.(string) // object keys are always strings
		kpath := path + "." + key
		if seen[key] {
			p.fail(kpath, "repeated key")
			return nil
		}
		seen[key] = true
		switch key {
		case "all", "any":
			list := p.list(kpath, depth)
			if p.failed() {
				return nil
			}
			if key == "all" {
				n.All = list
			} else {
				n.Any = list
			}
		case "not":
			n.Not = p.node(kpath, depth+1)
		case "field", "op":
			tok, ok := p.token(kpath)
			if !ok {
				return nil
			}
			s, isString := tok.(string)
			if !isString {
				p.fail(kpath, "must be a string")
				return nil
			}
			if key == "field" {
				n.Field = s
			} else {
				n.Op = Op(s)
			}
		case "value":
			if err := p.dec.Decode(&n.Value); err != nil {
				p.fail(kpath, "not valid JSON: "+err.Error())
			}
		case "within_days":
			var raw any
			if err := p.dec.Decode(&raw); err != nil {
				p.fail(kpath, "not valid JSON: "+err.Error())
				break
			}
			days, ok := asInt(raw)
			if !ok {
				p.fail(kpath, "must be a whole number of days")
				break
			}
			n.WithinDays = &days
		default:
			p.fail(kpath, "unknown key (a node has all, any, not, or field, op, value)")
		}
		if p.failed() {
			return nil
		}
	}
	if _, ok := p.token(path); !ok { // the closing brace
		return nil
	}
	return n
}

// list reads the children of an all/any group. An empty list stays a non-nil empty slice so
// that Validate can tell "empty group" from "no group".
func (p *parser) list(path string, depth int) []*Node {
	tok, ok := p.token(path)
	if !ok {
		return nil
	}
	if d, isDelim := tok.(json.Delim); !isDelim || d != '[' {
		p.fail(path, "must be a list of rules")
		return nil
	}
	list := []*Node{}
	for i := 0; p.dec.More(); i++ {
		if len(list) >= MaxRules {
			p.fail(RootPath, fmt.Sprintf("more than %d rules", MaxRules))
			return nil
		}
		child := p.node(path+"."+strconv.Itoa(i), depth+1)
		if p.failed() {
			return nil
		}
		list = append(list, child)
	}
	if _, ok := p.token(path); !ok { // the closing bracket
		return nil
	}
	return list
}

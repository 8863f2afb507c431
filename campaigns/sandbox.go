package campaigns

import (
	"context"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"reflect"
	"strconv"
	"text/template"
	"text/template/parse"
	"time"
)

// The template sandbox. Marketer templates are user input, and text/template alone lets a few
// kilobytes of it allocate gigabytes ({{printf "%01000000d" 1}}) or hold a core for hours
// ({{range 1000000}}{{range 1000000}}{{end}}{{end}}). Every render of a mail (its subject, HTML
// and text together) therefore runs under one budget: RenderTime of computing and RenderBytes of
// output and built strings, and it stops when its context ends. Three mechanisms enforce it:
//
//   - The built-in functions that build strings (printf, print, println, html, js, urlquery, and
//     html/template's _eval_args_) are replaced by versions that take the render's *Data as a
//     hidden first argument (the tree is rewritten to pass $), refuse a call whose result could
//     be larger than what is left of the budget before they allocate it, and charge what they
//     return. printf refuses widths and precisions above maxWidth and * widths.
//   - Every list that may run more than once (a range body and the lists in it) starts with a
//     declaration {{$budgetTick := _tick $}}, which checks the deadline and the context and
//     aborts the execution. A declaration writes nothing, and html/template adds no escaper to
//     it. It is what bounds range over integers, whose bodies may call nothing at all; the
//     rest of a template runs once, in time bounded by its size.
//   - Output goes through a writer that charges the same budget.
//
// {{define}}, {{template}} and {{block}} are refused: recursion through template calls goes
// 100,000 frames deep before text/template stops it. So are ranges nested more than
// maxRangeDepth deep, whose escaping at save time (outside any budget) doubles per level.
//
// The budget reaches the functions through $ because the compiled templates are shared by
// concurrent senders: a Clone per mail to bind per-mail functions would cost more than the
// render.

// Budget of one mail's render.
const (
	// RenderTime is how long one mail's templates may compute (wall clock, a proxy for CPU).
	RenderTime = time.Second
	// RenderBytes bounds a mail's rendered output plus the strings its templates build.
	RenderBytes = 16 << 20
	// maxPiece bounds one string a template function builds, so that html/template's escapers,
	// which are not charged and may grow their input sixfold, never allocate much, and so that
	// what a template does once per action outside any range (compare two strings, escape one)
	// costs little: such work is bounded by the template's size, not by ticks.
	maxPiece = 64 << 10
	// maxWidth is the largest printf width or precision.
	maxWidth = 1000
	// maxRangeDepth is how deep ranges may nest. html/template escapes a range's body again for
	// each range around it, so its work at save time doubles with every level: 18 empty nested
	// ranges took a second, before any budget could apply.
	maxRangeDepth = 4
)

// Errors of a render that broke its budget. templateError gives them to marketers as they are.
var (
	errOverTime  = errors.New("uses more than 1 s of computing")
	errOverSize  = errors.New("produces more than 16 MiB")
	errPieceSize = errors.New("builds a text of more than 64 KiB")
	errWidth     = fmt.Errorf("printf: widths and precisions above %d, and * widths, are not allowed", maxWidth)
	errStopped   = errors.New("rendering was stopped")
	// errNoBudget ends the execution Compile starts only to make html/template escape the tree.
	errNoBudget = errors.New("no render budget")
)

// errTemplateCalls refuses template definitions and calls.
const errTemplateCalls = "{{define}}, {{template}} and {{block}} are not allowed"

// budget is what is left to one render. A render runs on one goroutine (its parts one after
// the other), so it needs no lock.
type budget struct {
	ctx      context.Context
	done     <-chan struct{}
	deadline time.Time
	left     int
}

func newBudget(ctx context.Context) *budget {
	return &budget{ctx: ctx, done: ctx.Done(), deadline: time.Now().Add(RenderTime), left: RenderBytes}
}

// tick stops the render when its context ended or its time is up.
func (b *budget) tick() error {
	select {
	case <-b.done:
		return fmt.Errorf("%w: %w", errStopped, b.ctx.Err())
	default:
	}
	if time.Now().After(b.deadline) {
		return errOverTime
	}
	return nil
}

// reserve refuses a piece that could be n bytes long when that is more than is left.
func (b *budget) reserve(n int) error {
	if n > b.left {
		return errOverSize
	}
	return b.tick()
}

// charge takes a built string of n bytes from the budget.
func (b *budget) charge(n int) error {
	if n > maxPiece {
		return errPieceSize
	}
	if n > b.left {
		b.left = 0
		return errOverSize
	}
	b.left -= n
	return nil
}

// budgetOf returns the budget of the render of d; nil d is Compile's escaping run.
func budgetOf(d *Data) (*budget, error) {
	if d == nil || d.budget == nil {
		return nil, errNoBudget
	}
	return d.budget, nil
}

// Names the rewritten tree uses.
const (
	tickFunc = "_tick"
	tickVar  = "$budgetTick"
	argsFunc = "_budget_args" // replaces html/template's _eval_args_
)

// budgeted are the functions that get $ as their first argument.
var budgeted = map[string]bool{"printf": true, "print": true, "println": true, "html": true,
	"js": true, "urlquery": true, argsFunc: true}

// sandboxFuncs shadow text/template's built-ins of the same names (a template's functions are
// looked up before the built-ins). Each behaves as the built-in, under the budget.
var sandboxFuncs = template.FuncMap{
	tickFunc: func(d *Data) (bool, error) {
		b, err := budgetOf(d)
		if err != nil {
			return false, err
		}
		return true, b.tick()
	},
	"printf": func(d *Data, format string, args ...any) (string, error) {
		return build(d, printfSize(format, args), func() string { return fmt.Sprintf(format, args...) })
	},
	"print": func(d *Data, args ...any) (string, error) {
		return build(d, argsSize(args, 1), func() string { return fmt.Sprint(args...) })
	},
	"println": func(d *Data, args ...any) (string, error) {
		return build(d, argsSize(args, 1), func() string { return fmt.Sprintln(args...) })
	},
	// HTMLEscapeString writes at most 5 bytes (&#34;) per byte, JSEscapeString 6 (\u003C),
	// QueryEscape 3 (%3C).
	"html": func(d *Data, args ...any) (string, error) {
		return build(d, argsSize(args, 5), func() string { return template.HTMLEscaper(args...) })
	},
	"js": func(d *Data, args ...any) (string, error) {
		return build(d, argsSize(args, 6), func() string { return template.JSEscaper(args...) })
	},
	"urlquery": func(d *Data, args ...any) (string, error) {
		return build(d, argsSize(args, 3), func() string { return template.URLQueryEscaper(args...) })
	},
	argsFunc: func(d *Data, args ...any) (string, error) {
		return build(d, argsSize(args, 1), func() string { return htmlEvalArgs(args...) })
	},
}

// build makes a string that may be up to size bytes long with f, charged to d's budget.
func build(d *Data, size int, f func() string) (string, error) {
	b, err := budgetOf(d)
	if err != nil {
		return "", err
	}
	if size < 0 {
		return "", errWidth
	}
	if err := b.reserve(size); err != nil {
		return "", err
	}
	s := f()
	return s, b.charge(len(s))
}

// nonStringSize is what a value that is not a string may print as: the template data hold
// only short fields, and templates build no maps or slices.
const nonStringSize = 1024

// argsSize is how long args may print, each string growing at most grow times.
func argsSize(args []any, grow int) int {
	n := 0
	for _, a := range args {
		if s, ok := a.(string); ok {
			n += grow * len(s)
		} else if v := reflect.ValueOf(a); v.Kind() == reflect.String {
			n += grow * v.Len()
		} else {
			n += grow * nonStringSize
		}
		n++ // the space print and println may add
	}
	return n
}

// printfSize is how long Sprintf(format, args...) may be, or -1 when format has a width or
// precision above maxWidth or a * one. %q and %x grow strings at most tenfold (\U0001f600 is
// 10 bytes for 4, \x00 is 4 for 1).
func printfSize(format string, args []any) int {
	n := len(format) + argsSize(args, 10)
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && (format[i] == '+' || format[i] == '-' || format[i] == '#' || format[i] == ' ' || format[i] == '0') {
			i++
		}
		for part := 0; part < 2; part++ { // width, then precision
			if i < len(format) && format[i] == '[' {
				for i < len(format) && format[i] != ']' {
					i++
				}
				i++
			}
			if i < len(format) && format[i] == '*' {
				return -1
			}
			start := i
			for i < len(format) && format[i] >= '0' && format[i] <= '9' {
				i++
			}
			if i > start {
				w, err := strconv.Atoi(format[start:i])
				if err != nil || w > maxWidth {
					return -1
				}
				n += w + 400 // the digits of a large float besides its width or precision
			}
			if part == 0 {
				if i < len(format) && format[i] == '.' {
					i++
					continue
				}
				break
			}
		}
	}
	return n
}

// htmlEvalArgs is html/template's evalArgs (what its _eval_args_ does): fmt.Sprint of the
// arguments with pointers dereferenced.
func htmlEvalArgs(args ...any) string {
	if len(args) == 1 {
		if s, ok := args[0].(string); ok {
			return s
		}
	}
	stringer, errType := reflect.TypeFor[fmt.Stringer](), reflect.TypeFor[error]()
	for i, a := range args {
		if a == nil {
			continue
		}
		v := reflect.ValueOf(a)
		for !v.Type().Implements(stringer) && !v.Type().Implements(errType) && v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		args[i] = v.Interface()
	}
	return fmt.Sprint(args...)
}

// sandboxText parses a text/template marketer template (subject, text body) under the budget.
func sandboxText(name, src string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(sandboxFuncs).Parse(src)
	if err != nil {
		return nil, err
	}
	if err := checkCalls(t.Tree, len(t.Templates())); err != nil {
		return nil, err
	}
	insertTicks(t.Tree.Root, false)
	passBudget(t.Tree.Root)
	return t, nil
}

// sandboxHTML parses an html/template marketer template under the budget. The ticks go in
// before html/template escapes the tree; $ goes to the budgeted functions after, because
// html/template recognises {{html .X}} and {{urlquery .X}} by their shape and merges them with
// the escapers it adds (some of them named html and urlquery too). Escaping happens on the first
// Execute, which stops at a tick put first in the root for that run alone (no budget: it
// stops); the escaped tree is then rewritten, and that tick removed, before anyone else can
// execute it.
func sandboxHTML(name, src string) (*htmltemplate.Template, error) {
	t, err := htmltemplate.New(name).Option("missingkey=error").Funcs(htmltemplate.FuncMap(sandboxFuncs)).Parse(src)
	if err != nil {
		return nil, err
	}
	if err := checkCalls(t.Tree, len(t.Templates())); err != nil {
		return nil, err
	}
	insertTicks(t.Tree.Root, false)
	root := t.Tree.Root
	root.Nodes = append([]parse.Node{tickAction(root.Position())}, root.Nodes...)
	if err := t.Execute(io.Discard, (*Data)(nil)); !errors.Is(err, errNoBudget) {
		if err == nil {
			err = errors.New("the template ran without its budget") // cannot happen: the root starts with a tick
		}
		return nil, err
	}
	if t.Tree.Root != root || root.Nodes[0].Type() != parse.NodeAction {
		return nil, errors.New("html/template replaced the tree it escaped") // cannot happen: it edits in place
	}
	root.Nodes = root.Nodes[1:]
	passBudget(t.Tree.Root)
	return t, nil
}

// templateCallError is a refused {{define}}, {{template}} or {{block}}, with its line.
type templateCallError struct{ line int }

func (e *templateCallError) Error() string {
	if e.line > 0 {
		return "line " + strconv.Itoa(e.line) + ": " + errTemplateCalls
	}
	return errTemplateCalls
}

// checkCalls refuses template definitions (more than one template in the set) and calls,
// declarations of $ (the budgeted functions get $ as their data), and ranges nested deeper than
// maxRangeDepth.
func checkCalls(tree *parse.Tree, templates int) error {
	var err error
	if line := deepRange(tree.Root, 0); line > 0 {
		return fmt.Errorf("line %d: {{range}} may be nested at most %d deep", line, maxRangeDepth)
	}
	walk(tree.Root, func(n parse.Node) {
		if err != nil {
			return
		}
		switch n := n.(type) {
		case *parse.TemplateNode:
			err = &templateCallError{line: n.Line}
		case *parse.PipeNode:
			for _, v := range n.Decl {
				if len(v.Ident) > 0 && v.Ident[0] == "$" {
					err = fmt.Errorf("line %d: $ cannot be assigned", n.Line)
				}
			}
		}
	})
	if err == nil && templates > 1 {
		err = &templateCallError{}
	}
	return err
}

// deepRange returns the line of a range nested deeper than maxRangeDepth under n (depth ranges
// around it), 0 when there is none.
func deepRange(n parse.Node, depth int) int {
	var lists []*parse.ListNode
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return 0
		}
		for _, c := range n.Nodes {
			if line := deepRange(c, depth); line > 0 {
				return line
			}
		}
		return 0
	case *parse.IfNode:
		lists = []*parse.ListNode{n.List, n.ElseList}
	case *parse.WithNode:
		lists = []*parse.ListNode{n.List, n.ElseList}
	case *parse.RangeNode:
		if depth++; depth > maxRangeDepth {
			return n.Line
		}
		lists = []*parse.ListNode{n.List, n.ElseList}
	}
	for _, l := range lists {
		if line := deepRange(l, depth); line > 0 {
			return line
		}
	}
	return 0
}

// walk calls f for n and every node under it.
func walk(n parse.Node, f func(parse.Node)) {
	if n == nil || reflect.ValueOf(n).IsNil() {
		return
	}
	f(n)
	switch n := n.(type) {
	case *parse.ListNode:
		for _, c := range n.Nodes {
			walk(c, f)
		}
	case *parse.ActionNode:
		walk(n.Pipe, f)
	case *parse.IfNode:
		walk(n.Pipe, f)
		walk(n.List, f)
		walk(n.ElseList, f)
	case *parse.RangeNode:
		walk(n.Pipe, f)
		walk(n.List, f)
		walk(n.ElseList, f)
	case *parse.WithNode:
		walk(n.Pipe, f)
		walk(n.List, f)
		walk(n.ElseList, f)
	case *parse.TemplateNode:
		walk(n.Pipe, f)
	case *parse.PipeNode:
		for _, c := range n.Cmds {
			walk(c, f)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			walk(a, f)
		}
	case *parse.ChainNode:
		walk(n.Node, f)
	}
}

// insertTicks starts every list that may run more than once (a range body, and every list
// inside one) under n with {{$budgetTick := _tick $}}. A list outside every range runs at most
// once, and its work is bounded by the template's size, so it needs none: a mail whose template
// has no range pays for no tick.
func insertTicks(n parse.Node, inLoop bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			insertTicks(c, inLoop)
		}
		if inLoop {
			n.Nodes = append([]parse.Node{tickAction(n.Position())}, n.Nodes...)
		}
	case *parse.IfNode:
		insertTicks(n.List, inLoop)
		insertTicks(n.ElseList, inLoop)
	case *parse.WithNode:
		insertTicks(n.List, inLoop)
		insertTicks(n.ElseList, inLoop)
	case *parse.RangeNode:
		insertTicks(n.List, true)
		insertTicks(n.ElseList, inLoop)
	}
}

func tickAction(pos parse.Pos) *parse.ActionNode {
	return &parse.ActionNode{NodeType: parse.NodeAction, Pos: pos, Pipe: &parse.PipeNode{
		NodeType: parse.NodePipe, Pos: pos,
		Decl: []*parse.VariableNode{{NodeType: parse.NodeVariable, Pos: pos, Ident: []string{tickVar}}},
		Cmds: []*parse.CommandNode{budgetCall(tickFunc, pos)},
	}}
}

// budgetCall is the command "name $".
func budgetCall(name string, pos parse.Pos) *parse.CommandNode {
	return &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: []parse.Node{
		parse.NewIdentifier(name).SetPos(pos), dollar(pos)}}
}

func dollar(pos parse.Pos) *parse.VariableNode {
	return &parse.VariableNode{NodeType: parse.NodeVariable, Pos: pos, Ident: []string{"$"}}
}

// passBudget makes every call of a budgeted function under n pass $ first: "printf x" as a
// command becomes "printf $ x", and a bare printf used as an argument (called without arguments,
// "print printf" or "printf.X") becomes "(printf $)". html/template's _eval_args_ becomes the
// budgeted argsFunc.
func passBudget(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n != nil {
			for _, c := range n.Nodes {
				passBudget(c)
			}
		}
	case *parse.ActionNode:
		passBudget(n.Pipe)
	case *parse.IfNode:
		passBranch(&n.BranchNode)
	case *parse.RangeNode:
		passBranch(&n.BranchNode)
	case *parse.WithNode:
		passBranch(&n.BranchNode)
	case *parse.PipeNode:
		if n != nil {
			for _, c := range n.Cmds {
				passCommand(c)
			}
		}
	case *parse.ChainNode:
		n.Node = passArg(n.Node)
	}
}

func passBranch(b *parse.BranchNode) {
	passBudget(b.Pipe)
	passBudget(b.List)
	passBudget(b.ElseList)
}

func passCommand(c *parse.CommandNode) {
	for i := 1; i < len(c.Args); i++ {
		c.Args[i] = passArg(c.Args[i])
	}
	if len(c.Args) == 0 {
		return
	}
	id, ok := c.Args[0].(*parse.IdentifierNode)
	if !ok {
		c.Args[0] = passArg(c.Args[0])
		return
	}
	if id.Ident == "_eval_args_" {
		id.Ident = argsFunc
	}
	if budgeted[id.Ident] {
		c.Args = append([]parse.Node{id, dollar(id.Pos)}, c.Args[1:]...)
	}
}

// passArg returns what replaces the argument a.
func passArg(a parse.Node) parse.Node {
	id, ok := a.(*parse.IdentifierNode)
	if !ok {
		passBudget(a)
		return a
	}
	if id.Ident == "_eval_args_" {
		id.Ident = argsFunc
	}
	if !budgeted[id.Ident] {
		return a
	}
	return &parse.PipeNode{NodeType: parse.NodePipe, Pos: id.Pos, Cmds: []*parse.CommandNode{budgetCall(id.Ident, id.Pos)}}
}

package dispatch

import (
	"text/template/parse"

	"github.com/regulars/regulars/campaigns"
)

// extraNames are the names, in a template, of what shows a member's extras (the tier and
// discount, the points balance, the stamp card: models.RecipientExtras, the costly part of a
// recipient row): campaigns.MemberData's fields and campaigns.Data's methods that read them.
// A field or method added to either is an extra until it is listed in baseNames
// (TestEveryMemberFieldIsBaseOrExtra keeps the two lists complete).
var extraNames = map[string]bool{"Tier": true, "Discount": true, "DiscountText": true, "Points": true,
	"Stamps": true, "StampsNeeded": true, "StampCard": true}

// baseNames are the member's fields and the render data's methods that need no extras.
var baseNames = map[string]bool{"FirstName": true, "Name": true, "Card": true, "HomeStore": true, "Language": true,
	"Barcode": true, "Voucher": true}

// needsExtras tells whether campaign c's templates may show a member's extras, so that the
// run's snapshot copies them (models.RecipientSnapshot) rather than the base alone
// (models.RecipientBase): looking them up was most of the snapshot's cost, and most campaigns
// show none. It errs towards true: a template that does not parse, or that uses the member or
// the whole data as a value ({{.Member}}, {{.}} at the top, {{$}}), needs them.
func needsExtras(c *campaigns.Campaign) bool {
	for _, src := range []string{c.Subject, c.Text, c.HTML} {
		if src != "" && templateNeedsExtras(src) {
			return true
		}
	}
	return false
}

// templateNeedsExtras is needsExtras for one template's source.
func templateNeedsExtras(src string) bool {
	t := parse.New("campaign")
	t.Mode = parse.SkipFuncCheck
	trees := map[string]*parse.Tree{}
	if _, err := t.Parse(src, "", "", trees); err != nil {
		return true
	}
	w := extrasWalker{}
	for _, tree := range trees {
		if tree.Root != nil {
			w.node(tree.Root, true)
		}
	}
	return w.found
}

// extrasWalker looks through a template's tree for extras. dotWhole tells that dot may be the
// whole render data or the whole member, so that printing it would show their extras.
type extrasWalker struct{ found bool }

func (w *extrasWalker) node(n parse.Node, dotWhole bool) {
	switch n := n.(type) {
	case nil:
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			w.node(c, dotWhole)
		}
	case *parse.TextNode, *parse.CommentNode, *parse.BreakNode, *parse.ContinueNode:
	case *parse.ActionNode:
		w.pipe(n.Pipe, dotWhole)
	case *parse.IfNode:
		w.branch(&n.BranchNode, dotWhole, dotWhole)
	case *parse.WithNode:
		w.branch(&n.BranchNode, dotWhole, dotWhole && !narrows(n.Pipe))
	case *parse.RangeNode:
		w.branch(&n.BranchNode, dotWhole, dotWhole && !narrows(n.Pipe))
	case *parse.TemplateNode:
		w.pipe(n.Pipe, dotWhole)
	default:
		w.found = true
	}
}

// branch walks an if, with or range: its pipeline and else branch see the outer dot, its body
// inner.
func (w *extrasWalker) branch(b *parse.BranchNode, outer, inner bool) {
	w.pipe(b.Pipe, outer)
	w.node(b.List, inner)
	w.node(b.ElseList, outer)
}

func (w *extrasWalker) pipe(p *parse.PipeNode, dotWhole bool) {
	if p == nil {
		return
	}
	for _, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			w.arg(arg, dotWhole)
		}
	}
}

func (w *extrasWalker) arg(n parse.Node, dotWhole bool) {
	switch n := n.(type) {
	case *parse.FieldNode:
		w.idents(n.Ident)
	case *parse.ChainNode:
		w.idents(n.Field)
		w.arg(n.Node, dotWhole)
	case *parse.VariableNode:
		if len(n.Ident) == 1 && n.Ident[0] == "$" {
			w.found = true // the whole data
		}
		w.idents(n.Ident[1:])
	case *parse.DotNode:
		if dotWhole {
			w.found = true
		}
	case *parse.PipeNode:
		w.pipe(n, dotWhole)
	case *parse.IdentifierNode, *parse.StringNode, *parse.NumberNode, *parse.BoolNode, *parse.NilNode:
	default:
		w.found = true
	}
}

// idents checks a chain of field or method names: an extra's name anywhere in it, or the
// member as a whole at its end ({{.Member}}, {{$m := .Member}}, {{with .Member}}).
func (w *extrasWalker) idents(ids []string) {
	for _, id := range ids {
		if extraNames[id] {
			w.found = true
		}
	}
	if len(ids) > 0 && ids[len(ids)-1] == "Member" {
		w.found = true
	}
}

// narrows tells whether a with's or range's pipeline is a single field chain that is not the
// member ({{with .Member.FirstName}}), so that dot inside is that value rather than anything
// holding the extras.
func narrows(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	var ids []string
	switch n := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode:
		ids = n.Ident
	case *parse.VariableNode:
		ids = n.Ident[1:]
	default:
		return false
	}
	return len(ids) > 0 && ids[len(ids)-1] != "Member"
}

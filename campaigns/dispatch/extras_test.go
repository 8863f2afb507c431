package dispatch

import (
	"reflect"
	"testing"

	"github.com/regulars/regulars/campaigns"
)

// TestEveryMemberFieldIsBaseOrExtra: each field of campaigns.MemberData and each method of
// campaigns.Data is listed as base or extra (a new one must be placed: a snapshot without the
// extras must never show an empty tier or balance), and a template naming it needs the extras
// exactly when it is one.
func TestEveryMemberFieldIsBaseOrExtra(t *testing.T) {
	check := func(name, src string) {
		t.Helper()
		if baseNames[name] == extraNames[name] {
			t.Errorf("%s is listed as base %v and as extra %v: list it in exactly one", name, baseNames[name], extraNames[name])
		}
		if got := templateNeedsExtras(src); got != extraNames[name] {
			t.Errorf("%s: needs extras %v, want %v", src, got, extraNames[name])
		}
	}
	member := reflect.TypeFor[campaigns.MemberData]()
	for i := range member.NumField() {
		f := member.Field(i).Name
		check(f, "{{.Member."+f+"}}")
	}
	data := reflect.TypeFor[*campaigns.Data]()
	for i := range data.NumMethod() {
		m := data.Method(i).Name
		check(m, "{{.Member.FirstName}} {{."+m+"}}")
	}
}

func TestTemplateNeedsExtras(t *testing.T) {
	for _, c := range []struct {
		src  string
		want bool
	}{
		{"New records are in.", false},
		{"Hi {{.Member.FirstName}}, card {{.Member.Card}} at {{.Member.HomeStore}}", false},
		{"{{with .Member.FirstName}}Hi {{.}},{{else}}Hi,{{end}} {{.Links.Unsubscribe}}", false},
		{`{{with $n := .Member.Name}}{{$n}}{{end}} {{.Barcode}} {{.Voucher "coffee"}}`, false},
		{`{{range $i, $c := .Member.Card}}{{$c}}{{end}}`, false},
		{"{{if .Member.Tier}}{{.Member.Tier}} member{{end}}", true},
		{"{{.Member.DiscountText}}", true},
		{"{{printf \"%d\" .Member.Points}}", true},
		{"{{.StampCard}}", true},
		{"{{.Member}}", true},
		{"{{with .Member}}{{.FirstName}}{{end}}", true},
		{"{{$m := .Member}}{{$m.FirstName}}", true},
		{"{{.}}", true},
		{"{{printf \"%v\" .}}", true},
		{"{{$}}", true},
		{"{{with .Links}}{{.Unsubscribe}}{{end}}{{.}}", true},
		{`{{define "x"}}{{.Member.Stamps}}{{end}}hello`, true},
		{"{{(.Member).Points}}", true},
		{"{{.Member.FirstName", true}, // does not parse: the safe side
	} {
		if got := templateNeedsExtras(c.src); got != c.want {
			t.Errorf("%s: needs extras %v, want %v", c.src, got, c.want)
		}
	}
}

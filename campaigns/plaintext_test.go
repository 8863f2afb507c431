package campaigns

import (
	"context"
	"errors"
	"testing"
)

// TestFieldsOnlyWritesWhatTextTemplateWrites runs each template both ways, fieldsOnly where
// plainText chose it and text/template, for members with odd values, and checks the output and
// the size budget are the same.
func TestFieldsOnlyWritesWhatTextTemplateWrites(t *testing.T) {
	for _, tc := range []struct {
		src   string
		plain bool
	}{
		{"Hello {{.Member.FirstName}}, new records are in", true},
		{"{{.Member.Points}} points, {{.Member.Stamps}}/{{.Member.StampsNeeded}} stamps", true},
		{"only text, no action", true},
		{"", true},
		{"{{- .Member.Name -}}  , {{.Member.Card}}\n{{.Member.Discount}}{{.Member.DiscountText}}{{.Member.Tier}}{{.Member.HomeStore}}", true},
		{"{{/* a comment */}}{{.Member.Language}}", true},
		{`{{.Member.FirstName | printf "%s"}}`, false},
		{"{{with .Member.FirstName}}{{.}}{{end}}", false},
		{"{{.Links.Preferences}}", false},
		{"{{.Barcode}}", false},
		{"{{.Member}}", false},
		{"{{$x := .Member.Name}}{{$x}}", false},
		{"{{.Member.Nope}}", false},
		{"{{range 3}}{{.}}{{end}}", false},
	} {
		tmpl, err := sandboxText("subject", tc.src)
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		exec := plainText(tmpl)
		if _, plain := exec.(fieldsOnly); plain != tc.plain {
			t.Errorf("%q: fieldsOnly %v, want %v", tc.src, plain, tc.plain)
			continue
		}
		if !tc.plain {
			continue
		}
		odd := MemberData{FirstName: "<Åse&\x00>", Name: " Åse  Ødegård ", Card: "0", Points: -12, Stamps: 0, StampsNeeded: 10}
		for _, m := range []MemberData{sampleMember, odd, {}} {
			for _, left := range []int{RenderBytes, 5} {
				got, gotErr := runWith(exec, m, left)
				want, wantErr := runWith(tmpl, m, left)
				if got != want || !errors.Is(gotErr, errOverSize) != !errors.Is(wantErr, errOverSize) || (gotErr == nil) != (wantErr == nil) {
					t.Errorf("%q with %+v, budget %d: fieldsOnly %q, %v; text/template %q, %v", tc.src, m, left, got, gotErr, want, wantErr)
				}
			}
		}
	}
}

// runWith runs e for m with left bytes of budget.
func runWith(e executor, m MemberData, left int) (string, error) {
	b := newBudget(context.Background())
	b.left = left
	return run(e, &Data{Member: m, Links: templateLinks, budget: b, shared: &renderShared{}})
}

package tracking

import (
	"context"
	"fmt"
	"html"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// anchorHrefRE is the regular expression nextHref implements. The rewrite used it until it
// showed up at 19% of the sender's CPU, with a greedy (?:…)? that made it take the last of
// several hrefs in a tag; this one, with ??, takes the first, as browsers do.
var anchorHrefRE = regexp.MustCompile(`(?i)(<a\s(?:[^>]*?\s)??href\s*=\s*)(?:"([^"]*)"|'([^']*)')`)

// TestNextHrefMatchesTheRegexp compares the byte scanner with the regular expression on
// hand-written cases and on random strings built from the characters that matter.
func TestNextHrefMatchesTheRegexp(t *testing.T) {
	t.Parallel()
	cases := []string{
		``, `<a`, `<a `, `<a href="x">`, `<A HREF='x'>`, `<a  href = "x" >`, `<a\thref=\n"x">`,
		`<a class="y" href="x">`, `<a data-href="y" href="x">`, `<a href=x>`, `<a name="n">t</a><a href="x">`,
		`<a title="a > b" href="x">`, `<a title="see href='y'" href="x">`, `<a <a href="x">`,
		`<abbr href="x">`, `<a href="unterminated`, `<a href='a"b'>`, `<a href="a'b">`, `<a\fhref="x">`,
		`<a href="https://shop.example/new?a=1&amp;b=2">x</a> <a href='mailto:a@b'>m</a>`,
		`<a hrefx="y" href="x">`, `<a href ="x" href="y">`, `<a\vhref="x">`, "<a\u00a0href=\"x\">",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"<", ">", "a", "A", " ", "\t", "\n", "href", "HrEf", "=", `"`, "'", "x", "<a ", "b", "&amp;", "\v"}
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(30) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, body := range cases {
		var got [][]int
		for _, m := range allHrefs(body) {
			vs, ve := m.quote+1, m.end-1
			if body[m.quote] == '"' {
				got = append(got, []int{m.start, m.end, m.start, m.quote, vs, ve, -1, -1})
			} else {
				got = append(got, []int{m.start, m.end, m.start, m.quote, -1, -1, vs, ve})
			}
		}
		want := anchorHrefRE.FindAllStringSubmatchIndex(body, -1)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("body %q:\nscanner %v\nregexp  %v", body, got, want)
		}
	}
}

// TestApplyMatchesRewrite checks that Tracker.Apply's one-pass rewrite gives what Rewrite with
// SignClick tokens gives.
func TestApplyMatchesRewrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	base := "https://club.example.com/x&y"
	run := f.run(t, f.campaignID, t0)
	kari := f.member(t, "kari")
	body := `<html><body><a href="https://shop.example.com/a?x=1&amp;y=2">A</a> <a href="mailto:x@example.com">m</a>
<A class="k" HREF='https://shop.example.com/b'>B</A> <a href="https://club.example.com/x&amp;y/unsubscribe?token=t">u</a>
<a href="https://shop.example.com/a?x=1&amp;y=2">again</a></body></html>`
	tr, err := NewTracker(ctx, f.db, secret, base, f.campaignID, ExtractLinks(body, base))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the same output every time
		got := tr.Apply(run, kari, body)
		urls := ExtractLinks(body, base)
		ids, err := LinkIDs(ctx, f.db, f.campaignID, urls)
		if err != nil {
			t.Fatal(err)
		}
		if len(urls) != 2 || len(ids) != 2 {
			t.Fatalf("links %q ids %v", urls, ids)
		}
		want := Rewrite(body, ids, func(id int64) string {
			return base + "/c/" + SignClick(secret, Ref{RunID: run, MemberID: kari, LinkID: id})
		})
		if got != want {
			t.Fatalf("Apply =\n%s\nRewrite =\n%s", got, want)
		}
		if !strings.Contains(got, html.EscapeString(base)+"/c/") || strings.Contains(got, `"https://shop.example.com`) {
			t.Fatalf("links not rewritten: %s", got)
		}
	}
}

func BenchmarkApply(b *testing.B) {
	tr := &Tracker{base: "https://club.example", ids: map[string]int64{"https://shop.example/new": 7}}
	tr.clickPrefix = tr.base + "/c/"
	secret := []byte("0123456789abcdef0123456789abcdef")
	tr.macs.New = func() any { return newMAC(secret) }
	body := `<h1>New records are in</h1><p>Hello Kari, forty new LPs arrived this week, from jazz to krautrock.</p>` +
		`<p><a href="https://shop.example/new">See them</a> before Saturday.</p><div style="margin-top:32px"><p>Why</p>` +
		`<a href="https://club.example/preferences?token=abc">Preferences</a> &middot; <a href="https://club.example/unsubscribe?token=abc">Unsubscribe</a></div>`
	b.ReportAllocs()
	for i := range b.N {
		_ = tr.Apply(1, int64(i+1), body)
	}
}

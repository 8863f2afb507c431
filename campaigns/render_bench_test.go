package campaigns

import (
	"context"
	"testing"
	"time"

	"github.com/regulars/regulars/internal/cputime"
)

// benchCampaigns are a small campaign (cmd/benchsend's) and a larger one with conditions, a
// range, printf and the member's links.
var benchCampaigns = []struct {
	name string
	c    Campaign
}{
	{"small", Campaign{Subject: "Hello {{.Member.FirstName}}, new records are in",
		HTML: `<h1>New records are in</h1><p>Hello {{.Member.FirstName}}, forty new LPs arrived this week, ` +
			`from jazz to krautrock.</p><p><a href="https://shop.example/new">See them</a> before Saturday.</p>`,
		Text: "Hello {{.Member.FirstName}}, forty new LPs arrived this week, from jazz to krautrock.\n" +
			"See them before Saturday: https://shop.example/new"}},
	{"rich", Campaign{Subject: "{{with .Member.FirstName}}{{.}}, {{end}}{{if .Member.Discount}}{{.Member.Discount}}% off{{else}}new records{{end}}",
		HTML: `<html><body><h1>{{with .Member.FirstName}}Hi {{.}}!{{else}}Hi!{{end}}</h1>` +
			`{{if .Member.Tier}}<p>As a {{.Member.Tier}} member you get {{printf "%s" .Member.Discount}}% off.</p>{{end}}` +
			`<table>{{range $i := 5}}<tr><td>Record {{$i}}</td><td>{{printf "%.2f" 199.5}} NOK</td>` +
			`<td><a href="https://shop.example/lp/{{$i}}?card={{$.Member.Card}}">Buy</a></td></tr>{{end}}</table>` +
			`<p>Your store: {{.Member.HomeStore}}</p><p><a href="{{.Links.Preferences}}">Preferences</a> ` +
			`<a href="{{.Links.Unsubscribe}}">Unsubscribe</a></p></body></html>`,
		Text: "{{with .Member.FirstName}}Hi {{.}}!{{end}}\n{{range $i := 5}}Record {{$i}}: {{printf \"%.2f\" 199.5}} NOK\n{{end}}" +
			"Preferences: {{.Links.Preferences}}\nUnsubscribe: {{.Links.Unsubscribe}}"}},
}

// BenchmarkRender renders one mail of each bench campaign for a member with real links, as
// the sender does for every recipient.
func BenchmarkRender(b *testing.B) {
	links := MemberLinks("https://club.example", []byte("0123456789abcdef0123456789abcdef"), 42, time.Now())
	for _, bc := range benchCampaigns {
		b.Run(bc.name, func(b *testing.B) {
			compiled, err := Compile(&bc.c, testFrom)
			if err != nil {
				b.Fatal(err)
			}
			r := Recipient{RunID: 1, MemberID: 42, To: "kari@example.com", Member: kari(), Links: links}
			ctx := context.Background()
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				if _, err := compiled.Render(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
			// CPU time of the process (GC included) per mail: steadier than wall time on a
			// busy machine.
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

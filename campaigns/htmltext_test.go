package campaigns

import (
	"context"
	"strings"
	"testing"
)

func TestHTMLToText(t *testing.T) {
	t.Parallel()
	src := `<html><head><title>x</title><style>p { color: red }</style></head><body>
<h1>Hello {{with .Member.FirstName}}{{.}}{{end}} &amp; welcome</h1>
<p>Our <b>new</b>
   records are in.</p><!-- a note -->
<ul><li>Jazz</li><li>Folk &lt;3</li></ul>
<p><a href="https://shop.example/news">Read more</a> or <a href="https://shop.example/">https://shop.example/</a></p>
<p><img src="https://shop.example/logo.png" alt="Vinyl shop"></p>
<table><tr><td>Your card</td><td>{{.Barcode}}</td></tr></table>
<p><a href="{{.Links.Preferences}}">Preferences</a></p>
</body></html>`
	want := `Hello {{with .Member.FirstName}}{{.}}{{end}} & welcome

Our new records are in.

- Jazz
- Folk <3

Read more: https://shop.example/news or https://shop.example/

Vinyl shop

Your card

{{.Barcode}}

Preferences: {{.Links.Preferences}}
`
	if got := HTMLToText(src); got != want {
		t.Errorf("HTMLToText:\n%s\nwant:\n%s", got, want)
	}
	// The result is a text template that renders, with the member's links where the HTML had them.
	c, err := Compile(&Campaign{Subject: "s", Text: HTMLToText(src)}, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Preview(context.Background(), kari(), testLinks)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Hello Kari & welcome", "7012345678908", "Preferences: " + testLinks.Preferences} {
		if !strings.Contains(out.Text, s) {
			t.Errorf("rendered text lacks %q:\n%s", s, out.Text)
		}
	}
	if got := HTMLToText(`{{if and .Member.Tier (eq .Member.Tier "a&amp;b")}}x{{end}}`); !strings.Contains(got, `"a&amp;b"`) {
		t.Errorf("an action was decoded: %s", got)
	}
}

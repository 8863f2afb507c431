package campaigns

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
)

// Shop is the shop as the starter templates show it: its name, its colour and its logo
// (REGULARS_SHOP_NAME, REGULARS_SHOP_COLOR, REGULARS_SHOP_LOGO_URL).
type Shop struct {
	Name string
	// Color is the accent colour, "#rrggbb": the header band and the buttons.
	Color string
	// LogoURL is an http(s) URL of the logo image mail clients load; empty: the name is
	// written in the header instead.
	LogoURL string
	// URL is the shop's web site, the starters' button; empty: no button.
	URL string
}

// WithDefaults fills what s leaves empty: the name from the sender from ("Deli <club@…>"),
// else "Our shop"; the colour DefaultShopColor.
func (s Shop) WithDefaults(from string) Shop {
	if s.Name == "" {
		s.Name = "Our shop"
		if a, err := mail.ParseAddress(from); err == nil && a.Name != "" {
			s.Name = a.Name
		}
	}
	if s.Color == "" {
		s.Color = DefaultShopColor
	}
	return s
}

// DefaultShopColor is the accent colour when none is set (the console's blue).
const DefaultShopColor = "#1f5fbf"

var shopColorRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// Check tells what is wrong with s, naming the setting: a starter puts these into every mail.
func (s Shop) Check() error {
	// No "{{" or "}}": the name becomes part of campaign templates, where it would be an action.
	if strings.TrimSpace(s.Name) == "" || len(s.Name) > 100 || strings.ContainsAny(s.Name, "\r\n") ||
		strings.Contains(s.Name, "{{") || strings.Contains(s.Name, "}}") {
		return fmt.Errorf("REGULARS_SHOP_NAME must be one line of 1 to 100 characters without {{ or }}, not %q", s.Name)
	}
	if !shopColorRE.MatchString(s.Color) {
		return fmt.Errorf("REGULARS_SHOP_COLOR must be a colour such as %s, not %q", DefaultShopColor, s.Color)
	}
	for _, u := range []struct{ name, value string }{{"REGULARS_SHOP_LOGO_URL", s.LogoURL}, {"REGULARS_SHOP_URL", s.URL}} {
		if u.value != "" && !webURL(u.value) {
			return fmt.Errorf("%s must be an http(s) URL, not %q", u.name, u.value)
		}
	}
	return nil
}

// webURL tells whether s is an absolute http(s) URL that can go into a template as it is.
func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && len(s) <= 2000 &&
		!strings.ContainsAny(s, "{}\"<> ")
}

// Starter is a campaign to start from: a subject and an HTML body written for the shop, which
// the marketer then edits. Its text body is HTMLToText of the HTML.
type Starter struct {
	Key, Name, Description string
	Subject, HTML, Text    string
}

// starterList is the starters in the order the editor offers them; the first is its default.
var starterList = []struct{ key, name, description, subject string }{
	{"newsletter", "Newsletter", "News from the shop, with the member's card and discount at the bottom.",
		"{{with .Member.FirstName}}{{.}}, news{{else}}News{{end}} from [[.Name]]"},
	{"offer", "Offer", "One offer with a big headline: the member's discount and card barcode (or a voucher).",
		"{{with .Member.FirstName}}{{.}}, a{{else}}A{{end}} treat for you at [[.Name]]"},
	{"winback", "Win-back", "For members who have not been in for a while: a warm note and their stamp card.",
		"{{with .Member.FirstName}}{{.}}, we{{else}}We{{end}} miss you at [[.Name]]"},
}

//go:embed starters/*.html
var starterFiles embed.FS

// starterTemplates are the starters' bodies. They are templates twice over: [[ ]] is filled
// here with the Shop (escaped by html/template), {{ }} is left as written for the campaign
// template, which fills in the member when each mail is made.
var starterTemplates = htmltemplate.Must(htmltemplate.New("").Delims("[[", "]]").ParseFS(starterFiles, "starters/*.html"))

// StarterKeys are the starters' keys in the order the editor offers them.
func StarterKeys() []string {
	keys := make([]string, len(starterList))
	for i, s := range starterList {
		keys[i] = s.key
	}
	return keys
}

// Starters returns every starter written for shop.
func Starters(shop Shop) ([]Starter, error) {
	out := make([]Starter, 0, len(starterList))
	for _, s := range starterList {
		st, err := MakeStarter(s.key, shop)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// MakeStarter returns starter key written for shop; ok false when there is no such starter.
func MakeStarter(key string, shop Shop) (Starter, error) {
	for _, s := range starterList {
		if s.key != key {
			continue
		}
		var body, subject bytes.Buffer
		if err := starterTemplates.ExecuteTemplate(&body, s.key+".html", shop); err != nil {
			return Starter{}, err
		}
		// The subject is plain text: the shop's name goes in unescaped.
		subject.WriteString(strings.ReplaceAll(s.subject, "[[.Name]]", shop.Name))
		return Starter{Key: s.key, Name: s.name, Description: s.description,
			Subject: subject.String(), HTML: body.String(), Text: HTMLToText(body.String())}, nil
	}
	return Starter{}, fmt.Errorf("no starter %q", key)
}

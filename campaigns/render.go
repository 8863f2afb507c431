// Package campaigns holds marketing campaigns: the stored campaign (campaign.go), the rendering
// of its templates into one mail per member (render.go) under the template sandbox (sandbox.go),
// the member links put in after rendering (memberlinks.go), the template links click tracking
// registers (links.go), previews and test sends. Scheduling and sending runs are in
// campaigns/dispatch, which builds on Compile and Render here.
package campaigns

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	htmltemplate "html/template"
	"io"
	"net/mail"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/templates"
)

// Template data. A campaign's subject, HTML and text are Go templates (html/template for the
// HTML body, text/template for the subject and the text body) executed with Data:
//
//	{{.Member.FirstName}} {{.Member.Name}} {{.Member.Card}} {{.Member.HomeStore}}
//	{{.Member.Tier}} {{.Member.Discount}} {{.Member.DiscountText}} {{.Member.Points}} {{.Member.Stamps}}
//	{{.Member.StampsNeeded}} {{.Links.Preferences}} {{.Links.Unsubscribe}}
//	{{.Barcode}} {{.StampCard}} {{.Voucher.Code}} {{(.Voucher "coffee").Code}}
//
// Only the built-in actions and functions of text/template exist; a template naming any other
// function fails to parse, so it is refused when the campaign is saved. {{define}}, {{template}}
// and {{block}} are refused too, and every render runs under a budget (see sandbox.go).
//
// .Links are never the member's links: templates see fixed placeholder URLs, and the member's
// links replace them after rendering, only where one is the whole href of an <a> in the HTML or a
// word of its own in the text (see memberlinks.go). So no template can put a member's token anywhere
// else (an <img src>, another URL) or transform it.

// Data is what a campaign template sees.
type Data struct {
	Member MemberData
	Links  Links

	html       bool
	barcodeCID string
	used       bool    // Barcode was called: the mail carries the barcode image
	budget     *budget // of the render this data is for (see sandbox.go)
	// shared is the mail's vouchers (vouchers.go); voucherImages the codes whose barcode the
	// HTML shows.
	shared        *renderShared
	voucherImages []string
}

// Barcode is the member's card barcode: in the HTML body an <img> of the inline barcode image
// (added to the mail only when a template uses it), in the subject and text body the card number.
func (d *Data) Barcode() any {
	if !d.html {
		return d.Member.Card
	}
	d.used = true
	return htmltemplate.HTML(`<img src="cid:` + d.barcodeCID + `" width="400" height="160" alt="` +
		htmltemplate.HTMLEscapeString(d.Member.Card) + `">`)
}

// maxStampCard is the largest stamp card StampCard draws as a row; a larger one is told as
// figures only.
const maxStampCard = 50

// StampCard is the member's stamp card: a row of stamps, filled (●) then empty (○), and the
// figures, "●●●○○○○○○○ 3/10"; in the HTML body the row is hidden from screen readers, which read
// the figures. Empty when the member has no stamp card (MemberData.StampsNeeded 0).
func (d *Data) StampCard() any {
	m := d.Member
	if m.StampsNeeded <= 0 {
		return ""
	}
	figures := strconv.Itoa(m.Stamps) + "/" + strconv.Itoa(m.StampsNeeded)
	if m.StampsNeeded > maxStampCard {
		return figures
	}
	row := strings.Repeat("●", m.Stamps) + strings.Repeat("○", m.StampsNeeded-m.Stamps)
	if !d.html {
		return row + " " + figures
	}
	return htmltemplate.HTML(`<span aria-hidden="true">` + row + `</span> ` + figures)
}

// MemberData are the member fields templates may use.
type MemberData struct {
	// FirstName is the first word of Name; empty when the member gave no name, so
	// {{with .Member.FirstName}} can leave the greeting out.
	FirstName string
	Name      string
	Card      string
	// HomeStore is the home store's code, empty when none.
	HomeStore string
	// Tier is the member's tier name now, empty below every threshold.
	Tier string
	// Discount is the tier's discount in percent without trailing zeros ("10", "12.5"), empty
	// when the member has none, so {{if .Member.Discount}} tests it.
	Discount string
	// DiscountText is Discount as a reader expects it, with the percent sign: "10 %", "12.5 %";
	// empty when Discount is. {{.Member.Discount}} alone prints a bare "10".
	DiscountText string
	// Language is the member's mail language; the footer is written in it.
	Language string
	// Points is the member's points balance (the sum of their ledger; 0 without a program).
	Points int
	// Stamps and StampsNeeded are the member's stamp card when the program is a stamp program
	// (models.StampCostSQL): the stamps filled (the balance, at most the card's size) and the
	// card's size, the cost of the cheapest active reward. Both are 0 otherwise, so that
	// {{if .Member.StampsNeeded}} tests for a card.
	Stamps       int
	StampsNeeded int
}

// Links are the member's links to the club pages.
type Links struct {
	Preferences string
	Unsubscribe string
}

// BarcodeCID is the content id of the inline barcode image.
const BarcodeCID = "barcode"

// PreferencesTTL is how long the preferences link in a campaign mail works; unsubscribe links
// never expire.
const PreferencesTTL = 90 * 24 * time.Hour

// SampleMember is the made-up member previews show when no member is chosen: the one
// templates are executed with when a campaign or flow is saved.
var SampleMember = sampleMember

// sampleMember is what templates are executed with when a campaign is saved, so that a field
// that does not exist is refused then rather than when the campaign goes out.
var sampleMember = MemberData{FirstName: "Kari", Name: "Kari Nordmann", Card: "7012345678908",
	HomeStore: "oslo-1", Tier: "Gold", Discount: "10", DiscountText: "10 %", Language: templates.DefaultLanguage,
	Points: 7, Stamps: 7, StampsNeeded: 10}

// NewMemberData fills MemberData from a stored member and its tier (nil: none) and discount.
func NewMemberData(m *models.Member, tier *string, discount float64) MemberData {
	d := MemberData{Name: m.Name, Card: m.Card, HomeStore: m.HomeStore, Language: m.Language}
	if fields := strings.Fields(m.Name); len(fields) > 0 {
		d.FirstName = fields[0]
	}
	if tier != nil {
		d.Tier = *tier
	}
	if discount > 0 {
		d.Discount = strconv.FormatFloat(discount, 'f', -1, 64)
		d.DiscountText = d.Discount + " %"
	}
	return d
}

// AddPoints sets d's points: the balance and, when stampCost is more than 0 (a stamp program,
// models.StampCostSQL), the stamp card. A function rather than a method, so that no template
// can call it.
func AddPoints(d *MemberData, balance, stampCost int) {
	d.Points = balance
	if stampCost > 0 {
		d.Stamps, d.StampsNeeded = models.StampsFilled(balance, stampCost), stampCost
	}
}

// MemberLinks are the signed links of member id: preferences valid for PreferencesTTL from now,
// unsubscribe for ever (the same tokens the club pages verify).
func MemberLinks(baseURL string, secret []byte, memberID int64, now time.Time) Links {
	link := func(page, purpose string, expires time.Time) string {
		return strings.TrimRight(baseURL, "/") + "/" + page + "?token=" +
			url.QueryEscape(models.SignToken(secret, purpose, memberID, expires))
	}
	return Links{
		Preferences: link("preferences", models.TokenPreferences, now.Add(PreferencesTTL)),
		Unsubscribe: link("unsubscribe", models.TokenUnsubscribe, time.Time{}),
	}
}

// PlaceholderToken stands in for the token in the links of previews and test sends. The club
// pages refuse it, so that nobody who receives a test mail or sees a preview can change or read
// a real member's preferences through it.
const PlaceholderToken = "preview"

// PlaceholderLinks are the links of previews and test sends (see PlaceholderToken).
func PlaceholderLinks(baseURL string) Links {
	base := strings.TrimRight(baseURL, "/")
	return Links{Preferences: base + "/preferences?token=" + PlaceholderToken,
		Unsubscribe: base + "/unsubscribe?token=" + PlaceholderToken}
}

// Compiled is a campaign's parsed templates, ready to render one mail per member. Build it once
// per run with Compile; Render is safe for concurrent use.
type Compiled struct {
	from    string // "Name <address>" or a bare address
	fromDom string // the domain of from's address, for Message-IDs
	// mailtoUnsub is the mailto unsubscribe target, "mailto:<from's bare address>?subject=unsubscribe",
	// built once (it is the same in every mail).
	mailtoUnsub string
	subject     executor // a *template.Template, or fieldsOnly (see plainText)
	text        executor // nil when the campaign has no text body
	html        *htmltemplate.Template
}

// Compile parses c's templates (see sandbox.go). The mail's From is defaultFrom, the configured
// sender (REGULARS_MAIL_FROM); c.From counts only when it has the same address (its name may
// differ) or when no sender is configured, so that no campaign goes out under someone else's
// address with our DKIM signature (check refuses such a From when the campaign is saved). Errors
// are EINVALID *models.Error naming the field (subject, html, text, from) with the template's
// line.
func Compile(c *Campaign, defaultFrom string) (*Compiled, error) {
	fe := models.FieldErrors{}
	out := &Compiled{}
	out.from = defaultFrom
	if c.From != "" {
		own, err := mail.ParseAddress(c.From)
		if err != nil {
			fe.Add("from", "must be an email address, optionally with a name: \"Shop <news@shop.example>\"")
		} else if defaultFrom == "" || sameAddress(own.Address, defaultFrom) {
			out.from = c.From
		}
	}
	if out.from == "" {
		fe.Add("from", "is required: no default sender (REGULARS_MAIL_FROM) is configured")
	} else if addr, err := mail.ParseAddress(out.from); err != nil {
		fe.Add("from", "must be an email address, optionally with a name: \"Shop <news@shop.example>\"")
	} else {
		out.mailtoUnsub = "mailto:" + addr.Address + "?subject=unsubscribe"
		out.fromDom = addr.Address[strings.LastIndexByte(addr.Address, '@')+1:]
	}
	if t, err := sandboxText("subject", c.Subject); err != nil {
		fe.Add("subject", templateError(err))
	} else {
		out.subject = plainText(t)
	}
	if c.Text != "" {
		if t, err := sandboxText("text", c.Text); err != nil {
			fe.Add("text", templateError(err))
		} else {
			out.text = plainText(t)
		}
	}
	if c.HTML != "" {
		var err error
		if out.html, err = sandboxHTML("html", c.HTML); err != nil {
			fe.Add("html", templateError(err))
		}
	}
	if err := fe.Err("invalid campaign template"); err != nil {
		return nil, err
	}
	return out, nil
}

// sameAddress tells whether the address of from (a bare address or "Name <address>") is addr,
// ignoring case.
func sameAddress(addr, from string) bool {
	a, err := mail.ParseAddress(from)
	return err == nil && strings.EqualFold(a.Address, addr)
}

// Validate parses c's templates and executes them with a sample member under the render budget
// (and ctx), so that syntax errors, unknown functions, fields that do not exist, unsafe HTML
// contexts, member links used other than as a whole link, and templates over budget are refused
// when the campaign is saved. Errors name the field and, where there is one, the line.
func Validate(ctx context.Context, c *Campaign, defaultFrom string) error {
	compiled, err := Compile(c, defaultFrom)
	if err != nil {
		return err
	}
	_, err = compiled.execute(ctx, sampleMember, PlaceholderLinks("https://example.invalid"), SampleVouchers{})
	return err
}

// Rendered is a mail's rendered parts, footer included.
type Rendered struct {
	Subject string `json:"subject"`
	HTML    string `json:"html"`
	Text    string `json:"text"`
	// barcode tells whether the HTML shows the inline barcode image; vouchers the codes of the
	// voucher barcodes it shows.
	barcode  bool
	vouchers []string
}

// execute renders the three parts under one budget (see sandbox.go) and ctx, puts links where
// the templates have the placeholder links (see memberlinks.go), and adds the footer. Errors are
// EINVALID naming the field.
func (c *Compiled) execute(ctx context.Context, member MemberData, links Links, vouchers VoucherSource) (*Rendered, error) {
	fe := models.FieldErrors{}
	// What the render needs, in one allocation rather than six (a campaign renders once per
	// recipient): each part gets its own Data, as before.
	st := &renderState{budget: *newBudget(ctx), shared: renderShared{source: vouchers}}
	out, b, shared := &st.out, &st.budget, &st.shared
	var err error
	st.data[0] = Data{Member: member, Links: templateLinks, budget: b, shared: shared}
	if out.Subject, err = run(c.subject, &st.data[0]); err != nil {
		fe.Add("subject", templateError(err))
	} else if hasLinkPlaceholder(out.Subject) {
		fe.Add("subject", errLinkInSubject)
	}
	out.Subject = oneLine(out.Subject) // a header holds one line
	if c.text != nil {
		st.data[1] = Data{Member: member, Links: templateLinks, budget: b, shared: shared}
		if out.Text, err = run(c.text, &st.data[1]); err != nil {
			fe.Add("text", templateError(err))
		} else if out.Text, err = textLinks(out.Text, links); err != nil {
			fe.Add("text", err.Error())
		}
	}
	if c.html != nil {
		d := &st.data[2]
		*d = Data{Member: member, Links: templateLinks, html: true, barcodeCID: BarcodeCID, budget: b, shared: shared}
		if out.HTML, err = run(c.html, d); err != nil {
			fe.Add("html", templateError(err))
		} else if out.HTML, err = htmlLinks(out.HTML, links); err != nil {
			fe.Add("html", err.Error())
		}
		out.barcode = d.used
		out.vouchers = d.voucherImages
	}
	if err := fe.Err("invalid campaign template"); err != nil {
		return nil, err
	}
	addFooter(out, member.Language, links)
	return out, nil
}

// renderState is one render's result, budget, shared state and the Data of its three parts.
type renderState struct {
	out    Rendered
	budget budget
	shared renderShared
	data   [3]Data
}

// executor is what text/template and html/template templates have in common.
type executor interface {
	Execute(w io.Writer, data any) error
}

// buffers are run's output buffers, reused from mail to mail (a campaign sends many).
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func run(t executor, d *Data) (string, error) {
	buf := buffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 {
			buf.Reset()
			buffers.Put(buf)
		}
	}()
	buf.Reset()
	if err := t.Execute(&limitedWriter{w: buf, budget: d.budget}, d); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// oneLine is strings.Join(strings.Fields(s), " "), without allocating when s is already so.
func oneLine(s string) string {
	clean := len(s) == 0 || (s[0] != ' ' && s[len(s)-1] != ' ')
	for i := 0; clean && i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || (c <= ' ' && (c != ' ' || s[i+1] == ' ')) {
			clean = false // a rune strings.Fields may count as space, or two spaces in a row
		}
	}
	if clean {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// fieldsOnly is a text template made only of text and {{.Member.X}} (a subject such as "Hello
// {{.Member.FirstName}}, new records are in"), executed without text/template, whose reflection
// costs more per mail than such a template is worth. It writes what text/template writes: the
// text as it is and each field as fmt.Print prints it (a string as it is, an int in decimal),
// piece by piece through the same budgeted writer. Such a template has no range, so the sandbox
// put no tick into it either.
type fieldsOnly []fieldPiece

// fieldPiece is text, or the field of MemberData at index field (text "").
type fieldPiece struct {
	text  string
	field int // -1: text
}

// plainText returns t as fieldsOnly when it is one, else t.
func plainText(t *template.Template) executor {
	member := reflect.TypeFor[MemberData]()
	var pieces fieldsOnly
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			pieces = append(pieces, fieldPiece{text: string(n.Text), field: -1})
			continue
		case *parse.ActionNode:
			if len(n.Pipe.Decl) == 0 && len(n.Pipe.Cmds) == 1 && len(n.Pipe.Cmds[0].Args) == 1 {
				if f, ok := n.Pipe.Cmds[0].Args[0].(*parse.FieldNode); ok && len(f.Ident) == 2 && f.Ident[0] == "Member" {
					if sf, ok := member.FieldByName(f.Ident[1]); ok && sf.IsExported() && len(sf.Index) == 1 &&
						(sf.Type.Kind() == reflect.String || sf.Type.Kind() == reflect.Int) {
						pieces = append(pieces, fieldPiece{field: sf.Index[0]})
						continue
					}
				}
			}
		}
		return t // anything else: text/template executes it
	}
	return pieces
}

// Execute writes the pieces with the member of data, a *Data.
func (f fieldsOnly) Execute(w io.Writer, data any) error {
	m := reflect.ValueOf(&data.(*Data).Member).Elem()
	for _, p := range f {
		s := p.text
		if p.field >= 0 {
			if v := m.Field(p.field); v.Kind() == reflect.String {
				s = v.String()
			} else {
				s = strconv.FormatInt(v.Int(), 10)
			}
		}
		if _, err := io.WriteString(w, s); err != nil {
			return err
		}
	}
	return nil
}

// limitedWriter charges what a template writes to its render's budget: a template is user input,
// and {{range 1000000000}}x{{end}} would otherwise run the server out of memory.
type limitedWriter struct {
	w      io.Writer
	budget *budget
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.budget.left {
		l.budget.left = 0
		return 0, errOverSize
	}
	l.budget.left -= len(p)
	return l.w.Write(p)
}

// WriteString is Write of a string, without copying it into a []byte first.
func (l *limitedWriter) WriteString(s string) (int, error) {
	if len(s) > l.budget.left {
		l.budget.left = 0
		return 0, errOverSize
	}
	l.budget.left -= len(s)
	return io.WriteString(l.w, s)
}

// addFooter appends the preferences and unsubscribe links to every mail, whatever the template
// holds: the law and RFC 8058 want an unsubscribe in every marketing mail, and a footer that is
// always there cannot be forgotten or hidden by a template. It goes before </body> when the HTML
// is a whole document.
func addFooter(r *Rendered, lang string, links Links) {
	f := footerIn(lang)
	if r.HTML != "" {
		esc := htmltemplate.HTMLEscapeString
		prefsURL, unsubURL := esc(links.Preferences), esc(links.Unsubscribe)
		i := lastIndexFold(r.HTML, "</body>")
		if i < 0 {
			i = len(r.HTML)
		}
		var b strings.Builder
		b.Grow(len(r.HTML) + len(footerStart) + len(f.reasonHTML) + len(footerLinks) + len(prefsURL) +
			len(f.prefsHTML) + len(footerSep) + len(unsubURL) + len(f.unsubHTML) + len(footerEnd) + 8)
		b.WriteString(r.HTML[:i])
		b.WriteString(footerStart)
		b.WriteString(f.reasonHTML)
		b.WriteString(footerLinks)
		b.WriteString(prefsURL)
		b.WriteString(`">`)
		b.WriteString(f.prefsHTML)
		b.WriteString(footerSep)
		b.WriteString(unsubURL)
		b.WriteString(`">`)
		b.WriteString(f.unsubHTML)
		b.WriteString(footerEnd)
		b.WriteString(r.HTML[i:])
		r.HTML = b.String()
	}
	if r.Text != "" {
		r.Text = strings.TrimRight(r.Text, "\n") + "\n\n-- \n" + f.reason + "\n" +
			f.prefs + ": " + links.Preferences + "\n" + f.unsub + ": " + links.Unsubscribe + "\n"
	}
}

// The HTML footer around its texts and links.
const (
	footerStart = `<div style="margin-top:32px;padding-top:12px;border-top:1px solid #ddd;font-size:12px;color:#666;">` +
		`<p style="margin:0 0 8px 0;">`
	footerLinks = `</p><p style="margin:0;">` + `<a href="`
	footerSep   = `</a> &middot; ` + `<a href="`
	footerEnd   = `</a></p></div>`
)

// footerText is the footer's texts in one language, plain and HTML-escaped.
type footerText struct {
	reason, prefs, unsub             string
	reasonHTML, prefsHTML, unsubHTML string
}

// footers caches footerText by language (the translations do not change while the server
// runs); it holds at most maxFooters languages.
var (
	footersMu sync.RWMutex
	footers   = map[string]*footerText{}
)

const maxFooters = 64

func footerIn(lang string) *footerText {
	footersMu.RLock()
	f, ok := footers[lang]
	footersMu.RUnlock()
	if ok {
		return f
	}
	esc := htmltemplate.HTMLEscapeString
	f = &footerText{reason: templates.T(lang, "mail.footer.reason", nil),
		prefs: templates.T(lang, "mail.footer.preferences", nil), unsub: templates.T(lang, "mail.footer.unsubscribe", nil)}
	f.reasonHTML, f.prefsHTML, f.unsubHTML = esc(f.reason), esc(f.prefs), esc(f.unsub)
	footersMu.Lock()
	if len(footers) < maxFooters {
		footers[lang] = f
	}
	footersMu.Unlock()
	return f
}

// lastIndexFold is strings.LastIndex(strings.ToLower(s), sub) for a lower-case ASCII sub,
// without lowering a copy of s. (ToLower keeps the byte offsets of ASCII text; a tag is ASCII.)
// sub starts with '<', which has no other case.
func lastIndexFold(s, sub string) int {
	for end := len(s); ; {
		i := strings.LastIndexByte(s[:end], sub[0])
		if i < 0 {
			return -1
		}
		if i+len(sub) <= len(s) && isASCII(s[i:i+len(sub)]) && strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
		end = i
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Recipient is one mail of a run: who it goes to and what its template sees.
type Recipient struct {
	// MemberID and RunID make the Message-ID (see MessageID).
	MemberID int64
	RunID    int64
	// To is the address the mail goes to.
	To     string
	Member MemberData
	Links  Links
	// Vouchers gives the mail its vouchers; nil: a template asking for one fails the mail.
	Vouchers VoucherSource
}

// MessageID is the Message-ID (without angle brackets) of the mail of run runID to member
// memberID: "run-<run id>.member-<member id>@<domain of the From address>". A resend of the same
// mail after a crash carries the same id, so receiving systems can tell it is a duplicate.
func MessageID(runID, memberID int64, domain string) string {
	return "run-" + strconv.FormatInt(runID, 10) + ".member-" + strconv.FormatInt(memberID, 10) + "@" + domain
}

// Render builds r's mail: multipart text and HTML with the footer, the inline barcode image when
// the HTML shows it, List-Unsubscribe (the unsubscribe link and a mailto to the From address)
// with List-Unsubscribe-Post for one-click, and the Message-ID of MessageID. With RunID 0
// (previews, test sends) the Message-ID is left to the mailer, which makes a random one, so that
// repeated test sends are not taken for duplicates of each other. The templates run under the
// render budget and stop when ctx ends; an error is EINVALID naming the part.
func (c *Compiled) Render(ctx context.Context, r Recipient) (*mailer.Message, error) {
	out, err := c.execute(ctx, r.Member, r.Links, r.Vouchers)
	if err != nil {
		return nil, err
	}
	msg := &mailer.Message{From: c.from, To: []string{r.To}, Subject: out.Subject, HTML: out.HTML, Text: out.Text}
	if r.RunID != 0 {
		msg.MessageID = MessageID(r.RunID, r.MemberID, c.fromDom)
	}
	if out.barcode {
		png, err := templates.BarcodePNG(r.Member.Card, 400, 160)
		if err != nil {
			return nil, err
		}
		msg.Inline = append(msg.Inline, mailer.Inline{ContentID: BarcodeCID,
			Filename: "card-" + r.Member.Card + ".png", ContentType: "image/png", Data: png})
	}
	seen := map[string]bool{}
	for _, code := range out.vouchers {
		if seen[code] {
			continue
		}
		seen[code] = true
		png, err := templates.BarcodePNG(code, 400, 160)
		if err != nil {
			return nil, err
		}
		msg.Inline = append(msg.Inline, mailer.Inline{ContentID: voucherCID(code),
			Filename: "voucher-" + code + ".png", ContentType: "image/png", Data: png})
	}
	var buf [2]string
	targets := buf[:0]
	if r.Links.Unsubscribe != "" {
		targets = append(targets, r.Links.Unsubscribe)
	}
	if c.mailtoUnsub != "" {
		targets = append(targets, c.mailtoUnsub)
	}
	msg.SetListUnsubscribe(targets...)
	return msg, nil
}

// Preview renders the parts of a mail for member and links without building a message, under
// the render budget and ctx. The barcode images the mail would carry as inline parts ("cid:")
// are put into the HTML as data URIs, since a page showing the preview has no mail parts to
// resolve "cid:" against (the console's preview showed a broken image).
func (c *Compiled) Preview(ctx context.Context, member MemberData, links Links) (*Rendered, error) {
	out, err := c.execute(ctx, member, links, SampleVouchers{})
	if err != nil {
		return nil, err
	}
	if out.barcode {
		if out.HTML, err = inlineImage(out.HTML, BarcodeCID, member.Card); err != nil {
			return nil, err
		}
	}
	for _, code := range out.vouchers {
		if out.HTML, err = inlineImage(out.HTML, voucherCID(code), code); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// inlineImage replaces the src "cid:<cid>" in html with a data URI of the barcode of code.
func inlineImage(html, cid, code string) (string, error) {
	src := `src="cid:` + cid + `"`
	if !strings.Contains(html, src) {
		return html, nil
	}
	png, err := templates.BarcodePNG(code, 400, 160)
	if err != nil {
		return "", err
	}
	return strings.ReplaceAll(html, src, `src="data:image/png;base64,`+base64.StdEncoding.EncodeToString(png)+`"`), nil
}

// templateErrorRE splits the errors of text/template: "template: html:3: unexpected ..." and
// "template: html:2:15: executing ...".
var templateErrorRE = regexp.MustCompile(`^template: [^:]*:(\d+)(?::\d+)?: (.*)$`)

// unknownFieldRE rewrites "can't evaluate field X in type campaigns.MemberData", which names
// a Go type the marketer never sees.
var unknownFieldRE = regexp.MustCompile(`can't evaluate field (\w+) in type \S+`)

// htmlErrorLineRE finds the line in an html/template error located by its node:
// "html/template:html:2:5: ...".
var htmlErrorLineRE = regexp.MustCompile(`^html/template:[^:]*:(\d+)(?::\d+)?: `)

// templateError rewrites a template error for people: "line 3: unclosed action".
func templateError(err error) string {
	for _, e := range []error{errOverTime, errOverSize, errPieceSize, errWidth, errStopped} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	var tc *templateCallError
	if errors.As(err, &tc) {
		return tc.Error()
	}
	var he *htmltemplate.Error
	if errors.As(err, &he) {
		desc := he.Description
		switch he.ErrorCode {
		case htmltemplate.ErrEndContext:
			desc = "the HTML ends inside an unclosed tag, attribute, quote or comment"
		case htmltemplate.ErrBranchEnd:
			desc = "the branches of {{if}}, {{range}} or {{with}} end in different HTML contexts (one inside a tag or attribute, one not)"
		}
		line := he.Line
		if m := htmlErrorLineRE.FindStringSubmatch(he.Error()); line == 0 && m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		if line > 0 {
			return "line " + strconv.Itoa(line) + ": " + desc
		}
		return desc
	}
	msg := err.Error()
	if m := templateErrorRE.FindStringSubmatch(msg); m != nil {
		detail := strings.TrimPrefix(m[2], `executing "`)
		if detail != m[2] { // executing "html" at <.X>: error → at <.X>: error
			if i := strings.Index(detail, `" `); i >= 0 {
				detail = detail[i+2:]
			}
		}
		detail = unknownFieldRE.ReplaceAllString(detail, "there is no field $1 here")
		return "line " + m[1] + ": " + detail
	}
	return msg
}

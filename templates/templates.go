// Package templates holds everything a person reads: the public pages, the club's mail and the
// catalogue of their strings in every language, embedded in the binary.
//
// Strings live in locales/<area>.<lang>.toml (go-i18n). A language is added by adding those files:
// Languages, Match and the templates pick it up without a code change.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

//go:embed locales pages mail static console
var files embed.FS

// Static is the folder of stylesheets and images the pages link to (served under /static/).
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err)
	}
	return sub
}

// DefaultLanguage is used when a visitor's Accept-Language names nothing we have.
const DefaultLanguage = "en"

var (
	bundle    *i18n.Bundle
	languages []string // DefaultLanguage first
	matcher   language.Matcher
)

func init() {
	bundle = i18n.NewBundle(language.MustParse(DefaultLanguage))
	bundle.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	entries, err := fs.ReadDir(files, "locales")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		if _, err := bundle.LoadMessageFileFS(files, path.Join("locales", e.Name())); err != nil {
			panic(fmt.Sprintf("templates: locale %s: %v", e.Name(), err))
		}
	}
	tags := bundle.LanguageTags()
	sort.SliceStable(tags, func(i, j int) bool { return tags[i].String() == DefaultLanguage })
	for _, t := range tags {
		languages = append(languages, t.String())
	}
	matcher = language.NewMatcher(tags)
}

// Languages are the catalogue's languages, the default first.
func Languages() []string { return append([]string(nil), languages...) }

// Match picks the catalogue language for an Accept-Language header (or a stored preference such
// as "nb"); anything unknown or empty gives DefaultLanguage.
func Match(acceptLanguage string) string {
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return DefaultLanguage
	}
	_, i, conf := matcher.Match(tags...)
	if conf == language.No {
		return DefaultLanguage
	}
	return languages[i]
}

// Supported reports whether lang is one of Languages.
func Supported(lang string) bool {
	for _, l := range languages {
		if l == lang {
			return true
		}
	}
	return false
}

// T returns the catalogue string id in lang, filled from data (a map or struct, go-i18n
// template syntax). A missing id shows as [id]; the package tests check every id used by a
// template exists in every language.
func T(lang, id string, data any) string {
	loc := i18n.NewLocalizer(bundle, lang, DefaultLanguage)
	s, err := loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
	if err != nil {
		return "[" + id + "]"
	}
	return s
}

// funcs are the helpers every template has. "t" is T in the template's language: {{t "join.title"}}
// or {{t "welcome.discount" .}} with data.
func funcs(lang string) map[string]any {
	return map[string]any{
		"t": func(id string, data ...any) string {
			var d any
			if len(data) > 0 {
				d = data[0]
			}
			return T(lang, id, d)
		},
		"lang": func() string { return lang },
	}
}

// Engine holds every page, console and mail template, parsed once by Load at start-up. A broken
// template fails Load (so the server refuses to start) instead of the first request that uses it.
// After Load nothing is added to the sets, so they are executed concurrently without Clone
// (html/template allows concurrent Execute once parsing is over); only the console's are cloned,
// once for the shop's time zone, before their first execution (consoleIn).
type Engine struct {
	pages map[string]map[string]*template.Template // lang → page name → layout + page
	// console is page name → layout + page with times in UTC, parsed by Load and never executed:
	// consoleIn clones it once per shop time zone (html/template clones only unexecuted sets).
	console  map[string]*template.Template
	mailHTML map[string]map[string]*template.Template // lang → kind → layout + kind.html
	mailText map[string]map[string]*texttemplate.Template

	zonesMu sync.Mutex
	zones   map[string]map[string]*template.Template // zone name → console page name → set
}

// Load parses every template of pages/, console/ and mail/ in every catalogue language.
func Load() (*Engine, error) {
	e := &Engine{pages: map[string]map[string]*template.Template{}, console: map[string]*template.Template{},
		mailHTML: map[string]map[string]*template.Template{}, mailText: map[string]map[string]*texttemplate.Template{},
		zones: map[string]map[string]*template.Template{}}
	pageNames, err := templateNames("pages", ".html")
	if err != nil {
		return nil, err
	}
	mailKinds, err := templateNames("mail", ".html")
	if err != nil {
		return nil, err
	}
	for _, lang := range languages {
		e.pages[lang] = map[string]*template.Template{}
		for _, name := range pageNames {
			t, err := template.New("layout.html").Funcs(funcs(lang)).ParseFS(files, "pages/layout.html", "pages/"+name+".html")
			if err != nil {
				return nil, fmt.Errorf("page %s: %w", name, err)
			}
			e.pages[lang][name] = t
		}
		e.mailHTML[lang] = map[string]*template.Template{}
		e.mailText[lang] = map[string]*texttemplate.Template{}
		for _, kind := range mailKinds {
			ht, err := template.New("layout.html").Funcs(funcs(lang)).ParseFS(files, "mail/layout.html", "mail/"+kind+".html")
			if err != nil {
				return nil, fmt.Errorf("mail %s: %w", kind, err)
			}
			tt, err := texttemplate.New(kind+".txt").Funcs(funcs(lang)).ParseFS(files, "mail/"+kind+".txt")
			if err != nil {
				return nil, fmt.Errorf("mail %s: %w", kind, err)
			}
			e.mailHTML[lang][kind], e.mailText[lang][kind] = ht, tt
		}
	}
	consoleNames, err := templateNames("console", ".html")
	if err != nil {
		return nil, err
	}
	for _, name := range consoleNames {
		t, err := template.New("layout.html").Funcs(consoleFuncs(time.UTC)).ParseFS(files, "console/layout.html", "console/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console page %s: %w", name, err)
		}
		e.console[name] = t
	}
	return e, nil
}

// templateNames are the names (without ext) of dir's templates other than its layout.
func templateNames(dir, ext string) ([]string, error) {
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ext) && n != "layout"+ext {
			names = append(names, strings.TrimSuffix(n, ext))
		}
	}
	return names, nil
}

// language is lang if the catalogue has it, else DefaultLanguage (as Match would give).
func (e *Engine) language(lang string) string {
	if Supported(lang) {
		return lang
	}
	return DefaultLanguage
}

// Page renders pages/<name>.html inside pages/layout.html in lang.
func (e *Engine) Page(w io.Writer, name, lang string, data any) error {
	t, ok := e.pages[e.language(lang)][name]
	if !ok {
		return fmt.Errorf("page %s: no such page in %q", name, lang)
	}
	var buf bytes.Buffer // render fully first, so a template error never sends half a page
	if err := t.Execute(&buf, data); err != nil {
		return fmt.Errorf("page %s: %w", name, err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// Console renders console/<name>.html inside console/layout.html, times in zone (the shop's
// REGULARS_TIMEZONE; nil is UTC). The marketers' console is in English only (its users are staff,
// not customers), so it has no catalogue; its functions are the formatters (format.go) and
// ConsoleFuncs.
func (e *Engine) Console(w io.Writer, name string, zone *time.Location, data any) error {
	set, err := e.consoleIn(zone)
	if err != nil {
		return fmt.Errorf("console page %s: %w", name, err)
	}
	t, ok := set[name]
	if !ok {
		return fmt.Errorf("console page %s: no such page", name)
	}
	var buf bytes.Buffer // render fully first, so a template error never sends half a page
	if err := t.Execute(&buf, data); err != nil {
		return fmt.Errorf("console page %s: %w", name, err)
	}
	_, err = buf.WriteTo(w)
	return err
}

// consoleIn is the console pages with their times in zone, cloned from e.console on the first
// request in that zone (a server has one).
func (e *Engine) consoleIn(zone *time.Location) (map[string]*template.Template, error) {
	if zone == nil {
		zone = time.UTC
	}
	e.zonesMu.Lock()
	defer e.zonesMu.Unlock()
	if set, ok := e.zones[zone.String()]; ok {
		return set, nil
	}
	funcs := consoleFuncs(zone)
	set := make(map[string]*template.Template, len(e.console))
	for name, t := range e.console {
		c, err := t.Clone()
		if err != nil {
			return nil, fmt.Errorf("zone %s: %w", zone, err)
		}
		set[name] = c.Funcs(funcs)
	}
	e.zones[zone.String()] = set
	return set, nil
}

// ConsoleFuncs are the console pages' template functions other than the formatters: an area adds
// its helpers (charts, lookups) in console_funcs_<area>.go. Money, percentages, times and dates
// are formatted by format.go's functions only (formatFuncs), whose names these must not take.
var ConsoleFuncs = map[string]any{}

// consoleFuncs are ConsoleFuncs and the formatters with times in zone.
func consoleFuncs(zone *time.Location) template.FuncMap {
	funcs := template.FuncMap{}
	for name, f := range ConsoleFuncs {
		funcs[name] = f
	}
	for name, f := range formatFuncs(zone) {
		funcs[name] = f
	}
	return funcs
}

// Mail is one rendered club mail.
type Mail struct {
	Subject string
	HTML    string
	Text    string
}

// Mail renders mail/<kind>.html (inside mail/layout.html) and mail/<kind>.txt in lang; the
// subject is the catalogue string "mail.<kind>.subject".
func (e *Engine) Mail(kind, lang string, data any) (*Mail, error) {
	ht, ok := e.mailHTML[e.language(lang)][kind]
	if !ok {
		return nil, fmt.Errorf("mail %s: no such mail in %q", kind, lang)
	}
	tt := e.mailText[e.language(lang)][kind]
	var h, t bytes.Buffer
	if err := ht.Execute(&h, data); err != nil {
		return nil, fmt.Errorf("mail %s html: %w", kind, err)
	}
	if err := tt.Execute(&t, data); err != nil {
		return nil, fmt.Errorf("mail %s text: %w", kind, err)
	}
	return &Mail{Subject: strings.TrimSpace(T(lang, "mail."+kind+".subject", data)), HTML: h.String(), Text: t.String()}, nil
}

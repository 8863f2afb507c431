package handlers

import (
	"io/fs"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/docs"
	"github.com/regulars/regulars/templates"
)

// The console's help: the glossary (templates.Glossary), and the documents with the formulas
// (docs.Help) served from the binary, so that every "how is this computed" link stays inside
// the server.

type helpData struct {
	Terms []helpTerm
	Docs  []helpDocLink
}

type helpTerm struct {
	templates.Term
	Href string // the section of the formulas
}

type helpDocLink struct{ Href, Title string }

// helpDocData is one document, cut at its headings so that each has an anchor.
type helpDocData struct {
	Title    string
	Sections []helpSection
}

type helpSection struct {
	ID, Heading string
	Level       int
	Text        string
}

func (cn *console) help(c echo.Context) error {
	d := helpData{}
	for _, t := range templates.Glossary {
		d.Terms = append(d.Terms, helpTerm{Term: t, Href: helpHref(t.Doc, t.Section)})
	}
	for _, doc := range docs.Help {
		d.Docs = append(d.Docs, helpDocLink{Href: "/console/help/" + doc.Name, Title: doc.Title})
	}
	return cn.render(c, http.StatusOK, "help", consolePage{Title: "Help", Data: d})
}

func (cn *console) helpDoc(c echo.Context) error {
	for _, doc := range docs.Help {
		if doc.Name != c.Param("doc") {
			continue
		}
		raw, err := fs.ReadFile(docs.Files(), doc.File)
		if err != nil {
			return err
		}
		return cn.render(c, http.StatusOK, "help_doc", consolePage{Title: doc.Title,
			Data: helpDocData{Title: doc.Title, Sections: helpSections(string(raw))}})
	}
	return echo.ErrNotFound
}

// helpHref links the section of a help document.
func helpHref(doc, section string) string {
	return "/console/help/" + doc + "#" + helpSlug(section)
}

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

func helpSlug(heading string) string {
	return strings.Trim(slugRE.ReplaceAllString(strings.ToLower(heading), "-"), "-")
}

// helpSections cuts a Markdown document at its headings ("# ", "## ", "### "), outside code
// blocks. The text stays Markdown, shown as written: it reads well as plain text.
func helpSections(md string) []helpSection {
	var out []helpSection
	cur := helpSection{}
	var body []string
	flush := func() {
		cur.Text = strings.Trim(strings.Join(body, "\n"), "\n")
		if cur.Heading != "" || cur.Text != "" {
			out = append(out, cur)
		}
		body = nil
	}
	fenced := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		level := len(line) - len(strings.TrimLeft(line, "#"))
		if !fenced && level >= 1 && level <= 3 && strings.HasPrefix(line[level:], " ") {
			flush()
			heading := strings.TrimSpace(line[level:])
			cur = helpSection{ID: helpSlug(heading), Heading: heading, Level: level}
			continue
		}
		body = append(body, line)
	}
	flush()
	return out
}

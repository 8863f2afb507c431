package campaigns

import (
	"html"
	"regexp"
	"strings"
)

// HTMLToText makes a campaign's text body from its HTML body, so that a marketer who writes
// only the HTML (or starts from a starter) still sends a readable text part. It works on the
// template source: {{actions}} are kept as they are, so the text renders with the same member
// data ({{.Barcode}} prints the card number there). Blocks become lines, list items "- " lines,
// a link "label: URL" (the URL alone when the label is the URL), an image its alt text; the
// head, styles and scripts are dropped, entities decoded, blank lines squeezed to one.
func HTMLToText(src string) string {
	s := dropBlocksRE.ReplaceAllString(src, "")
	s = commentRE.ReplaceAllString(s, "")
	s = linkRE.ReplaceAllStringFunc(s, func(a string) string {
		m := linkRE.FindStringSubmatch(a)
		href, label := m[1], strings.TrimSpace(oneSpace(tagRE.ReplaceAllString(m[2], "")))
		switch {
		case href == "" || strings.HasPrefix(href, "#"):
			return label
		case label == "" || label == href:
			return " " + href + " "
		}
		return label + ": " + href + " "
	})
	s = imgRE.ReplaceAllStringFunc(s, func(img string) string {
		if m := altRE.FindStringSubmatch(img); m != nil {
			return m[1]
		}
		return ""
	})
	s = spaceRE.ReplaceAllString(s, " ") // as in a browser, the source's line breaks are spaces
	s = brRE.ReplaceAllString(s, "\n")
	s = liRE.ReplaceAllString(s, "\n- ")
	s = blockRE.ReplaceAllString(s, "\n\n")
	s = tagRE.ReplaceAllString(s, "")
	s = protectedUnescape(s)
	var out []string
	blank := true // no blank lines at the start
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(oneSpace(line))
		if line == "" {
			if !blank {
				out = append(out, "")
			}
			blank = true
			continue
		}
		out = append(out, line)
		blank = false
	}
	return strings.TrimSpace(strings.Join(out, "\n")) + "\n"
}

var (
	dropBlocksRE = regexp.MustCompile(`(?is)<(head|style|script|title)\b.*?</(head|style|script|title)\s*>`)
	commentRE    = regexp.MustCompile(`(?s)<!--.*?-->`)
	linkRE       = regexp.MustCompile(`(?is)<a\b[^>]*?\bhref\s*=\s*"([^"]*)"[^>]*>(.*?)</a\s*>`)
	imgRE        = regexp.MustCompile(`(?is)<img\b[^>]*>`)
	altRE        = regexp.MustCompile(`(?is)\balt\s*=\s*"([^"]*)"`)
	liRE         = regexp.MustCompile(`(?i)<li\b[^>]*>`)
	brRE         = regexp.MustCompile(`(?i)<br\b[^>]*>`)
	spaceRE      = regexp.MustCompile(`\s+`)
	// Tags that make a paragraph of their own. A <td> does too: mail layouts put one block per
	// cell.
	blockRE  = regexp.MustCompile(`(?i)</?(p|div|h[1-6]|tr|td|th|table|ul|ol|section|header|footer|hr|blockquote|center)\b[^>]*>`)
	tagRE    = regexp.MustCompile(`(?s)<[^>]*>`)
	spacesRE = regexp.MustCompile(`[ \t\r\f\v]+`)
	actionRE = regexp.MustCompile(`(?s)\{\{.*?\}\}`)
)

func oneSpace(s string) string { return spacesRE.ReplaceAllString(s, " ") }

// protectedUnescape decodes entities outside {{actions}}: an action's "&&" or a string literal
// with "&amp;" in it must reach the template as written.
func protectedUnescape(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range actionRE.FindAllStringIndex(s, -1) {
		b.WriteString(html.UnescapeString(s[last:m[0]]))
		b.WriteString(s[m[0]:m[1]])
		last = m[1]
	}
	b.WriteString(html.UnescapeString(s[last:]))
	return b.String()
}

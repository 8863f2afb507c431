package campaigns

import (
	"errors"
	htmltemplate "html/template"
	"strings"
)

// Member links in templates. A member's preferences and unsubscribe links carry their signed
// token; a template that could read them could also send them elsewhere (<img
// src="https://elsewhere/?p={{.Links.Preferences}}">, a link that wraps them, printf "%x" to
// disguise them). So templates see only templateLinks, fixed URLs under linkMarker, and after
// rendering the member's links replace them where one is the whole href of an <a> tag of the
// HTML, or start a word of the text. A placeholder anywhere else is an
// error: at save time a 422 naming the field, while sending that recipient's failure. A
// template that shows the placeholder in some disguise shows only a constant.

// linkMarker is in every placeholder link and in nothing else a template produces.
const linkMarker = "member-link.invalid"

// templateLinks are what templates see as .Links.
var templateLinks = Links{Preferences: "https://" + linkMarker + "/preferences",
	Unsubscribe: "https://" + linkMarker + "/unsubscribe"}

// Errors of member links used other than as whole links.
var (
	errLinkHTML = errors.New(`{{.Links.Preferences}} and {{.Links.Unsubscribe}} may only be used as a whole link: ` +
		`<a href="{{.Links.Preferences}}"> (an <a> without a ping attribute)`)
	errLinkText = errors.New(`{{.Links.Preferences}} and {{.Links.Unsubscribe}} may only start a word of their own: ` +
		`"Preferences: {{.Links.Preferences}}"`)
)

const errLinkInSubject = "{{.Links.Preferences}} and {{.Links.Unsubscribe}} may not be used in the subject"

func hasLinkPlaceholder(s string) bool { return strings.Contains(s, linkMarker) }

// linkFor returns the link of links that placeholder v stands for, "" when v is none.
func linkFor(v string, links Links) (string, bool) {
	switch v {
	case templateLinks.Preferences:
		return links.Preferences, true
	case templateLinks.Unsubscribe:
		return links.Unsubscribe, true
	}
	return "", false
}

// rawTextElements hold text up to their end tag, never tags: a placeholder in them is not a
// link. (noscript and the others are raw text only in some readers; counting them as raw text
// can only refuse more.)
var rawTextElements = []string{"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript", "plaintext"}

// htmlLinks replaces each placeholder link that is the whole value of the first href of an <a>
// start tag with its link of links (HTML-escaped; an unquoted value is quoted), and fails when
// any placeholder is left.
// It walks the tags of body as html/template does when it escapes (text, comments, tags with
// quoted and unquoted attribute values, raw-text elements), so that an "<a href=" inside another
// tag's attribute value (<img src='https://elsewhere/<a href="…">'>) is not taken for a link.
// Mails without a placeholder cost one scan for linkMarker.
func htmlLinks(body string, links Links) (string, error) {
	total := strings.Count(body, linkMarker)
	if total == 0 {
		return body, nil
	}
	var b strings.Builder
	last, done := 0, 0
	for i := 0; i < len(body); {
		j := strings.IndexByte(body[i:], '<')
		if j < 0 {
			break
		}
		i += j
		rest := body[i:]
		if strings.HasPrefix(rest, "<!--") {
			k := strings.Index(rest[4:], "-->")
			if k < 0 {
				break
			}
			i += 4 + k + 3
			continue
		}
		if len(rest) > 1 && (rest[1] == '!' || rest[1] == '?') { // doctype, bogus comment
			k := strings.IndexByte(rest, '>')
			if k < 0 {
				break
			}
			i += k + 1
			continue
		}
		tag, ok := scanTag(body, i)
		if !ok {
			i++
			continue
		}
		if tag.end < 0 {
			break // a tag without its end: nothing after it is a link
		}
		if tag.name == "a" && !tag.closing && tag.hrefEnd > 0 {
			if link, ok := linkFor(body[tag.hrefStart:tag.hrefEnd], links); ok {
				if tag.ping {
					return "", errLinkHTML // <a ping> would tell another server the link on a click
				}
				if b.Len() == 0 {
					b.Grow(len(body) + 2*len(link))
				}
				b.WriteString(body[last:tag.hrefStart])
				if tag.unquoted {
					b.WriteByte('"')
				}
				b.WriteString(htmltemplate.HTMLEscapeString(link))
				if tag.unquoted {
					b.WriteByte('"')
				}
				last = tag.hrefEnd
				done++
			}
		}
		i = tag.end
		if !tag.closing {
			for _, raw := range rawTextElements {
				if tag.name == raw {
					i = endTag(body, i, raw)
					break
				}
			}
		}
	}
	if done != total {
		return "", errLinkHTML
	}
	b.WriteString(body[last:])
	return b.String(), nil
}

// tagScan is a start or end tag at body[start:end] (end -1: the tag does not end).
type tagScan struct {
	name      string // lower case
	closing   bool
	end       int
	hrefStart int
	hrefEnd   int  // body[hrefStart:hrefEnd] is the value of the first href; hrefEnd 0: none
	unquoted  bool // that value has no quotes
	ping      bool
	sawHref   bool
}

// scanTag reads the tag that starts at body[i] ('<'); ok is false when none does there ('<'
// not followed by a letter or '/' and a letter is text).
func scanTag(body string, i int) (t tagScan, ok bool) {
	k := i + 1
	if k < len(body) && body[k] == '/' {
		t.closing = true
		k++
	}
	if k >= len(body) || !isLetter(body[k]) {
		return t, false
	}
	start := k
	for k < len(body) && !isSpace(body[k]) && body[k] != '/' && body[k] != '>' {
		k++
	}
	t.name = strings.ToLower(body[start:k])
	for k < len(body) {
		c := body[k]
		if isSpace(c) || c == '/' {
			k++
			continue
		}
		if c == '>' {
			t.end = k + 1
			return t, true
		}
		nameStart := k
		for k++; k < len(body) && !isSpace(body[k]) && body[k] != '/' && body[k] != '>' && body[k] != '='; k++ {
		}
		name := body[nameStart:k]
		for k < len(body) && isSpace(body[k]) {
			k++
		}
		valueStart, valueEnd, quoted := 0, 0, false
		if k < len(body) && body[k] == '=' {
			for k++; k < len(body) && isSpace(body[k]); k++ {
			}
			if k < len(body) && (body[k] == '"' || body[k] == '\'') {
				e := strings.IndexByte(body[k+1:], body[k])
				if e < 0 {
					t.end = -1
					return t, true
				}
				valueStart, valueEnd, quoted = k+1, k+1+e, true
				k = valueEnd + 1
			} else {
				for valueStart = k; k < len(body) && !isSpace(body[k]) && body[k] != '>'; k++ {
				}
				valueEnd = k
			}
		}
		switch {
		case strings.EqualFold(name, "href") && !t.sawHref:
			t.sawHref = true
			if valueEnd > valueStart {
				t.hrefStart, t.hrefEnd, t.unquoted = valueStart, valueEnd, !quoted
			}
		case strings.EqualFold(name, "ping"):
			t.ping = true
		}
	}
	t.end = -1
	return t, true
}

// endTag returns where the end tag </name (any case) after from starts, or len(body).
func endTag(body string, from int, name string) int {
	for i := from; ; {
		j := strings.Index(body[i:], "</")
		if j < 0 {
			return len(body)
		}
		i += j
		if e := i + 2 + len(name); e <= len(body) && strings.EqualFold(body[i+2:e], name) {
			return i
		}
		i += 2
	}
}

// textLinks replaces each placeholder link that starts a word of text (after whitespace or an
// opening bracket or quote) with its link of links, and fails when a placeholder is anywhere
// else. What follows the placeholder may be punctuation ("…{{.Links.Preferences}}."): text
// after a link cannot send its token elsewhere, text before it can (a URL that wraps it).
func textLinks(text string, links Links) (string, error) {
	if !strings.Contains(text, linkMarker) {
		return text, nil
	}
	var b strings.Builder
	last := 0
	for i := 0; ; {
		j := strings.Index(text[i:], linkMarker)
		if j < 0 {
			break
		}
		start := i + j - len("https://")
		if start < 0 || (start > 0 && !isSpace(text[start-1]) && !strings.ContainsRune(`<([{"'`, rune(text[start-1]))) {
			return "", errLinkText
		}
		var link, placeholder string
		for _, l := range []struct{ placeholder, link string }{
			{templateLinks.Preferences, links.Preferences}, {templateLinks.Unsubscribe, links.Unsubscribe},
		} {
			if strings.HasPrefix(text[start:], l.placeholder) {
				link, placeholder = l.link, l.placeholder
			}
		}
		end := start + len(placeholder)
		if placeholder == "" || (end < len(text) && (isLetter(text[end]) || text[end] >= '0' && text[end] <= '9')) {
			return "", errLinkText
		}
		b.WriteString(text[last:start])
		b.WriteString(link)
		last, i = end, end
	}
	b.WriteString(text[last:])
	return b.String(), nil
}

// isSpace is HTML's whitespace (and \r): what separates attributes and words.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

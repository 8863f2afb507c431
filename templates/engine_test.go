package templates

import (
	"io"
	"testing"
)

// TestLoadParsesEveryTemplate is the start-up check: every page, console page and mail parses,
// in every language.
func TestLoadParsesEveryTemplate(t *testing.T) {
	t.Parallel()
	e, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range Languages() {
		if len(e.pages[lang]) == 0 || len(e.mailHTML[lang]) == 0 || len(e.mailText[lang]) != len(e.mailHTML[lang]) {
			t.Errorf("%s: %d pages, %d html mails, %d text mails", lang, len(e.pages[lang]), len(e.mailHTML[lang]), len(e.mailText[lang]))
		}
	}
	if len(e.console) == 0 {
		t.Error("no console pages")
	}
}

// BenchmarkPage renders a page from the parsed set, as a request does.
func BenchmarkPage(b *testing.B) {
	e, err := Load()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := e.Page(io.Discard, "join_sent", DefaultLanguage, nil); err != nil {
			b.Fatal(err)
		}
	}
}

package templates

import (
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// catalogue reads every locales/<area>.<lang>.toml file into the set of ids per language.
func catalogue(t *testing.T) map[string]map[string]bool {
	t.Helper()
	ids := map[string]map[string]bool{}
	entries, err := fs.ReadDir(files, "locales")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		parts := strings.Split(e.Name(), ".")
		if len(parts) != 3 || parts[2] != "toml" {
			t.Errorf("locale file %s is not named <area>.<lang>.toml", e.Name())
			continue
		}
		lang := parts[1]
		data, err := fs.ReadFile(files, path.Join("locales", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		if err := toml.Unmarshal(data, &raw); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		if ids[lang] == nil {
			ids[lang] = map[string]bool{}
		}
		flatten("", raw, ids[lang])
	}
	return ids
}

// goI18nKeys mark a TOML table as one message (plural forms, description) rather than a group.
var goI18nKeys = []string{"id", "description", "hash", "leftdelim", "rightdelim", "zero", "one", "two", "few", "many", "other"}

func flatten(prefix string, m map[string]any, into map[string]bool) {
	for k, v := range m {
		id := k
		if prefix != "" {
			id = prefix + "." + k
		}
		sub, isTable := v.(map[string]any)
		if !isTable {
			into[id] = true
			continue
		}
		message := false
		for sk := range sub {
			if slices.Contains(goI18nKeys, strings.ToLower(sk)) {
				message = true
			}
		}
		if message {
			into[id] = true
		} else {
			flatten(id, sub, into)
		}
	}
}

var (
	action     = regexp.MustCompile(`(?s)\{\{(.*?)\}\}`)
	translated = regexp.MustCompile(`(?:^|[\s(-])t\s+"([^"]+)"`)
)

// usedIDs finds the catalogue ids named by {{t "id" ...}} (also inside parentheses) in the
// templates under dir, by file.
func usedIDs(t *testing.T, dir string) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	err := fs.WalkDir(files, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		for _, a := range action.FindAllStringSubmatch(string(data), -1) {
			for _, m := range translated.FindAllStringSubmatch(a[1], -1) {
				used[m[1]] = append(used[m[1]], p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return used
}

func TestEveryIDATemplateUsesExistsInEveryLanguage(t *testing.T) {
	t.Parallel()
	ids := catalogue(t)
	for _, dir := range []string{"pages", "mail"} {
		used := usedIDs(t, dir)
		if len(used) == 0 {
			t.Errorf("found no {{t \"id\"}} in %s/: the scan is broken", dir)
		}
		for id, where := range used {
			for _, lang := range Languages() {
				if !ids[lang][id] {
					t.Errorf("%s uses %q, which the %s catalogue lacks", where[0], id, lang)
				}
			}
		}
	}
}

func TestEveryMailHasASubjectInEveryLanguage(t *testing.T) {
	t.Parallel()
	ids := catalogue(t)
	txt, err := fs.Glob(files, "mail/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range txt {
		id := "mail." + strings.TrimSuffix(path.Base(f), ".txt") + ".subject"
		for _, lang := range Languages() {
			if !ids[lang][id] {
				t.Errorf("%s has no subject %q in %s", f, id, lang)
			}
		}
	}
}

func TestEveryLanguageHasTheSameIDs(t *testing.T) {
	t.Parallel()
	ids := catalogue(t)
	if len(ids) < 2 {
		t.Fatalf("catalogue has languages %v, want at least en and nb", Languages())
	}
	base := ids[DefaultLanguage]
	for lang, set := range ids {
		var missing, extra []string
		for id := range base {
			if !set[id] {
				missing = append(missing, id)
			}
		}
		for id := range set {
			if !base[id] {
				extra = append(extra, id)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		if len(missing) > 0 {
			t.Errorf("%s lacks ids that %s has: %v", lang, DefaultLanguage, missing)
		}
		if len(extra) > 0 {
			t.Errorf("%s has ids that %s lacks: %v", lang, DefaultLanguage, extra)
		}
	}
}

func TestTheScanFindsIDsInEveryFormOfAction(t *testing.T) {
	t.Parallel()
	src := `{{t "a.b"}} {{- t "c.d" .}} {{if x}}{{printf "%s" (t "e.f")}}{{end}} {{template "t" .}} {{.t}}`
	var got []string
	for _, a := range action.FindAllStringSubmatch(src, -1) {
		for _, m := range translated.FindAllStringSubmatch(a[1], -1) {
			got = append(got, m[1])
		}
	}
	if want := []string{"a.b", "c.d", "e.f"}; !slices.Equal(got, want) {
		t.Errorf("scan found %v, want %v", got, want)
	}
}

func TestMatchAndLanguageOfPages(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ accept, want string }{
		{"nb-NO,nb;q=0.9,en;q=0.8", "nb"},
		{"no", "nb"},
		{"en-GB", "en"},
		{"de-DE", DefaultLanguage},
		{"", DefaultLanguage},
	} {
		if got := Match(c.accept); got != c.want {
			t.Errorf("Match(%q) = %q, want %q", c.accept, got, c.want)
		}
	}
	e, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range Languages() {
		var b strings.Builder
		if err := e.Page(&b, "join_sent", lang, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), `<html lang="`+lang+`">`) {
			t.Errorf("page in %s does not say so in <html lang>:\n%s", lang, b.String())
		}
	}
}

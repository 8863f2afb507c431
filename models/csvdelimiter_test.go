package models

import "testing"

func TestDetectDelimiter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, header string
		want         rune
	}{
		{"commas are commas", "id,store,register", ','},
		{"Excel in a comma-decimal locale writes semicolons", "\ufeffid;store;register", ';'},
		{"tabs are tabs", "sku\tname\tprice_minor", '\t'},
		{"separators inside quotes do not count", `"a;b;c;d",x,y`, ','},
		{"a header without any separator is read with commas", "card", ','},
		{"a tie goes to the comma", "a,b;c", ','},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := detectDelimiter([]byte(tc.header)); got != tc.want {
				t.Errorf("detectDelimiter(%q) = %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}

func TestSeparatorHint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, column string
		used         rune
		want         string
	}{
		{"a column holding semicolons suggests them", "id;store;register", ',', `separator ","; use --delimiter ";"?`},
		{"a column holding tabs suggests a tab", "id\tstore", ';', `separator ";"; use --delimiter "\t"?`},
		{"a plain misspelling only names the separator", "stroe", ',', `separator ","`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := separatorHint(tc.column, tc.used); got != tc.want {
				t.Errorf("separatorHint(%q, %q) = %q, want %q", tc.column, tc.used, got, tc.want)
			}
		})
	}
}

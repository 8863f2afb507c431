package campaigns

import (
	"context"
	"strings"
	"testing"
)

// TestPointsFieldsRender: previews show the sample member's points and stamp card; a member
// without a stamp card gets no card; AddPoints caps the stamps at the card's size.
func TestPointsFieldsRender(t *testing.T) {
	compiled, err := Compile(&Campaign{Subject: "{{.Member.Points}} points",
		HTML: `<p>{{.Member.Points}} points, {{.Member.Stamps}}/{{.Member.StampsNeeded}}: {{.StampCard}}</p>`,
		Text: `{{.Member.Points}} points: {{.StampCard}}`}, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the sample member has a stamp card", func(t *testing.T) {
		out, err := compiled.Preview(context.Background(), SampleMember, testLinks)
		if err != nil {
			t.Fatal(err)
		}
		for part, want := range map[string]string{
			out.Subject: "7 points",
			out.HTML:    `7 points, 7/10: <span aria-hidden="true">●●●●●●●○○○</span> 7/10`,
			out.Text:    "7 points: ●●●●●●●○○○ 7/10",
		} {
			if !strings.Contains(part, want) {
				t.Errorf("preview lacks %q:\n%s", want, part)
			}
		}
	})
	for _, tc := range []struct {
		name           string
		balance, cost  int
		stamps, needed int
		html, text     string
	}{
		{"points without a stamp program draw no card", 1234, 0, 0, 0, "1234 points, 0/0: </p>", "1234 points: \n"},
		{"a full card is capped at its size", 13, 10, 10, 10, "●●●●●●●●●●</span> 10/10", "●●●●●●●●●● 10/10"},
		{"a negative balance fills no stamp", -2, 5, 0, 5, "○○○○○</span> 0/5", "○○○○○ 0/5"},
		{"a card too large to draw is figures only", 3, 200, 3, 200, "3/200: 3/200</p>", "3 points: 3/200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := MemberData{Name: "Ola", Language: SampleMember.Language}
			AddPoints(&m, tc.balance, tc.cost)
			if m.Points != tc.balance || m.Stamps != tc.stamps || m.StampsNeeded != tc.needed {
				t.Fatalf("AddPoints(%d, %d) = %d, %d/%d", tc.balance, tc.cost, m.Points, m.Stamps, m.StampsNeeded)
			}
			out, err := compiled.Preview(context.Background(), m, testLinks)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.HTML, tc.html) || !strings.Contains(out.Text, tc.text) {
				t.Errorf("got\n%s\n%s", out.HTML, out.Text)
			}
		})
	}
}

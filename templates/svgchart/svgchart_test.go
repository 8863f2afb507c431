package svgchart

import (
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func f(v float64) *float64 { return &v }

// element is a parsed SVG element: its name, attributes and text.
type element struct {
	Name  string
	Attrs map[string]string
	Text  string
}

// parse checks the chart is well-formed XML and returns its elements in document order.
func parse(t *testing.T, svg string) []element {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	var out []element
	var stack []int
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not valid XML: %v\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := element{Name: tok.Name.Local, Attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.Attrs[a.Name.Local] = a.Value
			}
			out = append(out, e)
			stack = append(stack, len(out)-1)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				out[stack[len(stack)-1]].Text += string(tok)
			}
		}
	}
	if len(out) == 0 || out[0].Name != "svg" {
		t.Fatalf("not an svg: %s", svg)
	}
	return out
}

func named(els []element, name string) []element {
	var out []element
	for _, e := range els {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// accessible checks the chart's accessible name and description, and that it has no style
// attribute (the console's CSP forbids them).
func accessible(t *testing.T, els []element, svg, title string) {
	t.Helper()
	root := els[0]
	if root.Attrs["role"] != "img" || root.Attrs["aria-label"] != title {
		t.Errorf("svg role %q aria-label %q, want img and %q", root.Attrs["role"], root.Attrs["aria-label"], title)
	}
	if els[1].Name != "title" || els[1].Text != title || els[2].Name != "desc" {
		t.Errorf("svg does not start with <title>%s</title><desc>: %v %v", title, els[1], els[2])
	}
	if strings.Contains(svg, "style=") {
		t.Errorf("chart has a style attribute: %s", svg)
	}
}

func TestBarChart(t *testing.T) {
	t.Run("bar lengths are proportional to values", func(t *testing.T) {
		svg := string(BarChart{Title: "CLV", Desc: "per store",
			Bars: []Bar{{"a", f(100)}, {"b", f(50)}, {"c", f(25)}}}.Render())
		els := parse(t, svg)
		accessible(t, els, svg, "CLV")
		rects := named(els, "rect")
		if len(rects) != 3 {
			t.Fatalf("%d bars, want 3", len(rects))
		}
		width := func(e element) float64 {
			v, err := strconv.ParseFloat(e.Attrs["width"], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		w0 := width(rects[0])
		if w0 <= 0 {
			t.Fatalf("longest bar has width %v", w0)
		}
		for i, want := range []float64{1, 0.5, 0.25} {
			if got := width(rects[i]) / w0; math.Abs(got-want) > 0.01 {
				t.Errorf("bar %d is %.3f of the longest, want %.2f", i, got, want)
			}
		}
	})
	t.Run("missing, NaN and infinite values are skipped", func(t *testing.T) {
		svg := string(BarChart{Title: "Churn", Bars: []Bar{{"a", f(0.2)}, {"b", nil}, {"c", f(math.NaN())},
			{"d", f(math.Inf(1))}, {"e", f(0.1)}}}.Render())
		els := parse(t, svg)
		if n := len(named(els, "rect")); n != 2 {
			t.Errorf("%d bars, want 2", n)
		}
		if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
			t.Errorf("chart mentions NaN or Inf: %s", svg)
		}
	})
	t.Run("negative values extend left of the zero line", func(t *testing.T) {
		svg := string(BarChart{Title: "x", Bars: []Bar{{"up", f(10)}, {"down", f(-10)}}}.Render())
		rects := named(parse(t, svg), "rect")
		if rects[0].Attrs["width"] != rects[1].Attrs["width"] {
			t.Errorf("bars of 10 and -10 differ in length: %v %v", rects[0].Attrs, rects[1].Attrs)
		}
		x0, _ := strconv.ParseFloat(rects[0].Attrs["x"], 64)
		x1, _ := strconv.ParseFloat(rects[1].Attrs["x"], 64)
		if x1 >= x0 {
			t.Errorf("negative bar starts at %v, not left of the positive one at %v", x1, x0)
		}
	})
	t.Run("no values gives the empty-state chart", func(t *testing.T) {
		for _, bars := range [][]Bar{nil, {{"a", nil}, {"b", f(math.NaN())}}} {
			svg := string(BarChart{Title: "CLV", Bars: bars}.Render())
			els := parse(t, svg)
			accessible(t, els, svg, "CLV")
			if !strings.Contains(els[0].Attrs["class"], "chart-empty") || !strings.Contains(svg, "No data yet") {
				t.Errorf("not an empty-state chart: %s", svg)
			}
		}
	})
	t.Run("labels and titles are escaped", func(t *testing.T) {
		evil := `<script>alert("x")</script> & "q"`
		svg := string(BarChart{Title: evil, Desc: evil, Bars: []Bar{{evil, f(1)}},
			Format: func(float64) string { return evil }}.Render())
		els := parse(t, svg)
		if strings.Contains(svg, "<script") {
			t.Errorf("unescaped markup in %s", svg)
		}
		if els[1].Text != evil {
			t.Errorf("title %q, want %q", els[1].Text, evil)
		}
	})
	t.Run("long labels are cut but kept whole in the bar's title", func(t *testing.T) {
		long := strings.Repeat("Potential loyalists ", 4)
		svg := string(BarChart{Title: "x", Bars: []Bar{{long, f(1)}}}.Render())
		els := parse(t, svg)
		var label, title string
		for _, e := range els {
			if e.Name == "text" && e.Attrs["class"] == "label" {
				label = e.Text
			}
			if e.Name == "title" && strings.HasPrefix(e.Text, long) {
				title = e.Text
			}
		}
		if !strings.HasSuffix(label, "…") || len([]rune(label)) != maxLabelRunes || title == "" {
			t.Errorf("label %q, bar title %q", label, title)
		}
	})
}

func TestLineChart(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	t.Run("one polyline per series with a point per value", func(t *testing.T) {
		svg := string(LineChart{Title: "CLV over time", Series: []Series{
			{Name: "historic", Points: []LinePoint{{day(1), f(10)}, {day(2), f(20)}, {day(5), f(15)}}},
			{Name: "predicted", Points: []LinePoint{{day(1), f(12)}, {day(5), f(18)}}},
		}}.Render())
		els := parse(t, svg)
		accessible(t, els, svg, "CLV over time")
		if n := len(named(els, "polyline")); n != 2 {
			t.Errorf("%d polylines, want 2", n)
		}
		if n := len(named(els, "circle")); n != 5 {
			t.Errorf("%d points, want 5", n)
		}
	})
	t.Run("points are placed by date and higher values are higher up", func(t *testing.T) {
		svg := string(LineChart{Title: "x", Series: []Series{{Name: "s",
			Points: []LinePoint{{day(1), f(0)}, {day(2), f(10)}, {day(11), f(5)}}}}}.Render())
		circles := named(parse(t, svg), "circle")
		cx := func(i int) float64 { v, _ := strconv.ParseFloat(circles[i].Attrs["cx"], 64); return v }
		cy := func(i int) float64 { v, _ := strconv.ParseFloat(circles[i].Attrs["cy"], 64); return v }
		if gap1, gap2 := cx(1)-cx(0), cx(2)-cx(1); math.Abs(gap2/gap1-9) > 0.01 {
			t.Errorf("gaps %v and %v, want 1:9 like the dates", gap1, gap2)
		}
		if !(cy(1) < cy(2) && cy(2) < cy(0)) {
			t.Errorf("y of 0, 10, 5: %v %v %v", cy(0), cy(1), cy(2))
		}
	})
	t.Run("a missing value breaks the line", func(t *testing.T) {
		svg := string(LineChart{Title: "x", Series: []Series{{Name: "s", Points: []LinePoint{
			{day(1), f(1)}, {day(2), f(2)}, {day(3), nil}, {day(4), f(math.NaN())}, {day(5), f(3)}, {day(6), f(4)}}}}}.Render())
		els := parse(t, svg)
		if n := len(named(els, "polyline")); n != 2 {
			t.Errorf("%d polylines, want 2", n)
		}
		if n := len(named(els, "circle")); n != 4 {
			t.Errorf("%d points, want 4", n)
		}
	})
	t.Run("a single snapshot is one point", func(t *testing.T) {
		els := parse(t, string(LineChart{Title: "x", Series: []Series{{Name: "s", Points: []LinePoint{{day(1), f(1)}}}}}.Render()))
		if len(named(els, "circle")) != 1 || len(named(els, "polyline")) != 0 {
			t.Errorf("want one point and no line")
		}
	})
	t.Run("no values gives the empty-state chart", func(t *testing.T) {
		svg := string(LineChart{Title: "Churn", Series: []Series{{Name: "s", Points: []LinePoint{{day(1), nil}}}}}.Render())
		els := parse(t, svg)
		accessible(t, els, svg, "Churn")
		if !strings.Contains(els[0].Attrs["class"], "chart-empty") {
			t.Errorf("not an empty-state chart: %s", svg)
		}
	})
	t.Run("series names are escaped", func(t *testing.T) {
		svg := string(LineChart{Title: "<b>", Series: []Series{{Name: "<i>&", Points: []LinePoint{{day(1), f(1)}}}}}.Render())
		parse(t, svg)
		if strings.Contains(svg, "<b>") || strings.Contains(svg, "<i>") {
			t.Errorf("unescaped: %s", svg)
		}
	})
}

func TestNiceTicks(t *testing.T) {
	for _, tt := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 1, []float64{0, 0.25, 0.5, 0.75, 1}},
		{0, 362427, []float64{0, 100000, 200000, 300000, 400000}},
		{-3, 7, []float64{-5, -2.5, 0, 2.5, 5, 7.5}},
	} {
		got := niceTicks(tt.lo, tt.hi, 4)
		if len(got) != len(tt.want) {
			t.Errorf("ticks of [%v, %v]: %v, want %v", tt.lo, tt.hi, got, tt.want)
			continue
		}
		for i := range tt.want {
			if math.Abs(got[i]-tt.want[i]) > 1e-9 {
				t.Errorf("ticks of [%v, %v]: %v, want %v", tt.lo, tt.hi, got, tt.want)
				break
			}
		}
	}
}

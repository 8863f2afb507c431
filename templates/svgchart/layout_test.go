package svgchart

import (
	"strconv"
	"testing"
	"time"
)

// textBox is where a text element of the chart extends, estimated as the layout reserves it.
func textBox(t *testing.T, e element) (lo, hi float64) {
	t.Helper()
	x, err := strconv.ParseFloat(e.Attrs["x"], 64)
	if err != nil {
		t.Fatalf("text without x: %v", e)
	}
	w := textWidth(e.Text)
	switch e.Attrs["text-anchor"] {
	case "end":
		return x - w, x
	case "middle":
		return x - w/2, x + w/2
	}
	return x, x + w
}

// No text of a chart runs past its edges (the dashboard's panels cut it off there), whatever
// the lengths of the labels and values.
func TestChartTextStaysInside(t *testing.T) {
	bar := BarChart{Title: "CLV", Format: func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + " NOK" },
		Bars: []Bar{{"Regulars Trondheim Bakklandet", f(123456.78)}, {"Tier Gold", f(98765.43)}, {"RFM Can't lose", f(-1234.5)}}}
	months := []LinePoint{}
	for m := 6; m <= 12; m++ {
		months = append(months, LinePoint{At: time.Date(2026, time.Month(m), 1, 0, 0, 0, 0, time.UTC), Value: f(float64(m * 1000))})
	}
	line := LineChart{Title: "CLV over time", Format: func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + " NOK" },
		Series: []Series{{Name: "CLV historic of Regulars Trondheim Bakklandet", Points: months}, {Name: "CLV predicted of Regulars Trondheim Bakklandet", Points: months}}}
	for name, svg := range map[string]string{"bar": string(bar.Render()), "line": string(line.Render())} {
		els := parse(t, svg)
		w, _ := strconv.ParseFloat(els[0].Attrs["width"], 64)
		for _, e := range named(els, "text") {
			if lo, hi := textBox(t, e); lo < 0 || hi > w {
				t.Errorf("%s chart: %q spans %.0f–%.0f of a %.0f wide chart", name, e.Text, lo, hi, w)
			}
		}
	}
	// Seven monthly snapshots: the time axis names more than the first and the last.
	dates := 0
	for _, e := range named(parse(t, string(line.Render())), "text") {
		if _, err := time.Parse(time.DateOnly, e.Text); err == nil {
			dates++
		}
	}
	if dates < 4 {
		t.Errorf("the time axis names %d dates of 7 snapshots, want at least 4", dates)
	}
}

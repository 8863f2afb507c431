// Package svgchart draws small bar and line charts as inline SVG on the server, for the console's
// dashboard: no chart library, no script, nothing fetched from elsewhere, so the charts work
// offline and under a strict Content-Security-Policy. The markup carries no style attributes
// (CSP style-src 'self' forbids them): geometry is SVG presentation attributes, colours come
// from CSS classes (chart, bar, line, series-N, axis, grid, label, empty) in the page's stylesheet.
//
// Every chart is role="img" with an aria-label, a <title> and a <desc>; each bar and point has
// its own <title> with the exact value, which browsers show on hover. Missing values (nil, NaN,
// ±Inf) are skipped: a bar is left out, a line is broken. A chart with no value at all is an
// empty-state chart that says so.
package svgchart

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Bar is one bar: a label and its value; a nil Value is skipped.
type Bar struct {
	Label string
	Value *float64
}

// BarChart is a horizontal bar chart: one row per bar, the label on the left, the bar's length
// proportional to its value from a zero baseline (negative values extend left of it). Rows
// suit segment names, which are long and many.
type BarChart struct {
	Title string
	Desc  string
	Bars  []Bar
	// Format writes a value for the bar's end label and its <title>; nil means %.2f.
	Format func(float64) string
	// Width is the chart's width in SVG user units (default 640); the height follows the number
	// of bars. CSS scales the whole picture to its container.
	Width int
}

// LinePoint is one point of a series; a nil Value breaks the line there.
type LinePoint struct {
	At    time.Time
	Value *float64
}

// Series is one line of a line chart.
type Series struct {
	Name   string
	Points []LinePoint
}

// LineChart is a line chart over time, one line per series (at most a handful), with a legend.
// Points are placed by date, so uneven gaps between snapshots show as such.
type LineChart struct {
	Title  string
	Desc   string
	Series []Series
	Format func(float64) string
	// TickFormat writes the values of the y axis' ticks; nil means Format. Ticks are round
	// numbers, so they read better without the decimals a value needs.
	TickFormat func(float64) string
	Width      int // default 640
	Height     int // default 260
}

// Layout constants, in SVG user units. Text is FontSize units high (the stylesheet's font-size
// must match): the charts are drawn about as wide as the panel they are shown in (a dashboard
// panel is 480-640 px), so that their text reads at 13-15 px, not scaled down to 10.
const (
	defaultWidth  = 560
	defaultHeight = 280
	rowHeight     = 28
	barThickness  = 18
	padTop        = 8
	maxLabelRunes = 28 // longer labels are cut with an ellipsis; the <title> has the full text
	// FontSize is the charts' text size in user units (svg.chart's font-size in the stylesheet).
	FontSize = 15
	// charWidth is the most a character takes at FontSize, to reserve room for a text: digits and
	// most letters of a sans-serif are narrower, so reserved room is never too small.
	charWidth = 0.62 * FontSize
)

// textWidth is the room to reserve for s at FontSize.
func textWidth(s string) float64 { return charWidth * float64(utf8.RuneCountInString(s)) }

// chartSeq numbers charts so that several on one page have distinct title/desc ids.
var chartSeq atomic.Uint64

// ok reports whether v is a drawable value.
func ok(v *float64) bool { return v != nil && !math.IsNaN(*v) && !math.IsInf(*v, 0) }

func defaultFormat(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// esc escapes text for XML character data and attribute values.
func esc(s string) string { return template.HTMLEscapeString(s) }

// num writes a coordinate compactly.
func num(v float64) string { return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) }

// shorten cuts a label to maxLabelRunes.
func shorten(s string) string {
	if utf8.RuneCountInString(s) <= maxLabelRunes {
		return s
	}
	r := []rune(s)
	return string(r[:maxLabelRunes-1]) + "…"
}

// fit cuts a label to maxLabelRunes and to width units, with an ellipsis.
func fit(s string, width float64) string {
	s = shorten(s)
	n := max(int(width/charWidth+1e-6), 2)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// open writes the <svg> element with its accessible name and description.
func open(b *strings.Builder, kind, title, desc string, w, h int) {
	id := fmt.Sprintf("chart-%d", chartSeq.Add(1))
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" aria-labelledby="%s-title %s-desc">`,
		kind, w, h, w, h, esc(title), id, id)
	fmt.Fprintf(b, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, id, esc(title), id, esc(desc))
}

// empty writes the empty-state chart: the frame and a line of text saying there is no data.
func empty(kind, title, desc string, w int) template.HTML {
	var b strings.Builder
	h := 80
	open(&b, kind+" chart-empty", title, desc+" No data yet.", w, h)
	fmt.Fprintf(&b, `<rect class="frame" x="0.5" y="0.5" width="%d" height="%d" rx="4"/>`, w-1, h-1)
	fmt.Fprintf(&b, `<text class="empty" x="%d" y="%d" text-anchor="middle">No data yet</text>`, w/2, h/2+5)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// Render draws the bar chart. The result is safe HTML: every text is escaped.
func (c BarChart) Render() template.HTML {
	w := c.Width
	if w <= 0 {
		w = defaultWidth
	}
	format := c.Format
	if format == nil {
		format = defaultFormat
	}
	var bars []Bar
	for _, bar := range c.Bars {
		if ok(bar.Value) {
			bars = append(bars, bar)
		}
	}
	if len(bars) == 0 {
		return empty("bar", c.Title, c.Desc, w)
	}
	// The scale spans zero and every value, so bar lengths are proportional to values. The
	// label column is as wide as the longest label and the room right of the bars (left of
	// them for negative values) as wide as the longest value, so no text runs off the chart.
	lo, hi := 0.0, 0.0
	labelWidth, valueWidth := 0.0, 0.0
	for _, bar := range bars {
		lo, hi = math.Min(lo, *bar.Value), math.Max(hi, *bar.Value)
		labelWidth = math.Max(labelWidth, textWidth(shorten(bar.Label)))
		valueWidth = math.Max(valueWidth, textWidth(format(*bar.Value)))
	}
	labelWidth = math.Min(labelWidth+12, float64(w)*0.5)
	valueWidth += 8
	negRoom := 0.0
	if lo < 0 {
		negRoom = valueWidth // a negative bar's value is written left of it
	}
	plot := float64(w) - labelWidth - valueWidth - negRoom
	if plot < float64(w)/4 {
		plot = float64(w) / 4
		labelWidth = float64(w) - plot - valueWidth - negRoom
	}
	span := hi - lo
	if span == 0 {
		span = 1 // every value is zero: zero-length bars
	}
	scale := plot / span
	zero := labelWidth + negRoom + (-lo)*scale
	h := padTop*2 + rowHeight*len(bars)

	var b strings.Builder
	open(&b, "bar", c.Title, c.Desc, w, h)
	for i, bar := range bars {
		v := *bar.Value
		y := float64(padTop + i*rowHeight)
		length := math.Abs(v) * scale
		x := zero
		if v < 0 {
			x = zero - length
		}
		mid := y + rowHeight/2
		fmt.Fprintf(&b, `<g class="bar"><title>%s: %s</title>`, esc(bar.Label), esc(format(v)))
		fmt.Fprintf(&b, `<text class="label" x="%s" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`,
			num(labelWidth-8), num(mid), esc(fit(bar.Label, labelWidth-12)))
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%d" data-value="%s"/>`,
			num(x), num(mid-barThickness/2), num(length), barThickness, strconv.FormatFloat(v, 'g', -1, 64))
		if v < 0 {
			fmt.Fprintf(&b, `<text class="value" x="%s" y="%s" text-anchor="end" dominant-baseline="middle">%s</text></g>`,
				num(x-4), num(mid), esc(format(v)))
		} else {
			fmt.Fprintf(&b, `<text class="value" x="%s" y="%s" dominant-baseline="middle">%s</text></g>`,
				num(x+length+4), num(mid), esc(format(v)))
		}
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%s" y1="%d" x2="%s" y2="%d"/>`, num(zero), padTop/2, num(zero), h-padTop/2)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceTicks returns about n round tick values from at or below lo to at or above hi, so that
// the axis they label covers every value.
func niceTicks(lo, hi float64, n int) []float64 {
	if hi == lo {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	first, last := math.Floor(lo/step+1e-9), math.Ceil(hi/step-1e-9)
	var ticks []float64
	for i := first; i <= last; i++ {
		ticks = append(ticks, i*step)
	}
	return ticks
}

// Render draws the line chart. The result is safe HTML: every text is escaped.
func (c LineChart) Render() template.HTML {
	w, h := c.Width, c.Height
	if w <= 0 {
		w = defaultWidth
	}
	if h <= 0 {
		h = defaultHeight
	}
	format := c.Format
	if format == nil {
		format = defaultFormat
	}
	var first, last time.Time
	lo, hi := math.Inf(1), math.Inf(-1)
	points := 0
	for _, s := range c.Series {
		for _, p := range s.Points {
			if !ok(p.Value) {
				continue
			}
			points++
			lo, hi = math.Min(lo, *p.Value), math.Max(hi, *p.Value)
			if first.IsZero() || p.At.Before(first) {
				first = p.At
			}
			if last.IsZero() || p.At.After(last) {
				last = p.At
			}
		}
	}
	if points == 0 {
		return empty("line", c.Title, c.Desc, w)
	}
	// Rates and money read best from zero; the range is widened to include it.
	lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	if hi == lo {
		hi = lo + 1
	}
	tickFormat := c.TickFormat
	if tickFormat == nil {
		tickFormat = format
	}
	ticks := niceTicks(lo, hi, 4)
	lo, hi = ticks[0], ticks[len(ticks)-1] // the axis runs from tick to tick
	// The plot starts right of the longest tick label.
	left := 40
	for _, t := range ticks {
		left = max(left, int(math.Ceil(textWidth(tickFormat(t))))+12)
	}
	// The legend: a swatch and the name of each series, left to right, on as many rows as
	// they need within the width.
	type legendItem struct{ x, row int }
	var items []legendItem
	lx, rows := left, 1
	for _, s := range c.Series {
		wItem := 16 + int(math.Ceil(textWidth(shorten(s.Name)))) + 20
		if lx > left && lx+wItem > w {
			lx, rows = left, rows+1
		}
		items = append(items, legendItem{x: lx, row: rows - 1})
		lx += wItem
	}
	// The first and last dates are centred on their points, so half a date's width is kept
	// free on the right (the left has the tick labels' column).
	dateHalf := int(math.Ceil(textWidth("2006-01-02") / 2))
	right, top, bottom := max(16, dateHalf+4), 12, FontSize+16
	legend := rows * (FontSize + 10)
	plotW, plotH := float64(w-left-right), float64(h-top-bottom-legend)
	days := last.Sub(first).Hours() / 24
	x := func(at time.Time) float64 {
		if days == 0 {
			return float64(left) + plotW/2
		}
		return float64(left) + plotW*(at.Sub(first).Hours()/24)/days
	}
	y := func(v float64) float64 { return float64(top) + plotH*(1-(v-lo)/(hi-lo)) }

	var b strings.Builder
	open(&b, "line", c.Title, c.Desc, w, h)
	for _, t := range ticks {
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s"/>`, left, num(y(t)), w-right, num(y(t)))
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`,
			left-6, num(y(t)), esc(tickFormat(t)))
	}
	base := float64(top) + plotH
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%s" x2="%d" y2="%s"/>`, left, num(base), w-right, num(base))
	for _, at := range dateTicks(c.Series, x, textWidth("2006-01-02")+16) {
		fmt.Fprintf(&b, `<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s"/>`, num(x(at)), num(base), num(x(at)), num(base+4))
		fmt.Fprintf(&b, `<text class="tick" x="%s" y="%s" text-anchor="middle">%s</text>`, num(x(at)), num(base+4+FontSize), at.Format(time.DateOnly))
	}
	for i, s := range c.Series {
		fmt.Fprintf(&b, `<g class="series series-%d"><title>%s</title>`, i, esc(s.Name))
		// One polyline per run of consecutive values: a missing value breaks the line.
		var run []string
		flush := func() {
			if len(run) > 1 {
				fmt.Fprintf(&b, `<polyline class="line" fill="none" points="%s"/>`, strings.Join(run, " "))
			}
			run = run[:0]
		}
		for _, p := range s.Points {
			if !ok(p.Value) {
				flush()
				continue
			}
			run = append(run, num(x(p.At))+","+num(y(*p.Value)))
		}
		flush()
		for _, p := range s.Points {
			if ok(p.Value) {
				fmt.Fprintf(&b, `<circle class="point" cx="%s" cy="%s" r="3"><title>%s %s: %s</title></circle>`,
					num(x(p.At)), num(y(*p.Value)), esc(s.Name), p.At.Format(time.DateOnly), esc(format(*p.Value)))
			}
		}
		it := items[i]
		ly := h - 8 - (rows-1-it.row)*(FontSize+10)
		fmt.Fprintf(&b, `<rect class="swatch" x="%d" y="%d" width="12" height="12"/><text class="legend" x="%d" y="%d">%s</text>`,
			it.x, ly-11, it.x+16, ly, esc(shorten(s.Name)))
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// dateTicks picks the dates the time axis names: the dates of the points (snapshots), the first
// and the last always, and between them as many as fit at least gap units apart, spread evenly.
// A chart of six monthly snapshots names every month, not only the first and the last.
func dateTicks(series []Series, x func(time.Time) float64, gap float64) []time.Time {
	seen := map[time.Time]bool{}
	var dates []time.Time
	for _, s := range series {
		for _, p := range s.Points {
			if ok(p.Value) && !seen[p.At] {
				seen[p.At] = true
				dates = append(dates, p.At)
			}
		}
	}
	slices.SortFunc(dates, func(a, b time.Time) int { return a.Compare(b) })
	if len(dates) <= 1 {
		return dates
	}
	last := dates[len(dates)-1]
	out := []time.Time{dates[0]}
	for _, d := range dates[1 : len(dates)-1] {
		// Evenly: a date is named when it is far enough from the one named before and leaves
		// room before the last.
		if x(d)-x(out[len(out)-1]) >= gap && x(last)-x(d) >= gap {
			out = append(out, d)
		}
	}
	if x(last)-x(out[len(out)-1]) >= gap {
		out = append(out, last)
	} else if len(out) > 1 {
		out[len(out)-1] = last // the last date matters more than the one just before it
	}
	return out
}

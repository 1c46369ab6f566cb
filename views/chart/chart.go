// Package chart draws bar and line charts as inline SVG on the server, for
// the reports page: no script and no chart library in the browser. A chart
// has a category axis (days, buckets) and a value axis with round ticks from
// zero; every text it writes is escaped.
package chart

import (
	"context"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/a-h/templ"
)

// Kind is how the series are drawn.
type Kind int

// The kinds of chart.
const (
	Bars  Kind = iota // one bar per series side by side in each category
	Lines             // one line per series, a dot at each category
)

// Series is one named set of values, one per label; NaN is a missing value
// (no bar, a gap in the line).
type Series struct {
	Name   string
	Values []float64
}

// Chart is a chart to draw.
type Chart struct {
	Title  string // the accessible name, also the SVG's <title>
	Kind   Kind
	Labels []string // the categories, left to right
	Series []Series
	// Format writes a value on the axis and in the tooltips; default a
	// number with up to two decimals.
	Format func(float64) string
	// Width and Height in pixels; default 640 by 240.
	Width, Height int
}

// The series' colours, in order; distinct for the usual colour blindness.
var palette = []string{"#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6"}

// Geometry of the plot inside the SVG.
const (
	padLeft   = 64
	padRight  = 12
	padTop    = 28 // the legend
	padBottom = 40
)

// Component renders the chart as a templ component.
func (c Chart) Component() templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		_, err := io.WriteString(w, c.SVG())
		return err
	})
}

// SVG returns the chart's markup.
func (c Chart) SVG() string {
	if c.Width <= 0 {
		c.Width = 640
	}
	if c.Height <= 0 {
		c.Height = 240
	}
	if c.Format == nil {
		c.Format = Number
	}
	var b strings.Builder
	esc := html.EscapeString
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		c.Width, c.Height, c.Width, c.Height, esc(c.Title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(c.Title))

	top := maxValue(c.Series)
	step, ticks := niceTicks(top)
	plotW := float64(c.Width - padLeft - padRight)
	plotH := float64(c.Height - padTop - padBottom)
	y := func(v float64) float64 { return padTop + plotH - v/(step*float64(ticks))*plotH }

	// Value axis: gridlines and round ticks from zero.
	for i := 0; i <= ticks; i++ {
		v := step * float64(i)
		fmt.Fprintf(&b, `<line class="chart-grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e5e7eb"/>`,
			padLeft, c.Width-padRight, y(v), y(v))
		fmt.Fprintf(&b, `<text class="chart-tick" x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle" font-size="11" fill="#4b5563">%s</text>`,
			padLeft-6, y(v), esc(c.Format(v)))
	}
	fmt.Fprintf(&b, `<line class="chart-axis" x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#6b7280"/>`,
		padLeft, c.Width-padRight, y(0), y(0))

	// Category axis: at most about one label per 48 px, so they never overlap.
	n := len(c.Labels)
	if n > 0 {
		slot := plotW / float64(n)
		every := max(1, int(math.Ceil(48/slot)))
		for i, l := range c.Labels {
			if i%every != 0 {
				continue
			}
			fmt.Fprintf(&b, `<text class="chart-label" x="%.1f" y="%d" text-anchor="middle" font-size="11" fill="#4b5563">%s</text>`,
				padLeft+slot*(float64(i)+0.5), c.Height-padBottom+16, esc(l))
		}
		switch c.Kind {
		case Lines:
			c.lines(&b, slot, y)
		default:
			c.bars(&b, slot, y)
		}
	}

	// Legend, top left.
	x := padLeft
	for i, s := range c.Series {
		fmt.Fprintf(&b, `<rect x="%d" y="8" width="10" height="10" fill="%s"/>`, x, palette[i%len(palette)])
		fmt.Fprintf(&b, `<text class="chart-legend" x="%d" y="17" font-size="12" fill="#111827">%s</text>`, x+14, esc(s.Name))
		x += 24 + 7*len([]rune(s.Name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func (c Chart) bars(b *strings.Builder, slot float64, y func(float64) float64) {
	ns := max(1, len(c.Series))
	barW := slot * 0.8 / float64(ns)
	for si, s := range c.Series {
		for i, v := range s.Values {
			if i >= len(c.Labels) {
				break
			}
			if math.IsNaN(v) {
				continue
			}
			x := padLeft + slot*float64(i) + slot*0.1 + barW*float64(si)
			fmt.Fprintf(b, `<rect class="chart-bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`,
				x, y(v), math.Max(barW-1, 1), y(0)-y(v), palette[si%len(palette)],
				html.EscapeString(s.Name+", "+c.Labels[i]+": "+c.Format(v)))
		}
	}
}

func (c Chart) lines(b *strings.Builder, slot float64, y func(float64) float64) {
	for si, s := range c.Series {
		colour := palette[si%len(palette)]
		// A missing value (NaN: no data that day) breaks the line.
		var pts []string
		flush := func() {
			if len(pts) > 0 {
				fmt.Fprintf(b, `<polyline class="chart-line" fill="none" stroke="%s" stroke-width="2" points="%s"/>`, colour, strings.Join(pts, " "))
			}
			pts = nil
		}
		for i, v := range s.Values {
			if i >= len(c.Labels) {
				break
			}
			if math.IsNaN(v) {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", padLeft+slot*(float64(i)+0.5), y(v)))
		}
		flush()
		for i, v := range s.Values {
			if i >= len(c.Labels) {
				break
			}
			if math.IsNaN(v) {
				continue
			}
			fmt.Fprintf(b, `<circle class="chart-dot" cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s</title></circle>`,
				padLeft+slot*(float64(i)+0.5), y(v), colour, html.EscapeString(s.Name+", "+c.Labels[i]+": "+c.Format(v)))
		}
	}
}

func maxValue(series []Series) float64 {
	top := 0.0
	for _, s := range series {
		for _, v := range s.Values {
			if v > top && !math.IsInf(v, 1) {
				top = v
			}
		}
	}
	return top
}

// niceTicks chooses a round step (1, 2 or 5 times a power of ten) and a
// count of about five steps whose top is at least top. An empty chart gets
// the axis 0 to 1.
func niceTicks(top float64) (step float64, ticks int) {
	if top <= 0 || math.IsNaN(top) {
		return 0.2, 5
	}
	raw := top / 5
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * pow; step >= raw {
			break
		}
	}
	return step, int(math.Ceil(top/step - 1e-9))
}

// Number formats a value with up to two decimals, without trailing zeros.
func Number(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// Minutes formats a value in minutes: "4.5 min", or hours from 90 minutes on.
func Minutes(v float64) string {
	if v >= 90 {
		return Number(v/60) + " h"
	}
	return Number(v) + " min"
}

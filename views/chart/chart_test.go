package chart

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
)

// wellFormed parses the SVG as XML: an unescaped name would break it.
func wellFormed(t *testing.T, svg string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := d.Token(); err == io.EOF {
			return
		} else if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, svg)
		}
	}
}

func TestBarsDrawOneBarPerValueAndEscapeText(t *testing.T) {
	hostile := `<script>alert("x")</script>&`
	c := Chart{Title: hostile, Labels: []string{"Mon", hostile, "Wed"},
		Series: []Series{{Name: "opened", Values: []float64{3, 7, 0}}, {Name: hostile, Values: []float64{1, 2, 3}}}}
	svg := c.SVG()
	wellFormed(t, svg)
	if strings.Contains(svg, "<script") {
		t.Error("a label was written unescaped")
	}
	if n := strings.Count(svg, `class="chart-bar"`); n != 6 {
		t.Errorf("%d bars, want 6", n)
	}
	// The tallest bar (7) reaches the top tick or stays below it: the axis covers it.
	if !strings.Contains(svg, ">8</text>") {
		t.Errorf("the value axis does not reach 8 for a top of 7:\n%s", svg)
	}
}

func TestLinesAndEmptyCharts(t *testing.T) {
	c := Chart{Title: "first response", Kind: Lines, Labels: []string{"a", "b"},
		Series: []Series{{Name: "median", Values: []float64{4.5, 120}}}, Format: Minutes}
	svg := c.SVG()
	wellFormed(t, svg)
	if strings.Count(svg, "<polyline") != 1 || strings.Count(svg, `class="chart-dot"`) != 2 {
		t.Errorf("want one line with two dots:\n%s", svg)
	}
	if !strings.Contains(svg, "2 h") || !strings.Contains(svg, "4.5 min") {
		t.Errorf("minutes not formatted:\n%s", svg)
	}
	gap := Chart{Title: "gap", Kind: Lines, Labels: []string{"a", "b", "c", "d"},
		Series: []Series{{Name: "median", Values: []float64{1, 2, math.NaN(), 3}}}}.SVG()
	wellFormed(t, gap)
	if strings.Count(gap, "<polyline") != 2 || strings.Count(gap, `class="chart-dot"`) != 3 || strings.Contains(gap, "NaN") {
		t.Errorf("a missing value should break the line in two, with no dot:\n%s", gap)
	}
	empty := Chart{Title: "nothing"}.SVG()
	wellFormed(t, empty)
	if strings.Contains(empty, "NaN") || strings.Contains(empty, "Inf") {
		t.Errorf("an empty chart: %s", empty)
	}
}

func TestNiceTicks(t *testing.T) {
	for _, top := range []float64{0.003, 0.9, 1, 7, 42, 99.5, 1234, 1e6} {
		step, n := niceTicks(top)
		if step*float64(n) < top || n < 1 || n > 10 {
			t.Errorf("niceTicks(%v) = %v × %d", top, step, n)
		}
		if m := step / math.Pow(10, math.Floor(math.Log10(step))); math.Abs(m-1) > 1e-9 && math.Abs(m-2) > 1e-9 && math.Abs(m-5) > 1e-9 {
			t.Errorf("niceTicks(%v): step %v is not round", top, step)
		}
	}
}

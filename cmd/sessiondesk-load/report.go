package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"sessiondesk/cmd/sessiondesk-load/internal/stats"
)

// figure is one line of the report: a value per run, and the baseline it is
// compared with, measured in the same run.
type figure struct {
	Name     string    `json:"name"`
	Unit     string    `json:"unit"`
	Values   []float64 `json:"values"`             // one per run
	Baseline string    `json:"baseline,omitempty"` // what it is compared with
	BaseUnit string    `json:"baseline_unit,omitempty"`
	Bases    []float64 `json:"baselines,omitempty"`
	// Ratio says how the ratio reads: "value/baseline" (a share of the
	// baseline, e.g. a rate) or "" for none.
	Ratio  string  `json:"ratio,omitempty"`
	Target string  `json:"target,omitempty"`
	Before string  `json:"before,omitempty"` // the figure before the work
	Median float64 `json:"median"`
	// BaseMedian and RatioMedian are the medians over runs (of the per-run ratios).
	BaseMedian  float64 `json:"baseline_median,omitempty"`
	RatioMedian float64 `json:"ratio_median,omitempty"`
}

// report is everything a load run measured.
type report struct {
	Machine   string    `json:"machine"`
	Command   string    `json:"command"`
	Date      time.Time `json:"date"`
	Runs      int       `json:"runs"`
	Dataset   string    `json:"dataset"`
	Import    string    `json:"import,omitempty"` // how long generating the dataset took, when it was generated
	FileLimit uint64    `json:"open_files_limit"`
	Notes     []string  `json:"notes,omitempty"`
	Figures   []*figure `json:"figures"`
	index     map[string]*figure
}

// fig returns the figure of that name, adding it on first use.
func (r *report) fig(name, unit, target, before string) *figure {
	if r.index == nil {
		r.index = map[string]*figure{}
	}
	if f, ok := r.index[name]; ok {
		return f
	}
	f := &figure{Name: name, Unit: unit, Target: target, Before: before}
	r.index[name] = f
	r.Figures = append(r.Figures, f)
	return f
}

// add records one run's value.
func (f *figure) add(v float64) { f.Values = append(f.Values, v) }

// addWith records one run's value and the baseline measured in that run;
// the ratio is value/baseline.
func (f *figure) addWith(v float64, baseline, unit string, base float64) {
	f.Values = append(f.Values, v)
	f.Baseline, f.BaseUnit, f.Ratio = baseline, unit, "value/baseline"
	f.Bases = append(f.Bases, base)
}

func (r *report) finish() {
	for _, f := range r.Figures {
		f.Median = stats.Median(f.Values)
		if f.Ratio == "" {
			continue
		}
		f.BaseMedian = stats.Median(f.Bases)
		var ratios []float64
		for i, v := range f.Values {
			if i < len(f.Bases) && f.Bases[i] != 0 {
				ratios = append(ratios, v/f.Bases[i])
			}
		}
		f.RatioMedian = stats.Median(ratios)
	}
}

func num(v float64, unit string) string {
	if math.IsNaN(v) {
		return "–"
	}
	if math.IsInf(v, 1) {
		return "none shown"
	}
	var s string
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		s = fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		s = fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		s = fmt.Sprintf("%.1f", v)
	default:
		s = fmt.Sprintf("%.2f", v)
	}
	if unit == "" {
		return s
	}
	return s + " " + unit
}

// ratio shows a rate as a share of its baseline (%), and a latency or size as
// a multiple (×).
func ratio(v float64, unit string) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case strings.HasSuffix(unit, "/s") && v < 0.1:
		return fmt.Sprintf("%.2f%%", v*100)
	case strings.HasSuffix(unit, "/s"):
		return fmt.Sprintf("%.0f%%", v*100)
	case v < 10:
		return fmt.Sprintf("%.2f×", v)
	default:
		return fmt.Sprintf("%.0f×", v)
	}
}

func (r *report) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "Machine: %s. %s, %d run(s); each figure is the median of the runs, each ratio the median of the runs' own ratios.\n\n",
		r.Machine, r.Dataset, r.Runs)
	if r.Import != "" {
		fmt.Fprintf(w, "Dataset generated through the store's own calls (store.Batch) in %s.\n\n", r.Import)
	}
	fmt.Fprintln(w, "| Figure | Value | Baseline (same run) | Ratio | Target | Before (issue 10) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, f := range r.Figures {
		base, rat := "", ""
		if f.Ratio != "" {
			base = f.Baseline + ": " + num(f.BaseMedian, f.BaseUnit)
			rat = ratio(f.RatioMedian, f.Unit)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", f.Name, num(f.Median, f.Unit), base, rat, f.Target, f.Before)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
	fmt.Fprintf(w, "\nCommand: `%s` (open files limit %d).\n", strings.TrimSpace(r.Command), r.FileLimit)
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	clean := *r
	clean.Figures = make([]*figure, len(r.Figures))
	for i, f := range r.Figures {
		c := *f
		c.Values = finite(f.Values)
		c.Bases = finite(f.Bases)
		c.Median, c.BaseMedian, c.RatioMedian = finiteOne(f.Median), finiteOne(f.BaseMedian), finiteOne(f.RatioMedian)
		clean.Figures[i] = &c
	}
	return enc.Encode(clean)
}

// JSON has no NaN or infinity: a missing value (or none shown) is -1.
func finite(vs []float64) []float64 {
	out := make([]float64, len(vs))
	for i, v := range vs {
		out[i] = finiteOne(v)
	}
	return out
}

func finiteOne(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return -1
	}
	return v
}

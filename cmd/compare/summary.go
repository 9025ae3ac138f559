package main

import (
	"fmt"
	"math"
	"strings"
)

// subsets are the rows of the table, in order.
var subsets = []string{"video-aligned", "audio-aligned", "consistent", "all"}

// stat is a mean and a sample standard deviation over seeds.
type stat struct {
	Mean float64   `json:"mean"`
	SD   float64   `json:"sd"`
	Runs []float64 `json:"runs"`
}

func newStat(xs []float64) stat {
	s := stat{Runs: xs}
	if len(xs) == 0 {
		return s
	}
	for _, x := range xs {
		s.Mean += x
	}
	s.Mean /= float64(len(xs))
	if len(xs) > 1 {
		var v float64
		for _, x := range xs {
			v += (x - s.Mean) * (x - s.Mean)
		}
		s.SD = math.Sqrt(v / float64(len(xs)-1))
	}
	return s
}

func (s stat) pct() string { return fmt.Sprintf("%.1f ± %.1f", 100*s.Mean, 100*s.SD) }

// row is one variant (or one variant evaluated with AR) over the seeds.
type row struct {
	Name      string          `json:"name"`
	Desc      string          `json:"desc"`
	Trainable int64           `json:"trainable"`
	Accuracy  map[string]stat `json:"accuracy"` // per subset
	Gap       stat            `json:"conflict_gap"`
}

// result is the whole comparison.
type result struct {
	Seeds       []int      `json:"seeds"`
	Steps       int        `json:"steps"`
	MatchedRank int        `json:"matched_lora_rank"`
	Recipe      string     `json:"recipe"`
	Rows        []row      `json:"rows"`
	Runs        []*runSpec `json:"runs"`
}

func summarize(o options, runs []*runSpec, rank int) result {
	res := result{Seeds: o.seeds, Steps: o.steps, MatchedRank: rank, Recipe: o.recipe, Runs: runs}
	for _, name := range o.variants {
		v, _ := lookupVariant(name)
		var mine []*runSpec
		for _, r := range runs {
			if r.Variant == name {
				mine = append(mine, r)
			}
		}
		if len(mine) == 0 {
			continue
		}
		desc := v.Desc
		if v.Matched {
			desc = fmt.Sprintf("%s: r=%d", desc, rank)
		}
		res.Rows = append(res.Rows, makeRow(name, desc, mine, func(r *runSpec) *evalResult { return r.Eval }))
		if v.AR {
			res.Rows = append(res.Rows, makeRow(name+" +AR", desc+", Attention Reallocation at eval", mine,
				func(r *runSpec) *evalResult { return r.EvalAR }))
		}
	}
	return res
}

func makeRow(name, desc string, runs []*runSpec, pick func(*runSpec) *evalResult) row {
	rw := row{Name: name, Desc: desc, Trainable: runs[0].Trainable, Accuracy: map[string]stat{}}
	for _, sub := range subsets {
		var xs []float64
		for _, r := range runs {
			if ev := pick(r); ev != nil {
				xs = append(xs, ev.Subsets[sub].Accuracy)
			}
		}
		rw.Accuracy[sub] = newStat(xs)
	}
	var gaps []float64
	for _, r := range runs {
		if ev := pick(r); ev != nil {
			gaps = append(gaps, gapOf(ev))
		}
	}
	rw.Gap = newStat(gaps)
	return rw
}

func (res result) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Accuracy (%%) per subset and conflict gap (audio-aligned − video-aligned, pp): mean ± sd over seeds %v, %d steps, %s.\n\n",
		res.Seeds, res.Steps, res.Recipe)
	b.WriteString("| variant | trainable | video-aligned | audio-aligned | consistent | all | conflict gap |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range res.Rows {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s |\n", r.Name, r.Trainable,
			r.Accuracy["video-aligned"].pct(), r.Accuracy["audio-aligned"].pct(), r.Accuracy["consistent"].pct(),
			r.Accuracy["all"].pct(), fmt.Sprintf("%+.1f ± %.1f", 100*r.Gap.Mean, 100*r.Gap.SD))
	}
	b.WriteString("\n")
	for _, r := range res.Rows {
		fmt.Fprintf(&b, "- `%s`: %s\n", r.Name, r.Desc)
	}
	return b.String()
}

// studyResult is the comparison at every value of one data knob.
type studyResult struct {
	Knob        string    `json:"knob"`
	Values      []float64 `json:"values"`
	Seeds       []int     `json:"seeds"`
	Steps       int       `json:"steps"`
	MatchedRank int       `json:"matched_lora_rank"`
	Points      []result  `json:"points"`
}

func (st studyResult) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "`all` accuracy and conflict gap (pp) vs `%s`: mean ± sd over seeds %v, %d steps.\n\n", st.Knob, st.Seeds, st.Steps)
	b.WriteString("| " + st.Knob + " | variant | trainable | video-aligned | audio-aligned | all | conflict gap |\n|---|---|---|---|---|---|---|\n")
	for i, p := range st.Points {
		for _, r := range p.Rows {
			fmt.Fprintf(&b, "| %g | %s | %d | %s | %s | %s | %+.1f ± %.1f |\n", st.Values[i], r.Name, r.Trainable,
				r.Accuracy["video-aligned"].pct(), r.Accuracy["audio-aligned"].pct(), r.Accuracy["all"].pct(), 100*r.Gap.Mean, 100*r.Gap.SD)
		}
	}
	return b.String()
}

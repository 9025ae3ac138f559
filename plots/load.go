package plots

import (
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// ExpertLoad writes to path a PNG of the expert load f_k of every router group
// against the optimizer step: one panel per group (sorted by name), one line per
// expert, and a dashed reference at the uniform load 1/K. Panel titles start
// with caption (the run and step; "" for none). Records without router
// telemetry (eval lines, LoRA) are skipped. It returns an error wrapping
// ErrNoData when no record has a non-empty load.
func ExpertLoad(records []Record, caption, path string) error {
	groups := map[string][]series{}
	for _, r := range records {
		if r.IsEval() {
			continue
		}
		for g, st := range r.Router {
			ss := groups[g]
			for len(ss) < len(st.Load) {
				ss = append(ss, series{name: fmt.Sprintf("expert %d", len(ss))})
			}
			for k, f := range st.Load {
				ss[k].add(float64(r.Step), f)
			}
			groups[g] = ss
		}
	}
	names := make([]string, 0, len(groups))
	for g, ss := range groups {
		for _, s := range ss {
			if len(s.xys) > 0 {
				names = append(names, g)
				break
			}
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("plots: expert load %s: %w", path, ErrNoData)
	}
	sort.Strings(names)
	panels := make([]*plot.Plot, len(names))
	for i, g := range names {
		p := newPanel(captioned(caption, fmt.Sprintf("Expert load f_k — group %s", g)), "step", "fraction of slots")
		if err := addLines(p, groups[g], false); err != nil {
			return fmt.Errorf("plots: expert load %s: %w", path, err)
		}
		if u := uniformLoad(groups[g]); u != nil {
			l, err := plotter.NewLine(u.xys)
			if err != nil {
				return fmt.Errorf("plots: expert load %s: %w", path, err)
			}
			l.Color = color.Gray{Y: 110}
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(l)
			p.Legend.Add(u.name, l)
		}
		p.Y.Min = 0
		panels[i] = p
	}
	png, err := renderStack(panels, 9*vg.Inch, 2.6*vg.Inch, true)
	if err != nil {
		return fmt.Errorf("plots: expert load %s: %w", path, err)
	}
	if err := writeAtomic(path, png); err != nil {
		return fmt.Errorf("plots: expert load %s: %w", path, err)
	}
	return nil
}

// uniformLoad is the reference line of a group's panel: the load 1/K every
// one of its K experts would have under a perfectly balanced router, over
// the steps its series span; nil without points.
func uniformLoad(ss []series) *series {
	lo, hi, any := math.Inf(1), math.Inf(-1), false
	for _, s := range ss {
		for _, p := range s.xys {
			lo, hi, any = math.Min(lo, p.X), math.Max(hi, p.X), true
		}
	}
	if !any || len(ss) == 0 {
		return nil
	}
	u := &series{name: fmt.Sprintf("uniform 1/%d", len(ss))}
	u.add(lo, 1/float64(len(ss)))
	u.add(hi, 1/float64(len(ss)))
	return u
}

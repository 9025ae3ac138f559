package plots

import (
	"fmt"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
)

// ExpertLoad writes to path a PNG of the expert load f_k of every router group
// against the optimizer step: one panel per group (sorted by name), one line per
// expert. Records without router telemetry (eval lines, LoRA) are skipped. It
// returns an error wrapping ErrNoData when no record has a non-empty load.
func ExpertLoad(records []Record, path string) error {
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
		p := newPanel(fmt.Sprintf("Expert load f_k — group %s", g), "step", "fraction of slots")
		if err := addLines(p, groups[g], false); err != nil {
			return fmt.Errorf("plots: expert load %s: %w", path, err)
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

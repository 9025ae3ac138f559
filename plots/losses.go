package plots

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
)

// ErrNoData is returned (wrapped) when there is nothing to plot.
var ErrNoData = errors.New("no data to plot")

// Losses writes to path a PNG of the training curves in records, one panel each,
// against the optimizer step:
//
//   - emotion_loss and total_loss, and the eval loss ("all.loss" of the eval
//     records, as points);
//   - lb_loss and z_loss (flat at 0 for LoRA);
//   - lr;
//   - if any record carries eval metrics, every "<subset>.accuracy" key as points.
//
// Loss panels use training records only (see Record.IsEval); eval points come
// from every record with Eval. When a step repeats (a resume logs again the steps
// after its checkpoint), the last value wins. Non-finite values are skipped. It
// returns an error wrapping ErrNoData when records hold neither a training record
// nor an eval accuracy. Panel titles start with caption (the run and step;
// "" for none).
func Losses(records []Record, caption, path string) error {
	c := collectLosses(records)
	if c.train == 0 && len(c.evals) == 0 {
		return fmt.Errorf("plots: losses %s: %w", path, ErrNoData)
	}

	var panels []*plot.Plot
	if c.train > 0 {
		specs := []struct {
			title, y string
			ss       []series
		}{
			{"Loss", "loss", []series{c.emotion, c.total}},
			{"Router auxiliary losses (before λ)", "loss", []series{c.lb, c.z}},
			{"Learning rate", "lr", []series{c.lr}},
		}
		for i, sp := range specs {
			p := newPanel(captioned(caption, sp.title), "step", sp.y)
			ss := sp.ss
			if i == 0 {
				ss = append(ss, c.evalLoss)
			}
			if err := addLines(p, ss, false); err != nil {
				return fmt.Errorf("plots: losses %s: %w", path, err)
			}
			panels = append(panels, p)
		}
	}
	if len(c.evals) > 0 {
		p := newPanel(captioned(caption, "Eval accuracy"), "step", "accuracy")
		if err := addLines(p, c.evals, true); err != nil {
			return fmt.Errorf("plots: losses %s: %w", path, err)
		}
		p.Y.Min, p.Y.Max = 0, 1
		panels = append(panels, p)
	}
	png, err := renderStack(panels, 9*vg.Inch, 2.6*vg.Inch, true)
	if err != nil {
		return fmt.Errorf("plots: losses %s: %w", path, err)
	}
	if err := writeAtomic(path, png); err != nil {
		return fmt.Errorf("plots: losses %s: %w", path, err)
	}
	return nil
}

// lossCurves are the series of the Losses plot.
type lossCurves struct {
	emotion, total, lb, z, lr series
	evalLoss                  series   // "all.loss" of the eval records
	evals                     []series // "<subset>.accuracy", sorted by key
	train                     int      // number of training records
}

// collectLosses extracts the Losses series from records.
func collectLosses(records []Record) lossCurves {
	c := lossCurves{
		emotion:  series{name: "emotion_loss"},
		total:    series{name: "total_loss"},
		lb:       series{name: "lb_loss"},
		z:        series{name: "z_loss"},
		lr:       series{name: "lr"},
		evalLoss: series{name: "eval loss (all)"},
	}
	evals := map[string]*series{}
	for _, r := range records {
		x := float64(r.Step)
		if !r.IsEval() {
			c.train++
			c.emotion.add(x, r.EmotionLoss)
			c.total.add(x, r.TotalLoss)
			c.lb.add(x, r.LBLoss)
			c.z.add(x, r.ZLoss)
			c.lr.add(x, r.LR)
		}
		if v, ok := r.Eval["all.loss"]; ok {
			c.evalLoss.add(x, v)
		}
		for k, v := range r.Eval {
			if !strings.HasSuffix(k, ".accuracy") {
				continue
			}
			s, ok := evals[k]
			if !ok {
				s = &series{name: k}
				evals[k] = s
			}
			s.add(x, v)
		}
	}
	c.evals = sortedSeries(evals)
	return c
}

// sortedSeries returns the non-empty series of m sorted by name.
func sortedSeries(m map[string]*series) []series {
	names := make([]string, 0, len(m))
	for k, s := range m {
		if len(s.xys) > 0 {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	out := make([]series, len(names))
	for i, k := range names {
		out[i] = *m[k]
	}
	return out
}

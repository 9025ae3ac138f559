package trainer

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/mose-llm/mose/metrics"
	"github.com/mose-llm/mose/plots"
)

// plot writes the end-of-run PNGs into the run directory: loss curves,
// expert load per group (MoSE) and the confusion matrix of the last eval.
func (r *run) plot(rep *metrics.Report) error {
	recs, err := plots.ReadRecords(filepath.Join(r.out, "metrics.jsonl"))
	if err != nil {
		return err
	}
	caption := fmt.Sprintf("%s, step %d", r.c.Cfg.Run.Name, r.st.Step)
	var errs []error
	if err := plots.Losses(recs, caption, filepath.Join(r.out, "loss.png")); err != nil && !errors.Is(err, plots.ErrNoData) {
		errs = append(errs, err)
	}
	if err := plots.ExpertLoad(recs, caption, filepath.Join(r.out, "expert_load.png")); err != nil && !errors.Is(err, plots.ErrNoData) {
		errs = append(errs, err)
	}
	if rep != nil {
		if all := rep.Subsets[metrics.SubsetAll]; all != nil && all.N > 0 {
			errs = append(errs, plots.Confusion(rep.Labels, all.Confusion, caption, filepath.Join(r.out, "confusion.png")))
		}
	}
	return errors.Join(errs...)
}

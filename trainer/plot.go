package trainer

import (
	"errors"
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
	var errs []error
	if err := plots.Losses(recs, filepath.Join(r.out, "loss.png")); err != nil && !errors.Is(err, plots.ErrNoData) {
		errs = append(errs, err)
	}
	if err := plots.ExpertLoad(recs, filepath.Join(r.out, "expert_load.png")); err != nil && !errors.Is(err, plots.ErrNoData) {
		errs = append(errs, err)
	}
	if rep != nil {
		if all := rep.Subsets[metrics.SubsetAll]; all != nil && all.N > 0 {
			errs = append(errs, plots.Confusion(rep.Labels, all.Confusion, filepath.Join(r.out, "confusion.png")))
		}
	}
	return errors.Join(errs...)
}

package trainer

import (
	"context"
	"fmt"
	"time"

	"github.com/mose-llm/mose/infer"
	"github.com/mose-llm/mose/metrics"
	"github.com/sirupsen/logrus"
)

// evaluate scores the eval set and logs and records the metrics.
func (r *run) evaluate(ctx context.Context) (*metrics.Report, error) {
	arOut := r.out
	if !r.lead() {
		arOut = "" // rank 0 writes attention_stats.json (of its shard)
	}
	if report := r.evalProgress(time.Now()); report != nil {
		ctx = infer.WithProgress(ctx, report)
	}
	rep, err := infer.EvalSet(ctx, r.c, arOut)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	rep.Step = r.st.Step
	if r.lastCk != "" && r.lastSt.Step == r.st.Step { // the adapters evaluated are that checkpoint's
		rep.Checkpoint = r.lastCk
	}
	r.writeEvalRecord(rep)
	f := logrus.Fields{"step": r.st.Step}
	for _, k := range []string{"all.accuracy", "all.uar", "all.weighted_f1", "video-aligned.accuracy", "audio-aligned.accuracy", "consistent.accuracy", "all.conflict_gap"} {
		if v, ok := rep.Lookup(k); ok {
			f[k] = round(v)
		}
	}
	r.log.WithFields(f).Info("eval")
	return rep, nil
}

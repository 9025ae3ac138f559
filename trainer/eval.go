package trainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"

	"github.com/sirupsen/logrus"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/metrics"
	"github.com/mose-llm/mose/model"
)

// evaluate scores the eval set and logs and records the metrics.
func (r *run) evaluate(ctx context.Context) (*metrics.Report, error) {
	rep, err := evalSet(ctx, r.c, r.out)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
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

// evalSet evaluates c's eval set in the recipe's mode, with Attention
// Reallocation when eval.ar.enabled (its statistics written to arOut, if set).
func evalSet(ctx context.Context, c *components, arOut string) (*metrics.Report, error) {
	cfg := c.cfg.Eval
	if cfg.AR.Enabled {
		n := len(c.model.Layers)
		ar := &model.AR{First: min(2, n-1), Last: n - 1, Beta: cfg.AR.Beta, Adaptive: cfg.AR.Tau != "fixed",
			TauValue: cfg.AR.TauValue, Kappa: cfg.AR.Kappa}
		if len(cfg.AR.Layers) == 2 {
			ar.First, ar.Last = cfg.AR.Layers[0], cfg.AR.Layers[1]
		}
		if err := ar.Validate(n); err != nil {
			return nil, fmt.Errorf("%w: eval.ar: %v", ErrRecipe, err)
		}
		if cfg.AR.DumpStats {
			ar.Stats = &model.ARStats{}
		}
		c.model.AR = ar
		defer func() { c.model.AR = nil }()
	}
	eval := scoreEval
	if cfg.Mode == "generate" {
		eval = generateEval
	}
	rep, err := eval(ctx, c)
	if err != nil {
		return nil, err
	}
	if st := c.model.AR; st != nil && st.Stats != nil && arOut != "" {
		if err := writeJSON(filepath.Join(arOut, "attention_stats.json"), arSummary(st)); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// arSummary turns AR statistics into per-layer, per-head means.
func arSummary(ar *model.AR) map[string]any {
	st := ar.Stats
	mean := func(m [][]float64) [][]float64 {
		out := make([][]float64, len(m))
		for l := range m {
			out[l] = make([]float64, len(m[l]))
			for h := range m[l] {
				if q := st.Queries[l][h]; q > 0 {
					out[l][h] = m[l][h] / q
				}
			}
		}
		return out
	}
	return map[string]any{"layers": [2]int{ar.First, ar.Last}, "beta": ar.Beta, "adaptive": ar.Adaptive,
		"audio_mass": mean(st.Audio), "visual_mass": mean(st.Visual), "flagged_fraction": mean(st.Flagged),
		"note": "per layer and head: attention mass on audio / visual keys and the fraction of queries flagged, averaged over all queries before reallocation"}
}

// forEachBatch runs fn, without autograd, on every batch of one pass over
// ds in mode (in dataset order, eval.batch_size samples per batch).
func forEachBatch(ctx context.Context, c *components, ds *data.Dataset, mode data.Mode, fn func(b *data.Batch) error) error {
	bs := c.cfg.Eval.BatchSize
	if bs <= 0 {
		bs = c.cfg.Train.BatchSize
	}
	smp, err := data.NewSampler(ds.Lengths(), data.SamplerOptions{BatchSize: bs})
	if err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loader := data.NewLoader(lctx, ds, smp, data.LoaderOptions{Mode: mode, Workers: c.cfg.Data.Workers, Epochs: 1})
	defer loader.Close()
	return torch.NoGrad(func() error {
		for {
			b, err := loader.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := fn(b); err != nil {
				return err
			}
		}
	})
}

// scoreEval ranks every label of every eval sample by the log-likelihood of
// its answer tokens (score mode) and computes the metrics. Deterministic:
// no dropout, no gate noise, the eval set in order.
func scoreEval(ctx context.Context, c *components) (*metrics.Report, error) {
	var preds []metrics.Prediction
	err := forEachBatch(ctx, c, c.eval, data.ModeScore, func(b *data.Batch) error {
		s := torch.NewScope()
		defer s.Close()
		bt := toTensors(s, b, c.dev)
		lp := s.LogSoftmax(c.model.Logits(s, c.model.Forward(s, bt.in, false), bt.pos), -1) // (N,V)
		scores, err := answerScores(s, lp, bt, b, c.dev).Float64s()
		if err != nil {
			return err
		}
		preds = append(preds, pickLabels(b, scores)...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep := metrics.Compute(preds, c.spec.Labels)
	return &rep, nil
}

// answerScores sums, per row, the log-probabilities lp (N,V) of the target
// tokens at the batch's scored positions: (rows) answer log-likelihoods.
func answerScores(s *torch.Scope, lp *torch.Tensor, bt batchTensors, b *data.Batch, dev torch.Device) *torch.Tensor {
	tok := s.Squeeze(s.Gather(lp, 1, s.Unsqueeze(bt.targets, 1)), 1) // (N)
	rows := make([]int64, len(b.TargetPos))
	for i, p := range b.TargetPos {
		rows[i] = p / int64(b.T)
	}
	idx := s.FromInt64(rows, int64(len(rows)))
	if dev != torch.CPU {
		idx = s.ToDevice(idx, dev)
	}
	return s.IndexAdd(s.Zeros([]int64{int64(b.B)}, torch.Float32, dev), 0, idx, tok) // (rows)
}

// pickLabels predicts, for each example of a score batch, the candidate
// label with the highest answer log-likelihood.
func pickLabels(b *data.Batch, scores []float64) []metrics.Prediction {
	best := make([]float64, b.Examples)
	pred := make([]int, b.Examples)
	first := make([]int, b.Examples)
	for i := range best {
		best[i], first[i] = math.Inf(-1), -1
	}
	for r := range b.B {
		g := b.Group[r]
		if first[g] < 0 {
			first[g] = r
		}
		if scores[r] > best[g] {
			best[g], pred[g] = scores[r], b.Candidates[r]
		}
	}
	out := make([]metrics.Prediction, b.Examples)
	for g := range out {
		r := first[g]
		out[g] = metrics.Prediction{ID: b.SampleIDs[r], Subset: b.Subsets[r], Label: b.Labels[r], Pred: pred[g]}
	}
	return out
}

package infer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/metrics"
	"github.com/mose-llm/mose/modality"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/stack"
)

// EvalSet evaluates c's eval set in the recipe's mode, with Attention
// Reallocation when eval.ar.enabled (its statistics written to arOut, if set).
func EvalSet(ctx context.Context, c *stack.Stack, arOut string) (*metrics.Report, error) {
	cfg := c.Cfg.Eval
	off, err := UseAR(c)
	if err != nil {
		return nil, err
	}
	defer off()
	eval := scoreEval
	if cfg.Mode == "generate" {
		eval = generateEval
	}
	rep, err := eval(ctx, c)
	if err != nil {
		return nil, err
	}
	if st := c.Model.AR; st != nil && st.Stats != nil && arOut != "" {
		if err := fsutil.WriteJSON(filepath.Join(arOut, "attention_stats.json"), arSummary(st)); err != nil {
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

// ForEachBatch runs fn, without autograd, on every batch of one pass over
// ds in mode (in dataset order, eval.batch_size samples per batch). Under
// data parallelism each rank runs its slice of every world × eval.batch_size
// samples (gatherPredictions combines the results).
func ForEachBatch(ctx context.Context, c *stack.Stack, ds *data.Dataset, mode data.Mode, fn func(b *data.Batch) error) error {
	bs := c.Cfg.Eval.BatchSize
	if bs <= 0 {
		bs = c.Cfg.Train.BatchSize
	}
	smp, err := data.NewSampler(ds.Lengths(), data.SamplerOptions{BatchSize: bs * c.World()})
	if err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loader := data.NewLoader(lctx, ds, smp, data.LoaderOptions{Mode: mode, Workers: c.Cfg.Data.Workers, Epochs: 1,
		Shard: c.Rank(), Shards: c.World()})
	defer loader.Close()
	report, _ := ctx.Value(progressKey{}).(func(done, total int))
	return torch.NoGrad(func() error {
		for done := 1; ; done++ {
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
			if report != nil {
				report(done, smp.BatchesPerEpoch())
			}
		}
	})
}

// progressKey is the context key of WithProgress.
type progressKey struct{}

// WithProgress returns ctx carrying report, which the passes over a dataset
// run with it (evaluation, prediction, calibration) call after each batch
// with the batches done and their total: a progress bar's hook.
func WithProgress(ctx context.Context, report func(done, total int)) context.Context {
	return context.WithValue(ctx, progressKey{}, report)
}

// scoreEval ranks every label of every eval sample by the log-likelihood of
// its answer tokens (score mode) and computes the metrics. Deterministic:
// no dropout, no gate noise, the eval set in order. Each sample's prompt runs
// once into a KV cache and every label's answer is scored from it in one
// batched call (scoreCached); scoreRows is the reference path that runs
// prompt + answer once per label.
func scoreEval(ctx context.Context, c *stack.Stack) (*metrics.Report, error) {
	preds, idx, err := scorePredictions(ctx, c, c.Eval, true)
	if err != nil {
		return nil, err
	}
	if preds, err = c.GatherPredictions(c.Eval, preds, idx); err != nil {
		return nil, err
	}
	rep := metrics.Compute(preds, c.Spec.Labels)
	return &rep, nil
}

// scorePredictions predicts every sample of ds (of this rank's shard) by
// its best-scored label, through the KV cache (cached) or one row per
// label; idx are the predictions' dataset indices.
func scorePredictions(ctx context.Context, c *stack.Stack, ds *data.Dataset, cached bool) (preds []metrics.Prediction, idx []int, err error) {
	enc := ds.Encoder()
	err = forEachScored(ctx, c, ds, cached, func(b *data.Batch, first []int, scores [][]float64) error {
		for g, r := range first {
			best := 0
			for k, v := range scores[g] {
				if v > scores[g][best] {
					best = k
				}
			}
			p := metrics.Prediction{ID: b.SampleIDs[r], Subset: b.Subsets[r], Label: b.Labels[r], Pred: best}
			if l := p.Label; l >= 0 && l < len(scores[g]) {
				p.NLL, p.Tokens = -scores[g][l], len(enc.LabelAnswer(l)) // the eval loss's terms
			}
			preds = append(preds, p)
			idx = append(idx, b.Index[r])
		}
		return nil
	})
	return preds, idx, err
}

// forEachScored calls fn with every batch of ds, the first row of each of
// its examples and their label scores [example][label] (answer
// log-likelihoods), computed through the cache or one row per label.
func forEachScored(ctx context.Context, c *stack.Stack, ds *data.Dataset, cached bool,
	fn func(b *data.Batch, first []int, scores [][]float64) error) error {
	mode := data.ModeScore
	if cached {
		mode = data.ModePrompt
	}
	return ForEachBatch(ctx, c, ds, mode, func(b *data.Batch) error {
		s := torch.NewScope()
		defer s.Close()
		var scores [][]float64
		var first []int
		var err error
		if cached {
			scores, err = ScoreCached(s, c, ds.Encoder(), b)
			first = make([]int, b.B)
			for r := range first {
				first[r] = r
			}
		} else {
			scores, first, err = scoreRows(s, c, b)
		}
		if err != nil {
			return err
		}
		return fn(b, first, scores)
	})
}

// scoreRows scores a score-mode batch (one row per example and label, each
// running prompt + answer): [example][label] log-likelihoods, and the first
// row of each example.
func scoreRows(s *torch.Scope, c *stack.Stack, b *data.Batch) ([][]float64, []int, error) {
	bt, h := backboneOf(c).forward(s, b)
	if err := s.Err(); err != nil {
		return nil, nil, err
	}
	lp := s.LogSoftmax(c.Model.Logits(s, h, bt.Pos), -1) // (N,V)
	rows, err := AnswerScores(s, lp, bt, b, c.Dev).Float64s()
	if err != nil {
		return nil, nil, err
	}
	scores := make([][]float64, b.Examples)
	first := make([]int, b.Examples)
	for g := range scores {
		scores[g] = make([]float64, len(c.Spec.Labels))
		first[g] = -1
	}
	for r := range b.B {
		g := b.Group[r]
		if first[g] < 0 {
			first[g] = r
		}
		scores[g][b.Candidates[r]] = rows[r]
	}
	return scores, first, nil
}

// ScoreCached scores a prompt-mode batch (one row per example) against every
// label: the prompts run once into a KV cache; then, in one call, every
// label's answer tokens but the last follow each prompt in the same row, one
// attention group per label at the positions after the prompt, so that each
// label sees the prompt and its own earlier tokens only. The first answer
// token is scored from the prompt's last position. The prompt runs through
// the model's backbone (a Qwen2.5-Omni thinker's towers and TMRoPE
// included).
// Returns [example][label] answer log-likelihoods.
func ScoreCached(s *torch.Scope, c *stack.Stack, enc *data.Encoder, b *data.Batch) ([][]float64, error) {
	B, T := b.B, b.T
	nl := len(c.Spec.Labels)
	bb := backboneOf(c)
	cache := c.Model.NewCache(B)
	defer cache.Close()
	h := bb.prompt(s, cache, b) // (B,T,D)
	if err := s.Err(); err != nil {
		return nil, err
	}
	last := make([]int64, B)
	for r := range B {
		last[r] = int64(r*T + b.Lengths[r] - 1)
	}
	lp0 := s.LogSoftmax(c.Model.Logits(s, h, toDev(s, s.FromInt64(last, int64(B)), c.Dev)), -1) // (B,V)

	// The continuation block, the same for every row: label k contributes
	// its answer tokens 0..n_k-2 (group k), which predict tokens 1..n_k-1.
	var ids, groups []int32
	var offs []int64 // position of each block token after the prompt
	var targets []int64
	firstTok := make([]int64, nl)
	for k := range nl {
		a := enc.LabelAnswer(k)
		firstTok[k] = int64(a[0])
		for j := range len(a) - 1 {
			ids, groups, offs = append(ids, a[j]), append(groups, int32(k)), append(offs, int64(j))
			targets = append(targets, int64(a[j+1]))
		}
	}
	// the first answer token of every label, from the prompt: (B,nl)
	idx0 := make([]int64, B*nl)
	for r := range B {
		copy(idx0[r*nl:], firstTok)
	}
	score := s.Gather(lp0, 1, toDev(s, s.FromInt64(idx0, int64(B), int64(nl)), c.Dev)) // (B,nl)
	if A := len(ids); A > 0 {
		bid := make([]int64, B*A)
		mods := make([]int64, B*A)
		pos := make([]int64, B*A)
		grp := make([]int32, B*A)
		tgt := make([]int64, B*A)
		for r := range B {
			for j := range A {
				i := r*A + j
				bid[i], mods[i], grp[i], tgt[i] = int64(ids[j]), int64(modality.Text), groups[j], targets[j]
				pos[i] = cache.Next(r) + offs[j]
			}
		}
		step := &model.Step{In: &model.Inputs{IDs: toDev(s, s.FromInt64(bid, int64(B), int64(A)), c.Dev),
			Modality: toDev(s, s.FromInt64(mods, int64(B), int64(A)), c.Dev)}, Positions: pos, Groups: grp, NoAppend: true}
		hc := bb.text(s, cache, step)                                                                  // (B,A,D)
		lp := s.LogSoftmax(c.Model.Logits(s, hc, nil), -1)                                             // (B,A,V)
		tok := s.Squeeze(s.Gather(lp, 2, toDev(s, s.FromInt64(tgt, int64(B), int64(A), 1), c.Dev)), 2) // (B,A)
		gidx := make([]int64, B*A)
		for i := range gidx {
			gidx[i] = int64(grp[i])
		}
		score = s.ScatterAdd(score, 1, toDev(s, s.FromInt64(gidx, int64(B), int64(A)), c.Dev), tok) // (B,nl)
	}
	v, err := score.Float64s()
	if err != nil {
		return nil, err
	}
	out := make([][]float64, B)
	for r := range out {
		out[r] = v[r*nl : (r+1)*nl]
	}
	return out, nil
}

// toDev moves a host-made tensor to dev.
func toDev(s *torch.Scope, t *torch.Tensor, dev torch.Device) *torch.Tensor {
	if dev == torch.CPU {
		return t
	}
	return s.ToDevice(t, dev)
}

// AnswerScores sums, per row, the log-probabilities lp (N,V) of the target
// tokens at the batch's scored positions: (rows) answer log-likelihoods.
func AnswerScores(s *torch.Scope, lp *torch.Tensor, bt stack.BatchTensors, b *data.Batch, dev torch.Device) *torch.Tensor {
	tok := s.Squeeze(s.Gather(lp, 1, s.Unsqueeze(bt.Targets, 1)), 1) // (N)
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

// PickLabels predicts, for each example of a score batch, the candidate
// label with the highest answer log-likelihood.
func PickLabels(b *data.Batch, scores []float64) []metrics.Prediction {
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

// WriteEval writes eval.json into the run directory, atomically.
func WriteEval(dir string, rep *metrics.Report) error {
	if rep == nil {
		return errors.New("eval.json: no report")
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteBytes(filepath.Join(dir, "eval.json"), b)
}

// ReadEval reads dir's eval.json (WriteEval's), bounded; an error when it is
// missing or not a report.
func ReadEval(dir string) (*metrics.Report, error) {
	b, err := fsutil.ReadRegularLimit(filepath.Join(dir, "eval.json"), fsutil.MaxConfigSize)
	if err != nil {
		return nil, err
	}
	var rep metrics.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "eval.json"), err)
	}
	return &rep, nil
}

package infer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/metrics"
	"github.com/mose-llm/mose/modality"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/stack"
)

// generateEval decodes from every eval prompt with the KV cache (greedy, or
// sampled when eval.temperature > 0) and maps each answer to a label.
func generateEval(ctx context.Context, c *stack.Stack) (*metrics.Report, error) {
	var preds []metrics.Prediction
	var idx []int
	opt, err := decodeOptionsOf(c)
	if err != nil {
		return nil, err
	}
	batch := uint64(0)
	err = ForEachBatch(ctx, c, c.Eval, data.ModePrompt, func(b *data.Batch) error {
		batch++
		answers, err := decode(c, b, opt, batch)
		if err != nil {
			return err
		}
		for r := range b.B {
			preds = append(preds, metrics.Prediction{ID: b.SampleIDs[r], Subset: b.Subsets[r], Label: b.Labels[r],
				Pred: data.MapAnswer(c.Tok.Decode(answers[r]), c.Spec.Labels)})
			idx = append(idx, b.Index[r])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if preds, err = c.GatherPredictions(c.Eval, preds, idx); err != nil {
		return nil, err
	}
	rep := metrics.Compute(preds, c.Spec.Labels)
	return &rep, nil
}

// decodeOptions say how answers are generated.
type decodeOptions struct {
	maxNew      int
	ends        []int64 // end-of-generation ids (model.EndTokens; none: up to maxNew)
	pad         int64
	temperature float64 // 0: greedy
	topP        float64
	seed        uint64
}

// decodeOptionsOf reads the generation settings of c's recipe and the
// model's end-of-generation ids: its config's (model.EndTokens), else its
// tokenizer's EOS.
func decodeOptionsOf(c *stack.Stack) (decodeOptions, error) {
	opt := decodeOptions{maxNew: c.Cfg.Eval.MaxNewTokens, temperature: c.Cfg.Eval.Temperature,
		topP: c.Cfg.Eval.TopP, seed: uint64(c.Cfg.Run.Seed)}
	ends, err := model.EndTokens(c.Cfg.Model.Path, c.Model.Config.VocabSize)
	if err != nil {
		return opt, fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, c.Cfg.Model.Path, err)
	}
	if ends == nil {
		if eos, ok := c.Tok.EOS(); ok {
			ends = []int64{int64(eos)}
		}
	}
	opt.ends = ends
	if pad, ok := c.Tok.Pad(); ok {
		opt.pad = int64(pad)
	}
	return opt, nil
}

// decode extends every prompt of a prompt-mode batch by up to opt.maxNew
// tokens, stopping a row at EOS (not included in its answer), through the KV
// cache: the right-padded prompts run once, then one token per row per step,
// at each row's own next position, finished rows fed padding that nothing
// attends to. Sampling draws from a generator seeded by (seed, batch). The
// prompt runs through the model's backbone (backboneOf).
func decode(c *stack.Stack, b *data.Batch, opt decodeOptions, batch uint64) ([][]int32, error) {
	B, T := b.B, b.T
	rng := rand.New(rand.NewPCG(opt.seed, batch))
	s := torch.NewScope()
	defer s.Close()
	cache := c.Model.NewCache(B)
	defer cache.Close()
	bb := backboneOf(c)
	h := bb.prompt(s, cache, b) // (B,T,D)
	if err := s.Err(); err != nil {
		return nil, err
	}
	last := make([]int64, B)
	for r := range B {
		last[r] = int64(r*T + b.Lengths[r] - 1)
	}
	logits := c.Model.Logits(s, h, toDev(s, s.FromInt64(last, int64(B)), c.Dev)) // (B,V)
	done := make([]bool, B)
	answers := make([][]int32, B)
	for i := 0; i < opt.maxNew; i++ {
		tok, err := pickTokens(s, logits, opt, rng)
		if err != nil {
			return nil, err
		}
		step := s.Child()
		ids := make([]int64, B)
		mods := make([]int64, B)
		ok := make([]bool, B)
		all := true
		for r := range B {
			ids[r], mods[r] = opt.pad, int64(modality.Pad)
			if done[r] {
				continue
			}
			if slices.Contains(opt.ends, tok[r]) {
				done[r] = true
				continue
			}
			answers[r] = append(answers[r], int32(tok[r]))
			ids[r], mods[r], ok[r] = tok[r], int64(modality.Text), true
			all = false
		}
		if all || i == opt.maxNew-1 {
			step.Close()
			break
		}
		in := &model.Inputs{IDs: toDev(step, step.FromInt64(ids, int64(B), 1), c.Dev), Modality: toDev(step, step.FromInt64(mods, int64(B), 1), c.Dev)}
		h := bb.text(step, cache, &model.Step{In: in, Valid: ok}) // (B,1,D)
		next := s.Own(step.Keep(c.Model.Logits(step, h, nil)))    // (B,1,V)
		step.Close()
		logits.Free()
		logits = s.Squeeze(next, 1) // (B,V), a view: next's handle can go
		next.Free()
		if err := s.Err(); err != nil {
			return nil, err
		}
	}
	return answers, s.Err()
}

// pickTokens chooses each row's next token from logits (B,V): the argmax, or
// a sample from softmax(logits/temperature) within the top-p nucleus.
func pickTokens(s *torch.Scope, logits *torch.Tensor, opt decodeOptions, rng *rand.Rand) ([]int64, error) {
	if opt.temperature <= 0 {
		am := s.Argmax(logits, -1, false)
		if err := s.Err(); err != nil {
			return nil, err
		}
		defer am.Free()
		return am.Int64s()
	}
	p := s.Softmax(s.DivScalar(logits, opt.temperature), -1)
	if err := s.Err(); err != nil {
		return nil, err
	}
	defer p.Free()
	probs, err := p.Float64s()
	if err != nil {
		return nil, err
	}
	B := int(logits.Size(0))
	V := len(probs) / B
	out := make([]int64, B)
	for r := range B {
		out[r] = int64(sampleTopP(probs[r*V:(r+1)*V], opt.topP, rng))
	}
	return out, nil
}

// sampleTopP draws an index from probs restricted to the smallest set of
// most likely entries whose mass reaches topP (ties kept in index order).
func sampleTopP(probs []float64, topP float64, rng *rand.Rand) int {
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
	mass, n := 0.0, 0
	for n < len(idx) {
		mass += probs[idx[n]]
		n++
		if mass >= topP {
			break
		}
	}
	u := rng.Float64() * mass
	for _, i := range idx[:n] {
		if u -= probs[i]; u < 0 {
			return i
		}
	}
	return idx[n-1]
}

// greedy extends every prompt of a prompt-mode batch by up to n tokens
// without a cache: every new token reruns the whole sequence. It is the
// reference decode is tested and benchmarked against.
func greedy(c *stack.Stack, b *data.Batch, n int, ends []int64) ([][]int32, error) {
	B, T := b.B, b.T
	W := T + n // room for the answers, right-padded
	ids := make([]int64, B*W)
	mods := make([]int64, B*W)
	for r := range B {
		for t := range W {
			ids[r*W+t], mods[r*W+t] = b.IDs[0], int64(modality.Pad)
			if t < T {
				ids[r*W+t], mods[r*W+t] = b.IDs[r*T+t], int64(b.Modality[r*T+t])
			}
		}
	}
	feats := torch.NewScope() // the features, with positions moved to the (B,W) layout
	defer feats.Close()
	var fs []model.Features
	for _, f := range b.Features {
		pos := make([]int64, len(f.Positions))
		for i, p := range f.Positions {
			pos[i] = p/int64(T)*int64(W) + p%int64(T)
		}
		fs = append(fs, model.Features{
			Data:      feats.ToDevice(feats.FromFloat32(f.Data, int64(B), int64(f.Tokens), int64(f.Dim)), c.Dev),
			Positions: feats.ToDevice(feats.FromInt64(pos, int64(len(pos))), c.Dev)})
	}
	if err := feats.Err(); err != nil {
		return nil, err
	}
	return greedyLoop(b, W, n, ends, func(last []int64) ([]int64, error) {
		s := torch.NewScope()
		defer s.Close()
		in := &model.Inputs{IDs: s.ToDevice(s.FromInt64(ids, int64(B), int64(W)), c.Dev),
			Modality: s.ToDevice(s.FromInt64(mods, int64(B), int64(W)), c.Dev), Features: fs}
		pos := s.ToDevice(s.FromInt64(last, int64(B)), c.Dev)
		next := s.Argmax(c.Model.Logits(s, c.Model.Forward(s, in, false), pos), -1, false) // (B)
		if err := s.Err(); err != nil {
			return nil, err
		}
		return next.Int64s()
	}, func(at int, tok int64) { ids[at], mods[at] = tok, int64(modality.Text) })
}

// greedyLoop is the loop of the no-cache references: the batch's rows laid
// out W wide, next gives every row's argmax token at the flat positions
// last (r·W + its length − 1) from a whole forward, put writes a row's new
// token at flat position at. Rows stop at an end id, at W, or after n
// tokens.
func greedyLoop(b *data.Batch, W, n int, ends []int64, next func(last []int64) ([]int64, error), put func(at int, tok int64)) ([][]int32, error) {
	B := b.B
	lengths := append([]int(nil), b.Lengths...)
	done := make([]bool, B)
	answers := make([][]int32, B)
	for range n {
		last := make([]int64, B)
		for r := range B {
			last[r] = int64(r*W + lengths[r] - 1)
		}
		tok, err := next(last)
		if err != nil {
			return nil, err
		}
		all := true
		for r := range B {
			if done[r] {
				continue
			}
			if slices.Contains(ends, tok[r]) || lengths[r] >= W {
				done[r] = true
				continue
			}
			put(r*W+lengths[r], tok[r])
			answers[r] = append(answers[r], int32(tok[r]))
			lengths[r]++
			all = false
		}
		if all {
			break
		}
	}
	return answers, nil
}

// promptInputs turns a prompt-mode batch into model inputs on dev, and says
// which positions are real tokens (not padding).
func promptInputs(s *torch.Scope, b *data.Batch, dev torch.Device) (*model.Inputs, []bool) {
	B, T := int64(b.B), int64(b.T)
	mods := make([]int64, len(b.Modality))
	valid := make([]bool, len(b.Modality))
	for i, m := range b.Modality {
		mods[i], valid[i] = int64(m), m != modality.Pad
	}
	in := &model.Inputs{IDs: toDev(s, s.FromInt64(b.IDs, B, T), dev), Modality: toDev(s, s.FromInt64(mods, B, T), dev)}
	for _, f := range b.Features {
		in.Features = append(in.Features, model.Features{
			Data:      toDev(s, s.FromFloat32(f.Data, B, int64(f.Tokens), int64(f.Dim)), dev),
			Positions: toDev(s, s.FromInt64(f.Positions, int64(len(f.Positions))), dev),
		})
	}
	return in, valid
}

package export

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/infer"
	"github.com/mose-llm/mose/internal/ckpt"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/strictjson"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/stack"
)

// MergeReport is merge_report.json: how the deltas were folded and, with a
// calibration set, how faithful the merged model is to the adapted one.
type MergeReport struct {
	Checkpoint  string `json:"checkpoint"`
	Approximate bool   `json:"approximate"`
	Targets     int    `json:"targets"`
	// Calibration is the manifest the expected coefficients and the fidelity
	// were measured on (approximate merges only).
	Calibration string `json:"calibration,omitempty"`
	Samples     int    `json:"samples,omitempty"`
	Tokens      int    `json:"calibration_tokens,omitempty"`
	// LabelAgreement is the fraction of calibration samples whose top-ranked
	// label (score mode) is the same for the merged and the unmerged model.
	LabelAgreement *float64 `json:"label_agreement,omitempty"`
	// MeanLogitKL is the mean KL(unmerged ‖ merged) of the next-token
	// distributions at every scored answer position, in nats.
	MeanLogitKL *float64 `json:"mean_logit_kl,omitempty"`
	// Coefficients are the expected coefficient of every expert slot of every
	// target (scaling × modality weight × group share × gate), as merged.
	Coefficients map[string][]float64 `json:"coefficients"`
	// QuantizedBase is the run's model.quantize when not none: the merged
	// weights are the quantized base dequantized to its stored dtype, with
	// the deltas folded in; QuantizedFidelity compares the merged model with
	// the quantized one and its adapters.
	QuantizedBase     string             `json:"quantized_base,omitempty"`
	QuantizedFidelity *QuantizedFidelity `json:"quantized_fidelity,omitempty"`
}

// files copied unchanged from the base model dir into a merged dir.
var sideFiles = []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "generation_config.json",
	"preprocessor_config.json", "chat_template.json"} // the last two: a Qwen2.5-Omni model's processor

// writeMerged folds the adapters into a copy of the base model, streaming
// tensor by tensor (each target's ΔW computed, added in float32, checked,
// cast back), and writes merge_report.json.
func writeMerged(ctx context.Context, c *stack.Stack, dir string, opt Options) (*MergeReport, error) {
	rep := &MergeReport{Checkpoint: opt.Checkpoint, Approximate: opt.Approximate, Targets: len(c.Set.Mixtures),
		Coefficients: map[string][]float64{}}
	var cal *data.Dataset
	if opt.Approximate {
		var err error
		if cal, err = c.Open(opt.Calibration); err != nil {
			return nil, stack.DataErr("--calibration", err)
		}
		rep.Calibration, rep.Samples = opt.Calibration, cal.Len()
		tokens, err := calibrate(ctx, c, cal, rep.Coefficients)
		if err != nil {
			return nil, err
		}
		rep.Tokens = tokens
	} else {
		for _, m := range c.Set.Mixtures {
			exact, coef := m.Exact()
			for _, ok := range exact {
				if !ok {
					return nil, fmt.Errorf("%w: %s has routed or gated experts, whose delta depends on each token's modality and gate: "+
						"merge them with --approximate --calibration MANIFEST, or export --format peft", inputerr.ErrFlag, m.Name)
				}
			}
			rep.Coefficients[m.Name] = coef
		}
	}
	if err := foldInto(c, dir, rep.Coefficients); err != nil {
		return nil, err
	}
	if opt.Approximate {
		if err := fidelity(ctx, c, cal, dir, rep); err != nil {
			return nil, err
		}
	}
	if quantized(c.Cfg) {
		if err := quantFidelity(c, dir, rep); err != nil {
			return nil, err
		}
	}
	return rep, fsutil.WriteJSON(filepath.Join(dir, mergeReportFile), rep)
}

// calibrate measures every slot's expected coefficient over the non-pad
// tokens of cal (prompts with their gold answers, eval mode).
func calibrate(ctx context.Context, c *stack.Stack, cal *data.Dataset, out map[string][]float64) (int, error) {
	c.Set.RecordCoefficients(true)
	defer c.Set.RecordCoefficients(false)
	var tokens float64
	err := infer.ForEachBatch(ctx, c, cal, data.ModeTrain, func(b *data.Batch) error {
		s := torch.NewScope()
		defer s.Close()
		c.Model.Forward(s, stack.Tensors(s, b, c.Dev).In, false)
		sums, n, err := c.Set.TakeCoefficients(s)
		if err = cmp.Or(s.Err(), err); err != nil {
			return err
		}
		tokens += n
		for name, v := range sums {
			if out[name] == nil {
				out[name] = make([]float64, len(v))
			}
			for i := range v {
				out[name][i] += v[i]
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if tokens == 0 {
		return 0, fmt.Errorf("%w: the calibration set has no tokens", inputerr.ErrFlag)
	}
	for _, v := range out {
		for i := range v {
			v[i] /= tokens
		}
	}
	return int(tokens), nil
}

// foldInto writes the base model with W ← W + ΔW for every target, shard by
// shard in the base's layout (and a new index without the projectors when
// the base has one), its config (with a "merged" note) and tokenizer files.
// The projectors (the trained ones when the run trained them) go to their
// own file, model.MergedProjectors, so that transformers loads the merged
// dir with no unexpected keys.
func foldInto(c *stack.Stack, dir string, coefs map[string][]float64) error {
	base := c.Cfg.Model.Path
	ck, err := model.OpenWeights(base)
	if err != nil {
		return err
	}
	defer ck.Close()
	// A full Qwen2.5-Omni model holds the thinker's tensors under thinker.
	// (its talker and token2wav are copied as they are).
	prefix := ""
	if c.OmniConfig != nil {
		prefix = c.OmniConfig.Prefix
	}
	targets := map[string]*experts.Mixture{}
	for _, m := range c.Set.Mixtures {
		targets[prefix+m.Name+".weight"] = m
	}
	trained := map[string]*torch.Tensor{}
	for _, p := range c.Params {
		if stack.IsProjector(p.Name) {
			trained[p.Name] = p.T
		}
	}
	quantLinears := map[string]*model.Linear{} // dequantized, whether adapted or not
	if c.Model != nil {
		for _, l := range c.Model.Linears() {
			if l.Quant != nil {
				quantLinears[prefix+l.Name+".weight"] = l
			}
		}
	}
	weightMap := map[string]string{}
	var total int64
	var projectors []safetensors.Tensor
	var buf []byte
	for _, f := range ck.Files() {
		var specs []safetensors.TensorSpec
		for _, in := range f.Tensors() {
			if stack.IsProjector(in.Name) {
				b, err := f.Read(in.Name)
				if p := trained[in.Name]; p != nil && err == nil {
					b, err = castBytes(p, in.DType)
				}
				if err != nil {
					return fmt.Errorf("%s: %w", in.Name, err)
				}
				projectors = append(projectors, safetensors.Tensor{Name: in.Name, DType: in.DType, Shape: in.Shape, Data: b})
				continue
			}
			specs = append(specs, safetensors.TensorSpec{Name: in.Name, DType: in.DType, Shape: in.Shape})
		}
		if len(specs) == 0 {
			continue // a file of projectors only (the attach layout's)
		}
		name := filepath.Base(f.Path())
		w, err := safetensors.Create(filepath.Join(dir, name), specs, map[string]string{"format": "pt"})
		if err != nil {
			return err
		}
		for _, sp := range specs {
			in, err := f.Info(sp.Name)
			if err != nil {
				w.Abort()
				return err
			}
			if int64(cap(buf)) < in.Size {
				buf = make([]byte, in.Size)
			}
			b := buf[:in.Size]
			if err = f.ReadInto(in.Name, b); err == nil {
				m := targets[in.Name]
				var coef []float64
				if m != nil {
					coef = coefs[m.Name]
				}
				if l := quantLinears[in.Name]; l != nil {
					b, err = foldQuantized(in, l, m, coef)
				} else if m != nil {
					b, err = foldTensor(c.Dev, b, in, m, coef)
				}
			}
			if err == nil {
				err = w.WriteTensor(in.Name, b)
			}
			if err != nil {
				w.Abort()
				return fmt.Errorf("%s: %w", in.Name, err)
			}
			weightMap[in.Name] = name
			total += in.Size
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	if len(projectors) > 0 {
		if err := safetensors.WriteFile(filepath.Join(dir, model.MergedProjectors), projectors, map[string]string{"format": "pt"}); err != nil {
			return err
		}
	}
	idx := safetensors.IndexFileName(safetensors.DefaultPrefix)
	if _, err := os.Stat(filepath.Join(base, idx)); err == nil {
		index := map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap}
		if err := fsutil.WriteJSON(filepath.Join(dir, idx), index); err != nil {
			return err
		}
	}
	for _, name := range sideFiles {
		if err := copyFile(filepath.Join(base, name), filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return writeMergedConfig(base, dir, c)
}

// foldTensor returns W + ΔW in W's file dtype, refusing non-finite values.
func foldTensor(dev torch.Device, raw []byte, in safetensors.TensorInfo, m *experts.Mixture, coef []float64) ([]byte, error) {
	dt, err := ckpt.TorchDType(in.DType)
	if err != nil {
		return nil, err
	}
	s := torch.NewScope()
	defer s.Close()
	w := s.To(s.FromBytes(raw, dt, in.Shape...), torch.Float32)
	if dev != torch.CPU {
		w = s.ToDevice(w, dev)
	}
	merged := s.Add(w, m.DeltaWeight(s, coef)) // accumulated in float32
	if err := s.Err(); err != nil {
		return nil, err
	}
	if ok, err := s.AllFinite(merged); err != nil || !ok {
		return nil, cmp.Or(err, fmt.Errorf("%s: the merged weight holds NaN or Inf values: refusing to write it", in.Name))
	}
	out := s.ToDevice(s.To(merged, dt), torch.CPU)
	if err := s.Err(); err != nil {
		return nil, err
	}
	return out.Bytes()
}

// castBytes returns t's values in the file dtype d.
func castBytes(t *torch.Tensor, d safetensors.DType) ([]byte, error) {
	dt, err := ckpt.TorchDType(d)
	if err != nil {
		return nil, err
	}
	s := torch.NewScope()
	defer s.Close()
	out := s.ToDevice(s.To(s.Detach(t), dt), torch.CPU)
	if err := s.Err(); err != nil {
		return nil, err
	}
	return out.Bytes()
}

func copyFile(src, dst string) error {
	b, err := fsutil.ReadRegular(src)
	if err != nil {
		return err
	}
	return fsutil.WriteBytes(dst, b)
}

// writeMergedConfig copies config.json, noting the merge in its mose section.
func writeMergedConfig(base, dir string, c *stack.Stack) error {
	path := filepath.Join(base, "config.json")
	b, err := fsutil.ReadRegularLimit(path, fsutil.MaxConfigSize)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := strictjson.Unmarshal(b, &cfg, path); err != nil {
		return err
	}
	mose, _ := cfg["mose"].(map[string]any)
	if mose == nil {
		mose = map[string]any{}
		cfg["mose"] = mose
	}
	mose["merged"] = map[string]any{"method": c.Cfg.Adapters.Method, "targets": c.Cfg.Adapters.Targets,
		"rank": c.Cfg.Adapters.Rank, "alpha": c.Cfg.Adapters.Alpha, "from_model": base}
	return fsutil.WriteJSON(filepath.Join(dir, "config.json"), cfg)
}

// fidelity compares the merged model with the adapted one on cal in score
// mode: top-label agreement and the mean KL at every scored position.
func fidelity(ctx context.Context, c *stack.Stack, cal *data.Dataset, dir string, rep *MergeReport) error {
	merged, err := model.Load(dir, model.Options{DType: c.Model.DType, Device: c.Dev})
	if err != nil {
		return fmt.Errorf("loading the merged model: %w", err)
	}
	defer merged.Close()
	var agree, samples int
	var klSum, positions float64
	err = infer.ForEachBatch(ctx, c, cal, data.ModeScore, func(b *data.Batch) error {
		s := torch.NewScope()
		defer s.Close()
		bt := stack.Tensors(s, b, c.Dev)
		lpU := s.LogSoftmax(c.Model.Logits(s, c.Model.Forward(s, bt.In, false), bt.Pos), -1) // (N,V)
		lpM := s.LogSoftmax(merged.Logits(s, merged.Forward(s, bt.In, false), bt.Pos), -1)
		kl := s.Sum(s.Mul(s.Exp(lpU), s.Sub(lpU, lpM)))
		both := s.Cat([]*torch.Tensor{infer.AnswerScores(s, lpU, bt, b, c.Dev), infer.AnswerScores(s, lpM, bt, b, c.Dev), s.Unsqueeze(kl, 0)}, 0)
		v, err := both.Float64s()
		if err = cmp.Or(s.Err(), err); err != nil {
			return err
		}
		pu, pm := infer.PickLabels(b, v[:b.B]), infer.PickLabels(b, v[b.B:2*b.B])
		for i := range pu {
			if pu[i].Pred == pm[i].Pred {
				agree++
			}
		}
		samples += len(pu)
		klSum += v[2*b.B]
		positions += float64(len(b.TargetPos))
		return nil
	})
	if err != nil {
		return err
	}
	a, k := float64(agree)/float64(max(samples, 1)), klSum/max(positions, 1)
	rep.LabelAgreement, rep.MeanLogitKL = &a, &k
	return nil
}

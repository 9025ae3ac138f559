package export

import (
	"cmp"
	"fmt"

	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/internal/ckpt"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// quantized says whether the run stored its frozen linears quantized.
func quantized(cfg *recipes.Config) bool {
	return cfg.Model.Quantize != "" && cfg.Model.Quantize != "none"
}

// QuantizedFidelity compares a merged export of a quantized run with the
// model it was trained as (quantized base + adapters) on a fixed text-only
// sequence: the merged weights are rounded to the stored dtype, which is the
// only difference.
type QuantizedFidelity struct {
	Tokens          int     `json:"tokens"`
	MaxAbsLogitDiff float64 `json:"max_abs_logit_diff"`
	MeanLogitKL     float64 `json:"mean_logit_kl"`
}

// fidelityTokens is the length of the fixed sequence quantFidelity scores.
const fidelityTokens = 64

// foldQuantized returns the quantized linear l dequantized (to the run
// dtype, then float32), plus m's ΔW when l is a target, in the stored dtype
// of in — PEFT's merge_and_unload of a 4-bit base, written dequantized.
func foldQuantized(in safetensors.TensorInfo, l *model.Linear, m *experts.Mixture, coef []float64) ([]byte, error) {
	dt, err := ckpt.TorchDType(in.DType)
	if err != nil {
		return nil, err
	}
	s := torch.NewScope()
	defer s.Close()
	w := s.To(l.Quant.Dequantize(s), torch.Float32)
	if m != nil {
		w = s.Add(w, m.DeltaWeight(s, coef)) // accumulated in float32
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if ok, err := s.AllFinite(w); err != nil || !ok {
		return nil, cmp.Or(err, fmt.Errorf("%s: the merged weight holds NaN or Inf values: refusing to write it", in.Name))
	}
	out := s.ToDevice(s.To(w, dt), torch.CPU)
	if err := s.Err(); err != nil {
		return nil, err
	}
	return out.Bytes()
}

// quantFidelity loads the merged model from dir and compares its logits with
// the quantized model's with adapters (c) on a fixed sequence of token ids.
func quantFidelity(c *stack.Stack, dir string, rep *MergeReport) error {
	merged, closeMerged, err := loadMergedDecoder(c, dir)
	if err != nil {
		return fmt.Errorf("loading the merged model: %w", err)
	}
	defer closeMerged()
	V := int64(c.Model.Config.VocabSize)
	T := int64(min(fidelityTokens, max(c.Model.Config.MaxPositionEmbeddings, 2)))
	ids := make([]int64, T)
	for i := range ids {
		ids[i] = (int64(i)*7919 + 1) % V
	}
	s := torch.NewScope()
	defer s.Close()
	var v []float64
	err = torch.NoGrad(func() error {
		in := &model.Inputs{IDs: s.ToDevice(s.FromInt64(ids, 1, T), c.Dev)}
		lq := s.To(c.Model.Logits(s, c.Model.Forward(s, in, false), nil), torch.Float32) // (1,T,V)
		lm := s.To(merged.Logits(s, merged.Forward(s, in, false), nil), torch.Float32)
		lpQ, lpM := s.LogSoftmax(lq, -1), s.LogSoftmax(lm, -1)
		kl := s.Sum(s.Mul(s.Exp(lpQ), s.Sub(lpQ, lpM)))
		d := s.Max(s.Abs(s.Sub(lq, lm)))
		both := s.Cat([]*torch.Tensor{s.Reshape(d, 1), s.Reshape(kl, 1)}, 0)
		if err := s.Err(); err != nil {
			return err
		}
		var err error
		v, err = both.Float64s()
		return err
	})
	if err != nil {
		return err
	}
	rep.QuantizedBase = c.Cfg.Model.Quantize
	rep.QuantizedFidelity = &QuantizedFidelity{Tokens: int(T), MaxAbsLogitDiff: v[0], MeanLogitKL: v[1] / float64(T)}
	return nil
}

// loadMergedDecoder loads the merged model's decoder from dir: the model,
// or a Qwen2.5-Omni thinker's decoder (its towers loaded and closed with
// it); the function closes what it loaded.
func loadMergedDecoder(c *stack.Stack, dir string) (*model.Model, func(), error) {
	opt := model.Options{DType: c.Model.DType, Device: c.Dev}
	if c.OmniConfig != nil {
		th, err := omni.Load(dir, opt)
		if err != nil {
			return nil, nil, err
		}
		return th.Decoder, th.Close, nil
	}
	m, err := model.Load(dir, opt)
	if err != nil {
		return nil, nil, err
	}
	return m, m.Close, nil
}

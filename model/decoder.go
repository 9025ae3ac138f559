package model

import (
	"fmt"

	"github.com/mose-llm/mose/internal/ckpt"
	"github.com/mose-llm/mose/internal/torch"
)

// NewDecoder loads the decoder cfg describes from src, whose tensors carry
// the HF names of Config.Tensors ("model.layers.0.self_attn.q_proj.weight",
// …): the loader of a backbone whose decoder is LLaMA-family but whose
// directory is not (Qwen2.5-Omni's thinker, under model/omni). Every
// missing tensor and shape mismatch is reported at once before anything is
// loaded; opt.Quantize stores the decoder linears quantized, as Load does
// (a weight that does not fit the layout is refused by name). Call it on the
// tensor thread; Close the model.
func NewDecoder(cfg Config, src ckpt.Source, opt Options) (*Model, error) {
	if opt.DType == 0 {
		opt.DType = torch.Float32
	}
	if !opt.DType.IsFloat() {
		return nil, fmt.Errorf("%w: run dtype %v is not a float type", ErrConfig, opt.DType)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkTensors(cfg, src); err != nil {
		return nil, err
	}
	if err := cfg.CheckQuantize(opt.Quantize); err != nil {
		return nil, fmt.Errorf("%w: quantize %s: %w", ErrWeights, opt.Quantize, err)
	}
	m := &Model{Config: cfg, DType: opt.DType, Device: opt.Device, Quantize: opt.Quantize, weights: torch.NewScope()}
	var err error
	if m.rope.invFreq, err = cfg.invFreq(); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.read(ckpt.NewReader(src), opt); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// InvFreq returns the rotary inverse frequencies (head_dim/2 of them),
// computed as transformers computes them (see invFreq).
func (m *Model) InvFreq() []float32 { return append([]float32(nil), m.rope.invFreq...) }

// BeginRotary is Begin with rotary tables made by the caller, cos and sin
// (B,1,T,head_dim) in the run dtype, in place of the model's 1-D ones:
// Qwen2.5-Omni's multimodal rotary positions. in.IDs: (B,T).
func (m *Model) BeginRotary(s *torch.Scope, in *Inputs, train bool, cos, sin *torch.Tensor) *Pass {
	p := m.Begin(s, in, train)
	p.a.cos, p.a.sin = cos, sin
	return p
}

// Run runs every decoder layer and the final norm over x, the input
// embeddings. x: (B,T,D) -> (B,T,D)
func (p *Pass) Run(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	return p.m.decodeEach(s, x, p.a, p.r, nil)
}

// RunEach is Run with before(i) called ahead of decoder layer i, as
// Model.ForwardEach calls it (a training step reseeds libtorch's generator
// there). An error from before is recorded in s. x: (B,T,D) -> (B,T,D)
func (p *Pass) RunEach(s *torch.Scope, x *torch.Tensor, before func(layer int) error) *torch.Tensor {
	return p.m.decodeEach(s, x, p.a, p.r, before)
}

// RMSNorm is the decoder's RMSNorm (transformers' LlamaRMSNorm: statistics
// in float32, cast back before the weight multiplies), for other blocks of
// a backbone that use the same norm. x: (…,D) -> (…,D)
func RMSNorm(s *torch.Scope, x, w *torch.Tensor, eps float64) *torch.Tensor {
	return rmsNorm(s, x, w, eps)
}

// RopeInvFreq returns the rotary inverse frequencies 1/θ^(2i/dim), i <
// dim/2, computed as transformers computes them (see invFreq), for rotary
// embeddings outside the decoder (a vision tower's).
func RopeInvFreq(theta float64, dim int) ([]float32, error) {
	return Config{HeadDim: dim, RopeTheta: theta}.invFreq()
}

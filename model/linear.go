package model

import (
	"github.com/mose-llm/mose/internal/quant"
	"github.com/mose-llm/mose/internal/torch"
)

// Routing is what adapters may know about the tokens of one forward pass.
type Routing struct {
	Modality *torch.Tensor // (B,T) int64 modality ids
	OneHot   *torch.Tensor // (B,T,modality.Count) float32 one-hot of Modality, or nil
	Train    bool          // a training forward: dropout and gate noise on
}

// Adapter adds a trainable delta to a frozen Linear's output: LoRA, MoSE.
// The model owns this interface; the experts package implements it with
// tensors only, so neither package imports the other.
type Adapter interface {
	// Delta returns the adapter's contribution for x: (B,T,in) -> (B,T,out),
	// in any float dtype (the Linear casts it to its own). onehot is the
	// (B,T,modality.Count) float32 one-hot of each token's modality id, or nil when the
	// caller gave no modality ids (every token is then text).
	Delta(s *torch.Scope, x, onehot *torch.Tensor, train bool) *torch.Tensor
}

// Linear is a frozen projection y = x·Wᵀ + b with an optional adapter.
type Linear struct {
	Name    string        // HF module name, e.g. "model.layers.3.self_attn.q_proj"
	Weight  *torch.Tensor // (out, in), frozen, run dtype; nil when Quant holds it
	Quant   *quant.Weight // the weight stored quantized (model.quantize), or nil
	Bias    *torch.Tensor // (out) or nil
	Adapter Adapter       // nil: the frozen projection only
}

// Forward computes x: (B,T,in) -> (B,T,out). A quantized weight is
// dequantized to the run dtype inside the product and dropped; the backward
// dequantizes it again and forms the input's gradient only.
func (l *Linear) Forward(s *torch.Scope, x *torch.Tensor, r *Routing) *torch.Tensor {
	var y *torch.Tensor
	if l.Quant != nil {
		y = l.Quant.Linear(s, x, l.Bias)
	} else {
		y = s.Linear(x, l.Weight, l.Bias)
	}
	if l.Adapter == nil || y == nil {
		return y
	}
	d := l.Adapter.Delta(s, x, r.OneHot, r.Train)
	if d != nil && d.DType() != y.DType() {
		d = s.To(d, y.DType())
	}
	return s.Add(y, d)
}

// In and Out are the input and output sizes.
func (l *Linear) In() int64  { return l.shape()[1] }
func (l *Linear) Out() int64 { return l.shape()[0] }

func (l *Linear) shape() []int64 {
	if l.Quant != nil {
		return l.Quant.Shape
	}
	return l.Weight.Shape()
}

package model

import (
	"fmt"
	"strings"

	"github.com/mose-llm/mose/internal/quant"
	"github.com/mose-llm/mose/internal/torch"
)

// QuantizedModules are the decoder linears a quantized model stores
// quantized. Embeddings, norms, the head and the projectors stay in the run
// dtype.
var QuantizedModules = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// IsQuantized says whether the weight name is one a quantized model stores
// quantized: model.layers.{i}.{self_attn,mlp}.{module}.weight.
func IsQuantized(name string) bool {
	if !strings.HasPrefix(name, "model.layers.") || !strings.HasSuffix(name, ".weight") {
		return false
	}
	mod := strings.TrimSuffix(name, ".weight")
	mod = mod[strings.LastIndex(mod, ".")+1:]
	for _, m := range QuantizedModules {
		if m == mod {
			return true
		}
	}
	return false
}

// CheckQuantize lists every decoder linear of c that k cannot store (NF4
// needs a multiple of 64 × 256 elements); the error wraps quant.ErrLayout
// and names each tensor and the rule.
func (c Config) CheckQuantize(k quant.Kind) error {
	if k == quant.None {
		return nil
	}
	var bad []string
	var first error
	for _, t := range c.Tensors() {
		if !IsQuantized(t.Name) {
			continue
		}
		if err := quant.CheckShape(k, t.Name, t.Shape); err != nil {
			if first == nil {
				first = err
			}
			bad = append(bad, fmt.Sprintf("%s %v", t.Name, t.Shape))
		}
	}
	if first == nil {
		return nil
	}
	const show = 6
	list := strings.Join(bad[:min(show, len(bad))], ", ")
	if len(bad) > show {
		list += fmt.Sprintf(" and %d more", len(bad)-show)
	}
	return fmt.Errorf("%w; %d decoder weight(s) do not fit: %s (mose refuses rather than pads; use model.quantize int8 or none for this model)",
		first, len(bad), list)
}

// readLinearWeight loads a linear's weight into l: in the run dtype, or
// quantized (read in the run dtype, quantized, the full weight freed before
// the next one is read, so that loading holds one full weight at a time).
func readLinearWeight(s *torch.Scope, get func(*torch.Scope, string) *torch.Tensor, l *Linear, k quant.Kind) {
	if k == quant.None {
		l.Weight = get(s, l.Name+".weight")
		return
	}
	tmp := s.Child()
	defer tmp.Close()
	l.Quant = quant.Quantize(s, k, l.Name+".weight", get(tmp, l.Name+".weight"))
}

// FrozenBytes is the memory the decoder linears' frozen weights take as
// stored (quantized or not).
func (m *Model) FrozenBytes() int64 {
	var n int64
	for _, l := range m.Linears() {
		if l.Quant != nil {
			n += l.Quant.Bytes()
		} else if l.Weight != nil {
			n += l.Weight.Numel() * int64(l.Weight.DType().Size())
		}
	}
	return n
}

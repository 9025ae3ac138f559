package model

import (
	"errors"
	"fmt"

	"github.com/mose-llm/mose/internal/ckpt"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
)

// ErrNoSuchWeight: DumpQuantized was asked for a weight the model does not
// store quantized.
var ErrNoSuchWeight = errors.New("no quantized weight of that name")

// DumpQuantized returns one quantized weight's stored form under torchao's
// names (quantized_data, quantized_scalers, quantization_factor,
// scaler_mean for nf4; weight_int8, scale for int8) and its dequantized
// value as "dequantized", ready for a safetensors file. name is the
// weight's HF name, e.g. model.layers.0.self_attn.q_proj.weight. Call it on
// the tensor thread.
func (m *Model) DumpQuantized(name string) ([]safetensors.Tensor, error) {
	var l *Linear
	for _, c := range m.Linears() {
		if c.Name+".weight" == name {
			l = c
		}
	}
	if l == nil || l.Quant == nil {
		return nil, fmt.Errorf("%w: %q (the model is quantized %s; quantized weights are model.layers.N.{self_attn,mlp}.{%v}.weight)",
			ErrNoSuchWeight, name, m.Quantize, QuantizedModules)
	}
	s := torch.NewScope()
	defer s.Close()
	parts := l.Quant.Parts()
	out := make([]safetensors.Tensor, 0, len(parts)+1)
	add := func(n string, t *torch.Tensor) error {
		t = s.ToDevice(t, torch.CPU)
		if err := s.Err(); err != nil {
			return err
		}
		dt, err := ckpt.FileDType(t.DType())
		if err != nil {
			return err
		}
		b, err := t.Bytes()
		if err != nil {
			return err
		}
		out = append(out, safetensors.Tensor{Name: n, DType: dt, Shape: t.Shape(), Data: b})
		return nil
	}
	for _, p := range parts {
		if err := add(p.Name, p.T); err != nil {
			return nil, err
		}
	}
	if err := add("dequantized", l.Quant.Dequantize(s)); err != nil {
		return nil, err
	}
	return out, nil
}

package quant

import (
	"fmt"

	"github.com/mose-llm/mose/internal/torch"
)

// Weight is one frozen weight stored quantized. Its tensors belong to the
// scope Quantize was given. Use it on the tensor thread.
type Weight struct {
	Kind  Kind
	Shape []int64     // the original shape, (out, in)
	DType torch.DType // the dtype it was quantized from and dequantizes to

	// NF4, in torchao's NF4Tensor layout.
	Data    *torch.Tensor // quantized_data (N/2) uint8, element 2i in the high nibble
	Scalers *torch.Tensor // quantized_scalers (N/64) int8
	Factor  *torch.Tensor // quantization_factor (N/16384) in DType
	Mean    *torch.Tensor // scaler_mean, 0-dim, in DType
	pairs   *torch.Tensor // (256,2) in DType: the two NF4 values of every byte

	// int8, in torchao's Int8Tensor layout.
	Q     *torch.Tensor // weight_int8 (out, in) int8
	Scale *torch.Tensor // scale (out, 1) float32
}

// Quantize stores w (a weight in its run dtype, on its device) as k. The
// returned Weight's tensors are owned by s; w itself is left to its owner.
// Errors (a shape that does not fit, a libtorch failure) are recorded in s.
func Quantize(s *torch.Scope, k Kind, name string, w *torch.Tensor) *Weight {
	if s.Err() != nil || w == nil {
		return nil
	}
	if err := CheckShape(k, name, w.Shape()); err != nil {
		s.Fail(err)
		return nil
	}
	if !w.DType().IsFloat() {
		s.Fail(fmt.Errorf("%w: %s is %v, not a float weight", ErrLayout, name, w.DType()))
		return nil
	}
	switch k {
	case NF4:
		return quantizeNF4(s, w)
	case Int8:
		return quantizeInt8(s, w)
	}
	s.Fail(fmt.Errorf("%w %q: nothing to quantize %s to", ErrKind, k.String(), name))
	return nil
}

// Dequantize returns the weight in its dtype, in s: what torchao's
// get_original_weight (NF4) or dequantize (int8) returns.
// () -> (out, in)
func (w *Weight) Dequantize(s *torch.Scope) *torch.Tensor {
	if s.Err() != nil {
		return nil
	}
	switch w.Kind {
	case NF4:
		return w.dequantizeNF4(s)
	case Int8:
		return w.dequantizeInt8(s)
	}
	s.Fail(fmt.Errorf("%w %q", ErrKind, string(w.Kind)))
	return nil
}

// Numel is the element count of the original weight.
func (w *Weight) Numel() int64 {
	n := int64(1)
	for _, d := range w.Shape {
		n *= d
	}
	return n
}

// Bytes is the memory the quantized form keeps.
func (w *Weight) Bytes() int64 {
	out := int64(1)
	if len(w.Shape) > 0 {
		out = w.Shape[0]
	}
	return StoredBytes(w.Kind, w.Numel(), out, int64(w.DType.Size()))
}

// Named is one tensor of the quantized form, under torchao's attribute name.
type Named struct {
	Name string
	T    *torch.Tensor
}

// Parts lists the quantized form's tensors under torchao's names:
// quantized_data, quantized_scalers, quantization_factor, scaler_mean (NF4);
// weight_int8, scale (int8).
func (w *Weight) Parts() []Named {
	if w.Kind == NF4 {
		return []Named{{"quantized_data", w.Data}, {"quantized_scalers", w.Scalers},
			{"quantization_factor", w.Factor}, {"scaler_mean", w.Mean}}
	}
	return []Named{{"weight_int8", w.Q}, {"scale", w.Scale}}
}

// Linear is x·Ŵᵀ + bias with Ŵ the dequantized weight, as an autograd
// function that keeps the quantized parts, not Ŵ, for its backward (which
// dequantizes again and returns x's gradient only): torchao's linear_nf4.
// bias may be nil. x: (…,in) -> (…,out)
func (w *Weight) Linear(s *torch.Scope, x, bias *torch.Tensor) *torch.Tensor {
	switch w.Kind {
	case NF4:
		return s.QuantLinear(x, bias, torch.QuantNF4, []*torch.Tensor{w.Data, w.Scalers, w.Factor, w.Mean, w.pairs}, w.Shape[0], w.Shape[1], w.DType)
	case Int8:
		return s.QuantLinear(x, bias, torch.QuantInt8, []*torch.Tensor{w.Q, w.Scale}, w.Shape[0], w.Shape[1], w.DType)
	}
	s.Fail(fmt.Errorf("%w %q", ErrKind, string(w.Kind)))
	return nil
}

package quant

import "github.com/mose-llm/mose/internal/torch"

// float32Eps is torch.finfo(torch.float32).eps, the smallest scale torchao's
// int8 weight-only quantization allows, whatever the weight's dtype.
const float32Eps = 1.1920928955078125e-07

// quantizeInt8 is torchao 0.18's Int8Tensor.from_hp(w, PerRow()), the
// weight of Int8WeightOnlyConfig(): symmetric, per output row, scale =
// absmax / 127.5 in the weight's dtype, clamped to float32's eps, stored in
// float32; codes round(w · (1/scale)) clamped to [-128, 127].
func quantizeInt8(s *torch.Scope, w *torch.Tensor) *Weight {
	t := s.Child()
	defer t.Close()
	absmax := t.Amax(t.Abs(w), []int64{1}, true)                                     // (out,1) in w's dtype
	scale := t.To(t.ClampMin(t.DivScalar(absmax, 127.5), float32Eps), torch.Float32) // (out,1)
	q := t.To(t.Clamp(t.Round(t.Mul(w, t.Reciprocal(scale))), -128, 127), torch.Int8)
	if t.Err() != nil {
		return nil
	}
	return &Weight{Kind: Int8, Shape: w.Shape(), DType: w.DType(), Q: s.Own(t.Keep(q)), Scale: s.Own(t.Keep(scale))}
}

// dequantizeInt8 is torchao's dequantize_affine: q in the weight's dtype
// times the float32 scale, cast back to the weight's dtype. The codes
// (|q| <= 128) are exact in every float dtype, so q is taken to float32
// directly: the product is the same, one pass fewer.
// () -> (out, in)
func (w *Weight) dequantizeInt8(s *torch.Scope) *torch.Tensor {
	t := s.Child()
	defer t.Close()
	out := t.Mul(t.To(w.Q, torch.Float32), w.Scale)
	if w.DType != torch.Float32 {
		out = t.To(out, w.DType)
	}
	if t.Err() != nil {
		return nil
	}
	return s.Own(t.Keep(out))
}

package torch

import lib "github.com/sugarme/gotch/libtch"

// Conv1d is a 1-D convolution: x (N,Cin,L), w (Cout,Cin,K), bias (Cout) or
// nil -> (N,Cout,(L+2·padding−K)/stride+1).
func (s *Scope) Conv1d(x, w, bias *Tensor, stride, padding int64) *Tensor {
	in := []*Tensor{x, w}
	var b lib.Ctensor
	if bias != nil {
		in = append(in, bias)
	}
	if !s.ok("conv1d", in...) {
		return nil
	}
	if bias != nil {
		b = bias.c
	}
	lib.AtgConv1d(&s.out[0], x.c, w.c, b, []int64{stride}, 1, []int64{padding}, 1, []int64{1}, 1, 1)
	return s.result("conv1d")
}

// Conv3d is a 3-D convolution without padding: x (N,Cin,D,H,W), w
// (Cout,Cin,kD,kH,kW), bias (Cout) or nil, stride (sD,sH,sW) -> (N,Cout,…).
func (s *Scope) Conv3d(x, w, bias *Tensor, stride [3]int64) *Tensor {
	in := []*Tensor{x, w}
	var b lib.Ctensor
	if bias != nil {
		in = append(in, bias)
	}
	if !s.ok("conv3d", in...) {
		return nil
	}
	if bias != nil {
		b = bias.c
	}
	lib.AtgConv3d(&s.out[0], x.c, w.c, b, stride[:], 3, []int64{0, 0, 0}, 3, []int64{1, 1, 1}, 3, 1)
	return s.result("conv3d")
}

// LayerNorm normalises the last dimension: (x − mean)/√(var + eps)·w + b,
// x (…,D), w and b (D) -> (…,D).
func (s *Scope) LayerNorm(x, w, b *Tensor, eps float64) *Tensor {
	if !s.ok("layer_norm", x, w, b) {
		return nil
	}
	D := x.Size(-1)
	lib.AtgLayerNorm(&s.out[0], x.c, []int64{D}, 1, w.c, b.c, eps, 0)
	return s.result("layer_norm")
}

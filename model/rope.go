package model

import (
	"fmt"
	"math"

	"github.com/mose-llm/mose/internal/torch"
)

// invFreq returns the rotary inverse frequencies (head_dim/2 of them) for the
// config, bit for bit as transformers 4.46 computes them: every step in
// float32 and in its order (a float64 power rounded once differs from it in
// about a third of the values, and the angle error grows with the position).
// The power base ** (2i/dim) is libtorch's own CPU pow kernel, the one torch
// runs at model init; the other steps are single float32 operations, written
// with explicit conversions so that the compiler cannot fuse them.
func (c Config) invFreq() ([]float32, error) {
	half := c.HeadDim / 2
	// arange(0, dim, 2, dtype=int64).float() / dim
	expo := make([]float32, half)
	for i := range half {
		expo[i] = float32(2*i) / float32(c.HeadDim)
	}
	pow, err := torchPow(float32(c.RopeTheta), expo)
	if err != nil {
		return nil, fmt.Errorf("%w: rotary inverse frequencies: %v", ErrConfig, err)
	}
	// 1.0 / t is t.reciprocal() * 1.0: one float32 division.
	inv := make([]float32, half)
	for i, p := range pow {
		inv[i] = 1 / p
	}
	r := c.RopeScaling
	switch r.Kind() {
	case "linear":
		// inv_freq /= factor (dividing the frequencies is dividing the positions).
		f := float32(r.Factor)
		for i := range inv {
			inv[i] /= f
		}
	case "llama3":
		llama3Scale(inv, r)
	}
	return inv, nil
}

// torchPow returns base ** e elementwise with libtorch's float32 CPU kernel:
// transformers' `base ** tensor` casts the Python float base to float32 and
// runs the same kernel (its vectorised powf is within an ulp, not correctly
// rounded, so a Go math.Pow would differ in a few values).
func torchPow(base float32, e []float32) ([]float32, error) {
	s := torch.NewScope()
	defer s.Close()
	n := int64(len(e))
	p := s.Pow(s.Full([]int64{n}, float64(base), torch.Float32, torch.CPU), s.FromFloat32(e, n))
	if err := s.Err(); err != nil {
		return nil, err
	}
	return p.Float32s()
}

// llama3Scale rescales inv in place as transformers' _compute_llama3_parameters:
// wavelengths longer than original/low_freq_factor are slowed by factor,
// shorter than original/high_freq_factor kept, and those between interpolated
// smoothly. Python scalars meet float32 tensors, so each is cast to float32
// and each tensor op rounds once; `x / t` is t.reciprocal() * x.
func llama3Scale(inv []float32, r *RopeScaling) {
	factor := float32(r.Factor)
	lowWave := float32(r.OriginalMaxPositionEmbeddings / r.LowFreqFactor)
	highWave := float32(r.OriginalMaxPositionEmbeddings / r.HighFreqFactor)
	old := float32(r.OriginalMaxPositionEmbeddings)
	low := float32(r.LowFreqFactor)
	span := float32(r.HighFreqFactor - r.LowFreqFactor)
	twoPi := float32(2 * math.Pi)
	for i, f := range inv {
		wave := float32(float32(1/f) * twoPi) // 2π / inv_freq
		g := f                                // where(wave > low_wave, inv/factor, inv)
		if wave > lowWave {
			g = f / factor
		}
		if !(wave < highWave) && !(wave > lowWave) {
			// smooth = (old / wave - low) / (high - low)
			smooth := float32(float32(float32(1/wave)*old)-low) / span
			// (1 - smooth) * inv / factor + smooth * inv
			a := float32(float32(float32(1-smooth)*g) / factor)
			b := float32(smooth * g)
			g = float32(a + b)
		}
		inv[i] = g
	}
}

// rope caches cos and sin tables, (n, head_dim) in the run dtype.
type rope struct {
	invFreq  []float32
	cos, sin *torch.Tensor
	n        int64
}

// tables returns cos and sin for positions 0..T-1, growing the cache when T
// exceeds it. The tables are (T, head_dim) views owned by the cache.
func (r *rope) tables(s *torch.Scope, T int64, dt torch.DType, dev torch.Device) (cos, sin *torch.Tensor) {
	if T > r.n {
		n := max(T, 2*r.n, 256)
		build := s.Child()
		pos := build.Arange(0, n, torch.Float32, dev)                                   // (n)
		inv := build.ToDevice(build.FromFloat32(r.invFreq, int64(len(r.invFreq))), dev) // (hd/2)
		freqs := build.Outer(pos, inv)                                                  // (n, hd/2)
		emb := build.Cat([]*torch.Tensor{freqs, freqs}, -1)                             // (n, hd)
		c, sn := build.To(build.Cos(emb), dt), build.To(build.Sin(emb), dt)
		if build.Err() == nil {
			r.free()
			r.cos, r.sin, r.n = build.Keep(c), build.Keep(sn), n
		}
		build.Close()
	}
	if r.cos == nil {
		return nil, nil
	}
	return s.Narrow(r.cos, 0, 0, T), s.Narrow(r.sin, 0, 0, T)
}

func (r *rope) free() {
	r.cos.Free()
	r.sin.Free()
	r.cos, r.sin, r.n = nil, nil, 0
}

// applyRope rotates x (B,H,T,hd) by the position tables (T,hd):
// x·cos + rotate_half(x)·sin, rotate_half(x) = [-x₂, x₁].
func applyRope(s *torch.Scope, x, cos, sin *torch.Tensor, hd int64) *torch.Tensor {
	x1 := s.Narrow(x, -1, 0, hd/2)
	x2 := s.Narrow(x, -1, hd/2, hd/2)
	rot := s.Cat([]*torch.Tensor{s.Neg(x2), x1}, -1)
	return s.Add(s.Mul(x, cos), s.Mul(rot, sin))
}

// tablesAt returns cos and sin at explicit positions: pos (B,T) int64 with
// every value below n -> (B,1,T,head_dim) each, broadcasting over heads.
func (r *rope) tablesAt(s *torch.Scope, pos *torch.Tensor, n int64, dt torch.DType, dev torch.Device) (cos, sin *torch.Tensor) {
	if _, _ = r.tables(s, n, dt, dev); r.cos == nil || pos == nil {
		return nil, nil
	}
	B, T := pos.Size(0), pos.Size(1)
	flat := s.Reshape(pos, -1)
	at := func(tab *torch.Tensor) *torch.Tensor {
		return s.View(s.IndexSelect(tab, 0, flat), B, 1, T, tab.Size(1))
	}
	return at(r.cos), at(r.sin)
}

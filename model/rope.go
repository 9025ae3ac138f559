package model

import (
	"math"

	"github.com/mose-llm/mose/internal/torch"
)

// invFreq returns the rotary inverse frequencies (head_dim/2 of them) for the
// config, with rope_scaling applied as transformers does.
func (c Config) invFreq() []float32 {
	half := c.HeadDim / 2
	out := make([]float32, half)
	r := c.RopeScaling
	for i := range half {
		// transformers: 1 / base ** (arange(0, dim, 2) / dim), in float32.
		expo := float32(2*i) / float32(c.HeadDim)
		f := 1 / math.Pow(c.RopeTheta, float64(expo))
		switch r.Kind() {
		case "linear":
			// linear scaling divides positions by factor; dividing the
			// frequencies instead is the same product.
			f /= r.Factor
		case "llama3":
			f = llama3Scale(f, r)
		}
		out[i] = float32(f)
	}
	return out
}

// llama3Scale: wavelengths longer than original/low_freq_factor are slowed by
// factor, shorter than original/high_freq_factor kept, and those between
// interpolated smoothly.
func llama3Scale(f float64, r *RopeScaling) float64 {
	lowWave := r.OriginalMaxPositionEmbeddings / r.LowFreqFactor
	highWave := r.OriginalMaxPositionEmbeddings / r.HighFreqFactor
	wave := 2 * math.Pi / f
	switch {
	case wave < highWave:
		return f
	case wave > lowWave:
		return f / r.Factor
	}
	smooth := (r.OriginalMaxPositionEmbeddings/wave - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
	return (1-smooth)*f/r.Factor + smooth*f
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

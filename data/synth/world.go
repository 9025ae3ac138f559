package synth

import (
	"math"
	"math/rand/v2"
)

// world holds the fixed directions of one generated dataset, shared by its
// train and eval splits: per modality, one unit prototype per label and one
// cue direction, all mutually orthogonal within the modality.
type world struct {
	visualProto, audioProto [][]float32 // [label][dim]
	visualCue, audioCue     []float32
}

func newWorld(seed uint64, visualDim, audioDim int) world {
	r := rand.New(rand.NewPCG(seed, 0x776f726c64)) // "world"
	v := orthonormal(r, len(Labels)+1, visualDim)
	a := orthonormal(r, len(Labels)+1, audioDim)
	return world{visualProto: v[:len(Labels)], visualCue: v[len(Labels)], audioProto: a[:len(Labels)], audioCue: a[len(Labels)]}
}

// orthonormal draws n orthonormal vectors of dimension dim (n <= dim) by
// Gram–Schmidt on Gaussian draws.
func orthonormal(r *rand.Rand, n, dim int) [][]float32 {
	basis := make([][]float64, 0, n)
	for len(basis) < n {
		v := make([]float64, dim)
		for i := range v {
			v[i] = r.NormFloat64()
		}
		for _, b := range basis {
			d := dot(v, b)
			for i := range v {
				v[i] -= d * b[i]
			}
		}
		norm := math.Sqrt(dot(v, v))
		if norm < 1e-6 {
			continue
		}
		for i := range v {
			v[i] /= norm
		}
		basis = append(basis, v)
	}
	out := make([][]float32, n)
	for k, b := range basis {
		out[k] = make([]float32, dim)
		for i, x := range b {
			out[k][i] = float32(x)
		}
	}
	return out
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

package torch

import (
	"math"
	"testing"
)

// Conv1d, Conv3d and LayerNorm agree with direct float64 sums.
func TestConvAndLayerNorm(t *testing.T) {
	inTorch(t, func(s *Scope) {
		// conv1d: x (2,3,7), w (4,3,3), bias, stride 2, padding 1.
		x, w, b := rnd(1, 2, 3, 7), rnd(2, 4, 3, 3), rnd(3, 4)
		for _, tc := range []struct{ stride, pad int64 }{{1, 1}, {2, 1}, {1, 0}} {
			L := (7+2*tc.pad-3)/tc.stride + 1
			want := nd{[]int64{2, 4, L}, make([]float64, 2*4*L)}
			for n := range 2 {
				for o := range 4 {
					for l := range int(L) {
						acc := b.v[o]
						for c := range 3 {
							for k := range 3 {
								i := l*int(tc.stride) + k - int(tc.pad)
								if i >= 0 && i < 7 {
									acc += x.at(n, c, i) * w.at(o, c, k)
								}
							}
						}
						want.v[(n*4+o)*int(L)+l] = acc
					}
				}
			}
			expectND(t, "conv1d", s.Conv1d(s.fromND(x), s.fromND(w), s.fromND(b), tc.stride, tc.pad), want, 1e-5)
		}
		// conv3d with kernel = stride (a patch embedding): x (2,3,2,4,4), w (5,3,2,2,2), no bias.
		x3, w3 := rnd(4, 2, 3, 2, 4, 4), rnd(5, 5, 3, 2, 2, 2)
		want := nd{[]int64{2, 5, 1, 2, 2}, make([]float64, 2*5*4)}
		for n := range 2 {
			for o := range 5 {
				for ph := range 2 {
					for pw := range 2 {
						var acc float64
						for c := range 3 {
							for kt := range 2 {
								for kh := range 2 {
									for kw := range 2 {
										acc += x3.at(n, c, kt, 2*ph+kh, 2*pw+kw) * w3.at(o, c, kt, kh, kw)
									}
								}
							}
						}
						want.v[((n*5+o)*2+ph)*2+pw] = acc
					}
				}
			}
		}
		expectND(t, "conv3d", s.Conv3d(s.fromND(x3), s.fromND(w3), nil, [3]int64{2, 2, 2}), want, 1e-5)
		// layer norm over the last dim, eps 1e-5.
		xl, g, bb := rnd(6, 3, 8), rnd(7, 8), rnd(8, 8)
		ln := rowwise(xl, func(r []float64) []float64 {
			m := sumOf(r) / float64(len(r))
			var v float64
			for _, e := range r {
				v += (e - m) * (e - m)
			}
			v /= float64(len(r))
			out := make([]float64, len(r))
			for i, e := range r {
				out[i] = (e-m)/math.Sqrt(v+1e-5)*g.v[i] + bb.v[i]
			}
			return out
		})
		expectND(t, "layer_norm", s.LayerNorm(s.fromND(xl), s.fromND(g), s.fromND(bb), 1e-5), ln, 1e-5)
	})
}

package omniproc

import (
	"math"
	"math/cmplx"
	"testing"
)

// The FFT equals the direct DFT on sizes with factors 2, 3, 5 and a prime.
func TestFFTMatchesDFT(t *testing.T) {
	for _, n := range []int{1, 2, 8, 12, 400, 7, 30} {
		x := make([]complex128, n)
		for i := range x {
			x[i] = complex(math.Sin(float64(i*i)+0.3), math.Cos(float64(3*i)))
		}
		got := make([]complex128, n)
		newFFT(n).transform(got, x)
		for k := range n {
			var want complex128
			for j := range n {
				want += x[j] * cmplx.Exp(complex(0, -2*math.Pi*float64(j*k)/float64(n)))
			}
			if d := cmplx.Abs(got[k] - want); d > 1e-9*float64(n) {
				t.Fatalf("n=%d: bin %d differs by %g", n, k, d)
			}
		}
	}
}

package omniproc

import "math"

// fft is a mixed-radix decimation-in-time FFT of a fixed size n, with its
// twiddles W^j = exp(−2πij/n) precomputed; it suits the small, composite sizes of
// an STFT (Whisper's 400 = 2⁴·5²). Any size works (a prime one is an O(n²) DFT).
type fft struct {
	n   int
	tw  []complex128
	buf []complex128
}

func newFFT(n int) *fft {
	tw := make([]complex128, n)
	for j := range tw {
		a := -2 * math.Pi * float64(j) / float64(n)
		tw[j] = complex(math.Cos(a), math.Sin(a))
	}
	return &fft{n: n, tw: tw, buf: make([]complex128, n)}
}

// transform writes the DFT of x (length n) into out.
func (f *fft) transform(out, x []complex128) { f.rec(out, x, f.n, 1, f.buf) }

// rec computes the size-n DFT of x[0], x[s], x[2s], … into out[:n], using tmp[:n].
func (f *fft) rec(out, x []complex128, n, s int, tmp []complex128) {
	if n == 1 {
		out[0] = x[0]
		return
	}
	p := smallestFactor(n)
	m := n / p
	// p sub-transforms of size m over the residues r, into tmp[r·m : (r+1)·m].
	for r := range p {
		f.rec(tmp[r*m:(r+1)*m], x[r*s:], m, s*p, out[r*m:(r+1)*m])
	}
	step := f.n / n // W_n^e = W_N^(e·step)
	for k := range m {
		for q := range p {
			idx := k + m*q
			var v complex128
			for r := range p {
				v += f.tw[(r*idx*step)%f.n] * tmp[r*m+k]
			}
			out[idx] = v
		}
	}
}

func smallestFactor(n int) int {
	for p := 2; p*p <= n; p++ {
		if n%p == 0 {
			return p
		}
	}
	return n
}

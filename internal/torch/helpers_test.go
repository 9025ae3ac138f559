package torch

import (
	"math"
	"math/rand/v2"
	"testing"
)

// nd is a row-major float64 array: the independent Go reference the ops are
// checked against.
type nd struct {
	shape []int64
	v     []float64
}

func numelOf(shape []int64) int {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	return n
}

// rnd returns an nd of the shape filled from a seeded generator, in [-2, 2).
func rnd(seed uint64, shape ...int64) nd {
	r := rand.New(rand.NewPCG(seed, 7))
	v := make([]float64, numelOf(shape))
	for i := range v {
		v[i] = float64(float32(4*r.Float64() - 2)) // exactly representable in float32
	}
	return nd{shape, v}
}

// pos returns an nd with values in [0.1, 3.1).
func pos(seed uint64, shape ...int64) nd {
	a := rnd(seed, shape...)
	for i := range a.v {
		a.v[i] = float64(float32(math.Abs(a.v[i])*0.75 + 0.1))
	}
	return a
}

func (a nd) strides() []int {
	st := make([]int, len(a.shape))
	n := 1
	for i := len(a.shape) - 1; i >= 0; i-- {
		st[i] = n
		n *= int(a.shape[i])
	}
	return st
}

// unravel turns a flat index into coordinates.
func unravel(shape []int64, flat int) []int {
	c := make([]int, len(shape))
	for i := len(shape) - 1; i >= 0; i-- {
		c[i] = flat % int(shape[i])
		flat /= int(shape[i])
	}
	return c
}

func (a nd) at(c ...int) float64 {
	st := a.strides()
	off := 0
	for i, x := range c {
		off += x * st[i]
	}
	return a.v[off]
}

func mapND(a nd, f func(float64) float64) nd {
	out := nd{a.shape, make([]float64, len(a.v))}
	for i, x := range a.v {
		out.v[i] = f(x)
	}
	return out
}

// broadcast applies f with NumPy broadcasting.
func broadcast(a, b nd, f func(x, y float64) float64) nd {
	n := max(len(a.shape), len(b.shape))
	pad := func(s []int64) []int64 {
		p := make([]int64, n)
		for i := range p {
			p[i] = 1
		}
		copy(p[n-len(s):], s)
		return p
	}
	as, bs := pad(a.shape), pad(b.shape)
	shape := make([]int64, n)
	for i := range shape {
		shape[i] = max(as[i], bs[i])
	}
	A, B := nd{as, a.v}, nd{bs, b.v}
	out := nd{shape, make([]float64, numelOf(shape))}
	for i := range out.v {
		c := unravel(shape, i)
		ca, cb := make([]int, n), make([]int, n)
		for d := range c {
			ca[d], cb[d] = c[d]%int(as[d]), c[d]%int(bs[d])
		}
		out.v[i] = f(A.at(ca...), B.at(cb...))
	}
	return out
}

// matmul2 multiplies (n,k)·(k,m).
func matmul2(a, b nd) nd {
	n, k, m := a.shape[0], a.shape[1], b.shape[1]
	out := nd{[]int64{n, m}, make([]float64, n*m)}
	for i := range n {
		for j := range m {
			var acc float64
			for p := range k {
				acc += a.v[i*k+p] * b.v[p*m+j]
			}
			out.v[i*m+j] = acc
		}
	}
	return out
}

func transpose2(a nd) nd {
	n, m := a.shape[0], a.shape[1]
	out := nd{[]int64{m, n}, make([]float64, n*m)}
	for i := range n {
		for j := range m {
			out.v[j*n+i] = a.v[i*m+j]
		}
	}
	return out
}

// reduceLast reduces the last dimension with f over its values.
func reduceLast(a nd, f func([]float64) float64) nd {
	d := int(a.shape[len(a.shape)-1])
	out := nd{a.shape[:len(a.shape)-1], make([]float64, len(a.v)/d)}
	for i := range out.v {
		out.v[i] = f(a.v[i*d : (i+1)*d])
	}
	return out
}

// rowwise maps every last-dimension row through f.
func rowwise(a nd, f func([]float64) []float64) nd {
	d := int(a.shape[len(a.shape)-1])
	out := nd{a.shape, make([]float64, 0, len(a.v))}
	for i := 0; i < len(a.v); i += d {
		out.v = append(out.v, f(a.v[i:i+d])...)
	}
	return out
}

func softmaxRow(x []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, v)
	}
	var z float64
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Exp(v - m)
		z += out[i]
	}
	for i := range out {
		out[i] /= z
	}
	return out
}

func sumOf(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s
}

// inTorch runs fn on the tensor thread with a fresh scope and fails the test
// on any error the scope recorded.
func inTorch(t *testing.T, fn func(s *Scope)) {
	t.Helper()
	err := Run(func() error {
		s := NewScope()
		defer s.Close()
		fn(s)
		return s.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (s *Scope) fromND(a nd) *Tensor {
	f := make([]float32, len(a.v))
	for i, x := range a.v {
		f[i] = float32(x)
	}
	return s.FromFloat32(f, a.shape...)
}

// expectND compares a tensor with the reference, shape and values.
func expectND(t *testing.T, name string, got *Tensor, want nd, tol float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: nil result", name)
		return
	}
	if !equalShape(got.Shape(), want.shape) {
		t.Errorf("%s: shape %v, want %v", name, got.Shape(), want.shape)
		return
	}
	v, err := got.Float64s()
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	for i := range v {
		if d := math.Abs(v[i] - want.v[i]); !(d <= tol*(1+math.Abs(want.v[i]))) {
			t.Errorf("%s: element %d (%v) = %v, want %v", name, i, unravel(want.shape, i), v[i], want.v[i])
			return
		}
	}
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

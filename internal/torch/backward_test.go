package torch

import (
	"errors"
	"testing"
)

// BackwardWith seeds each root with its gradient in one pass: the same
// gradients as a scalar loss Σ(y ⊙ g) + aux, bit for bit.
func TestBackwardWith(t *testing.T) {
	xs, ws, gs := rnd(70, 3, 4), rnd(71, 5, 4), rnd(72, 3, 5)
	inTorch(t, func(s *Scope) {
		grads := func(with bool) ([]float64, []float64) {
			x, w := s.FromFloat64(xs.v, xs.shape...), s.FromFloat64(ws.v, ws.shape...)
			for _, p := range []*Tensor{x, w} {
				if err := p.SetRequiresGrad(true); err != nil {
					t.Fatal(err)
				}
			}
			y := s.Linear(x, w, nil) // (3,4)·(5,4)ᵀ -> (3,5)
			aux := s.Mean(s.Square(w))
			g := s.FromFloat64(gs.v, gs.shape...)
			var err error
			if with {
				err = BackwardWith([]*Tensor{y, aux}, []*Tensor{g, nil})
			} else {
				err = s.Add(s.Sum(s.Mul(y, g)), aux).Backward()
			}
			if err != nil {
				t.Fatal(err)
			}
			gx, err := s.Grad(x).Float64s()
			if err != nil {
				t.Fatal(err)
			}
			gw, err := s.Grad(w).Float64s()
			if err != nil {
				t.Fatal(err)
			}
			return gx, gw
		}
		ax, aw := grads(true)
		bx, bw := grads(false)
		for i := range ax {
			if ax[i] != bx[i] {
				t.Fatalf("x.grad[%d] = %v, want %v", i, ax[i], bx[i])
			}
		}
		for i := range aw {
			if aw[i] != bw[i] {
				t.Fatalf("w.grad[%d] = %v, want %v", i, aw[i], bw[i])
			}
		}
		y := s.MulScalar(s.FromFloat64([]float64{1, 2}, 2), 1)
		for _, tt := range []struct {
			roots, grads []*Tensor
			want         error
		}{
			{nil, nil, ErrShape},
			{[]*Tensor{y}, nil, ErrShape},
			{[]*Tensor{{}}, []*Tensor{nil}, ErrFreed},
		} {
			if err := BackwardWith(tt.roots, tt.grads); !errors.Is(err, tt.want) {
				t.Errorf("BackwardWith(%d roots, %d grads) = %v, want %v", len(tt.roots), len(tt.grads), err, tt.want)
			}
		}
		// A wrong-shaped gradient and a non-scalar root without one are libtorch errors.
		x := s.FromFloat64(xs.v, xs.shape...)
		if err := x.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
		z := s.MulScalar(x, 2)
		if err := BackwardWith([]*Tensor{z}, []*Tensor{s.Ones([]int64{2}, Float64, CPU)}); err == nil {
			t.Error("a gradient of the wrong shape was accepted")
		}
		if err := BackwardWith([]*Tensor{s.MulScalar(x, 3)}, []*Tensor{nil}); err == nil {
			t.Error("a non-scalar root without a gradient was accepted")
		}
	})
}

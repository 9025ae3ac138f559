package torch

import (
	"errors"
	"math"
	"testing"
)

// composite is the function whose gradients are checked by finite differences:
// f(x, w, b) = Σ softmax(silu(x·wᵀ + b)) ⊙ c + mean(logsumexp(x·wᵀ)) + Σ √(x² + 1).
func composite(s *Scope, x, w, b, c *Tensor) *Tensor {
	z := s.Linear(x, w, b)        // (N,in)·(out,in)ᵀ -> (N,out)
	p := s.Softmax(s.Silu(z), -1) // (N,out)
	term1 := s.Sum(s.Mul(p, c))   // ()
	term2 := s.Mean(s.LogSumExp(s.Matmul(x, s.Transpose(w, 0, 1)), []int64{-1}, false))
	term3 := s.Sum(s.Sqrt(s.AddScalar(s.Square(x), 1)))
	return s.Add(s.Add(term1, term2), term3)
}

func TestGradientsFiniteDifferences(t *testing.T) {
	xs, ws, bs, cs := rnd(60, 3, 4), rnd(61, 5, 4), rnd(62, 5), rnd(63, 3, 5)
	inTorch(t, func(s *Scope) {
		f64 := func(a nd) *Tensor { return s.FromFloat64(a.v, a.shape...) }
		x, w, b, c := f64(xs), f64(ws), f64(bs), f64(cs)
		for _, p := range []*Tensor{x, w, b} {
			if err := p.SetRequiresGrad(true); err != nil {
				t.Fatal(err)
			}
		}
		loss := composite(s, x, w, b, c)
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		for name, param := range map[string]struct {
			t   *Tensor
			ref nd
		}{"x": {x, xs}, "w": {w, ws}, "b": {b, bs}} {
			g, err := s.Grad(param.t).Float64s()
			if err != nil {
				t.Fatal(err)
			}
			const h = 1e-6
			for i := range param.ref.v {
				eval := func(delta float64) float64 {
					in := map[string]nd{"x": xs, "w": ws, "b": bs}
					moved := nd{param.ref.shape, append([]float64{}, param.ref.v...)}
					moved.v[i] += delta
					in[name] = moved
					var v float64
					err := NoGrad(func() error {
						sub := s.Child()
						defer sub.Close()
						t64 := func(a nd) *Tensor { return sub.FromFloat64(a.v, a.shape...) }
						out := composite(sub, t64(in["x"]), t64(in["w"]), t64(in["b"]), t64(cs))
						if err := sub.Err(); err != nil {
							return err
						}
						var err error
						v, err = out.Item()
						return err
					})
					if err != nil {
						t.Fatal(err)
					}
					return v
				}
				fd := (eval(h) - eval(-h)) / (2 * h)
				if math.Abs(fd-g[i]) > 1e-6*(1+math.Abs(fd)) {
					t.Errorf("d/d%s[%d]: autograd %v, finite difference %v", name, i, g[i], fd)
				}
			}
		}
	})
}

// The fused no-mask attention must back-propagate like the composed one.
func TestAttentionGradient(t *testing.T) {
	qs, ks, vs := rnd(70, 1, 2, 6, 4), rnd(71, 1, 2, 6, 4), rnd(72, 1, 2, 6, 4)
	grads := func(fused bool) [][]float64 {
		var out [][]float64
		inTorch(t, func(s *Scope) {
			q, k, v := s.fromND(qs), s.fromND(ks), s.fromND(vs)
			for _, p := range []*Tensor{q, k, v} {
				if err := p.SetRequiresGrad(true); err != nil {
					t.Fatal(err)
				}
			}
			var y *Tensor
			if fused {
				y = s.Attention(q, k, v, nil, true, 0)
			} else {
				scores := s.MulScalar(s.Matmul(q, s.Transpose(k, 2, 3)), 0.5) // (1,2,6,6)
				mask := s.Triu(s.Ones([]int64{6, 6}, Bool, CPU), 1)
				y = s.Matmul(s.Softmax(s.MaskedFill(scores, mask, math.Inf(-1)), -1), v)
			}
			w := s.fromND(rnd(73, 1, 2, 6, 4))
			if err := s.Sum(s.Mul(y, w)).Backward(); err != nil {
				t.Fatal(err)
			}
			for _, p := range []*Tensor{q, k, v} {
				g, err := s.Grad(p).Float64s()
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, g)
			}
		})
		return out
	}
	fused, composed := grads(true), grads(false)
	for p := range fused {
		for i := range fused[p] {
			if math.Abs(fused[p][i]-composed[p][i]) > 1e-5 {
				t.Fatalf("input %d grad %d: fused %v, composed %v", p, i, fused[p][i], composed[p][i])
			}
		}
	}
}

func TestGradLifecycle(t *testing.T) {
	inTorch(t, func(s *Scope) {
		w := s.FromFloat32([]float32{1, 2, 3}, 3)
		if err := w.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
		if !w.RequiresGrad() {
			t.Fatal("RequiresGrad false after SetRequiresGrad(true)")
		}
		if g := s.Grad(w); g != nil {
			t.Fatalf("grad before backward = %v, want nil", g)
		}
		if err := w.ZeroGrad(); err != nil {
			t.Fatalf("ZeroGrad with no grad: %v", err)
		}
		step := func() {
			sub := s.Child()
			defer sub.Close()
			if err := sub.Sum(sub.Square(w)).Backward(); err != nil { // d/dw = 2w
				t.Fatal(err)
			}
		}
		step()
		step() // accumulates
		expectND(t, "accumulated grad", s.Grad(w), nd{[]int64{3}, []float64{4, 8, 12}}, 0)
		if err := w.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		expectND(t, "zeroed grad", s.Grad(w), nd{[]int64{3}, []float64{0, 0, 0}}, 0)
		step()
		expectND(t, "fresh grad", s.Grad(w), nd{[]int64{3}, []float64{2, 4, 6}}, 0)

		// Detach cuts the graph: only the attached branch contributes.
		if err := w.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		l := s.Add(s.Sum(s.Mul(s.Detach(w), w)), s.Sum(s.Detach(w)))
		if err := l.Backward(); err != nil {
			t.Fatal(err)
		}
		expectND(t, "detached grad", s.Grad(w), nd{[]int64{3}, []float64{1, 2, 3}}, 0)
		if s.Detach(w).RequiresGrad() {
			t.Error("detached tensor requires grad")
		}

		// CopyFrom under NoGrad updates a parameter in place.
		err := NoGrad(func() error { return w.CopyFrom(s.FromFloat32([]float32{7, 8, 9}, 3)) })
		if err != nil {
			t.Fatal(err)
		}
		expectND(t, "copied", w, nd{[]int64{3}, []float64{7, 8, 9}}, 0)
		// In-place writes to a leaf that requires grad are refused outside NoGrad.
		if err := w.Fill(0.5); err == nil {
			t.Error("Fill on a leaf requiring grad outside NoGrad should fail")
		}
		if err := NoGrad(func() error { return w.Fill(0.5) }); err != nil {
			t.Fatal(err)
		}
		expectND(t, "filled", w, nd{[]int64{3}, []float64{0.5, 0.5, 0.5}}, 0)
	})
}

func TestNoGradNesting(t *testing.T) {
	errInner := errors.New("inner")
	err := Run(func() error {
		if !GradEnabled() {
			t.Error("grad disabled on a fresh thread")
		}
		err := NoGrad(func() error {
			if GradEnabled() {
				t.Error("grad enabled inside NoGrad")
			}
			err := NoGrad(func() error { return errInner })
			if GradEnabled() {
				t.Error("inner NoGrad re-enabled grad on return")
			}
			s := NewScope()
			defer s.Close()
			w := s.Ones([]int64{2}, Float32, CPU)
			_ = w.SetRequiresGrad(true)
			if s.MulScalar(w, 2).RequiresGrad() {
				t.Error("op under NoGrad records grad")
			}
			return err
		})
		if !errors.Is(err, errInner) {
			t.Errorf("NoGrad lost fn's error: %v", err)
		}
		if !GradEnabled() {
			t.Error("grad not restored after NoGrad")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

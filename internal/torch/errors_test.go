package torch

import (
	"errors"
	"strings"
	"testing"
)

func TestOpErrors(t *testing.T) {
	cases := []struct {
		name   string
		run    func(s *Scope) *Tensor
		op     string // the op the error must name
		isErr  error  // a sentinel the error must wrap, if any
		substr string // part of libtorch's message, if any
	}{
		{"shape mismatch", func(s *Scope) *Tensor {
			return s.Add(s.Ones([]int64{2, 3}, Float32, CPU), s.Ones([]int64{4}, Float32, CPU))
		}, "add", nil, "must match the size"},
		{"matmul inner dims", func(s *Scope) *Tensor {
			return s.Matmul(s.Ones([]int64{2, 3}, Float32, CPU), s.Ones([]int64{4, 2}, Float32, CPU))
		}, "matmul", nil, "cannot be multiplied"},
		{"narrow out of range", func(s *Scope) *Tensor {
			return s.Narrow(s.Ones([]int64{2, 3}, Float32, CPU), 1, 2, 5)
		}, "narrow", nil, ""},
		{"view incompatible", func(s *Scope) *Tensor {
			return s.View(s.Ones([]int64{2, 3}, Float32, CPU), 4, 2)
		}, "view", nil, "invalid"},
		{"bad dim", func(s *Scope) *Tensor {
			return s.Softmax(s.Ones([]int64{2}, Float32, CPU), 3)
		}, "softmax", nil, "Dimension out of range"},
		{"index out of range", func(s *Scope) *Tensor {
			return s.IndexSelect(s.Ones([]int64{2, 3}, Float32, CPU), 0, s.FromInt64([]int64{5}, 1))
		}, "index_select", nil, ""},
		{"cross entropy target", func(s *Scope) *Tensor {
			return s.CrossEntropy(s.Ones([]int64{2, 3}, Float32, CPU), s.FromInt64([]int64{0, 7}, 2), -100, ReduceMean)
		}, "cross_entropy", nil, ""},
		{"freed input", func(s *Scope) *Tensor {
			x := s.Ones([]int64{2}, Float32, CPU)
			x.Free()
			return s.Exp(x)
		}, "exp", ErrFreed, ""},
		{"nil input", func(s *Scope) *Tensor { return s.Add(nil, s.Ones([]int64{1}, Float32, CPU)) }, "add", ErrFreed, ""},
		{"data/shape mismatch", func(s *Scope) *Tensor { return s.FromFloat32([]float32{1, 2, 3}, 2, 2) },
			"from_float32", ErrShape, ""},
		{"negative shape", func(s *Scope) *Tensor { return s.FromFloat32(nil, -1) }, "from_float32", ErrShape, ""},
		{"ragged bytes", func(s *Scope) *Tensor { return s.FromBytes([]byte{1, 2, 3}, BFloat16, 1) },
			"from_bytes", ErrShape, ""},
		{"empty cat", func(s *Scope) *Tensor { return s.Cat(nil, 0) }, "cat", ErrShape, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got *Tensor
			err := Run(func() error {
				s := NewScope()
				defer s.Close()
				got = c.run(s)
				// A failed scope does nothing more and keeps its first error.
				if s.Err() != nil && s.Exp(s.Ones([]int64{1}, Float32, CPU)) != nil {
					t.Error("op ran on a failed scope")
				}
				return s.Err()
			})
			if got != nil {
				t.Errorf("failing op returned a tensor")
			}
			var oe *OpError
			if !errors.As(err, &oe) {
				t.Fatalf("error %v (%T) is not an *OpError", err, err)
			}
			if oe.Op != c.op {
				t.Errorf("error names op %q, want %q: %v", oe.Op, c.op, err)
			}
			if c.isErr != nil && !errors.Is(err, c.isErr) {
				t.Errorf("error %v does not wrap %v", err, c.isErr)
			}
			if !strings.Contains(err.Error(), c.substr) {
				t.Errorf("error %q does not mention %q", err, c.substr)
			}
			if strings.Contains(err.Error(), "Exception raised from") || strings.Contains(err.Error(), "frame #") {
				t.Errorf("error keeps libtorch's backtrace: %q", err)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	inTorch(t, func(s *Scope) {
		x := s.Ones([]int64{2}, Float32, CPU)
		if _, err := x.Item(); !errors.Is(err, ErrShape) {
			t.Errorf("Item on 2 elements: %v, want ErrShape", err)
		}
		x.Free()
		x.Free() // idempotent
		if _, err := x.Float32s(); !errors.Is(err, ErrFreed) {
			t.Errorf("Float32s on freed: %v", err)
		}
		if _, err := x.Bytes(); !errors.Is(err, ErrFreed) {
			t.Errorf("Bytes on freed: %v", err)
		}
		if err := x.Backward(); !errors.Is(err, ErrFreed) {
			t.Errorf("Backward on freed: %v", err)
		}
		if x.Shape() == nil || x.Dim() != 0 || x.Defined() {
			t.Error("metadata of a freed tensor")
		}
		// Backward of a tensor that does not require grad is a libtorch error.
		y := s.Ones([]int64{1}, Float32, CPU)
		if err := y.Backward(); err == nil {
			t.Error("Backward without grad should fail")
		}
		if !CUDAAvailable() {
			other := NewScope()
			defer other.Close()
			if z := other.ToDevice(y, CUDA(0)); z != nil || other.Err() == nil {
				t.Error("ToDevice(cuda) without CUDA did not fail")
			} else if len(other.Err().Error()) > maxMsg+100 {
				t.Errorf("error message not trimmed: %d bytes", len(other.Err().Error()))
			}
		}
	})
}

func TestRunRecoversPanic(t *testing.T) {
	err := Run(func() error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Run did not turn a panic into an error: %v", err)
	}
}

func TestScopeOwnership(t *testing.T) {
	err := Run(func() error {
		base := Live()
		s := NewScope()
		a := s.Ones([]int64{2}, Float32, CPU)
		b := s.Keep(s.MulScalar(a, 3))
		child := s.Child()
		c := child.Exp(a)
		if Live() != base+3 || s.Len() != 1 || child.Len() != 1 {
			t.Errorf("live %d (want %d), owned %d/%d", Live()-base, 3, s.Len(), child.Len())
		}
		child.Close()
		if !c.Freed() || a.Freed() {
			t.Error("child.Close freed the wrong tensors")
		}
		s.Own(b) // moved back in
		other := NewScope()
		d := other.Own(s.Keep(s.AddScalar(a, 1))) // moved from s to other
		s.Close()
		if !a.Freed() || !b.Freed() || d.Freed() {
			t.Error("s.Close freed the wrong tensors")
		}
		other.Close()
		if Live() != base {
			t.Errorf("live tensors %d after closing everything, want %d", Live(), base)
		}
		// A child's failure is the parent's failure.
		p := NewScope()
		defer p.Close()
		p.Child().Exp(nil)
		if !errors.Is(p.Err(), ErrFreed) {
			t.Errorf("parent did not see the child's error: %v", p.Err())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

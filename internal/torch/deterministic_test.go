package torch

import (
	"math"
	"testing"
)

// TestDeterministicMode switches libtorch's deterministic mode on and off and
// checks that attention (restricted to the math backend while it is on) still
// matches the Go reference, causal and not.
func TestDeterministicMode(t *testing.T) {
	q, k, v := rnd(50, 1, 2, 6, 4), rnd(51, 1, 2, 6, 4), rnd(52, 1, 2, 6, 4)
	all := func(i, j int) bool { return true }
	causal := func(i, j int) bool { return j <= i }
	zero := func(i, j int) float64 { return 0 }
	d := 1 / math.Sqrt(4)
	for _, on := range []bool{true, false} {
		if err := SetDeterministic(on); err != nil {
			t.Fatalf("SetDeterministic(%v): %v", on, err)
		}
		if got := Deterministic(); got != on {
			t.Fatalf("Deterministic() = %v after SetDeterministic(%v)", got, on)
		}
		inTorch(t, func(s *Scope) {
			tq, tk, tv := s.fromND(q), s.fromND(k), s.fromND(v)
			expectND(t, "no_mask", s.Attention(tq, tk, tv, nil, false, 0), attentionRef(q, k, v, d, all, zero), 1e-5)
			expectND(t, "causal", s.Attention(tq, tk, tv, nil, true, 0), attentionRef(q, k, v, d, causal, zero), 1e-5)
		})
	}
}

// TestCUDAMemoryWithoutCUDA: the allocator statistics are reported as not
// available on the CPU, and on a CUDA device when none is usable.
func TestCUDAMemoryWithoutCUDA(t *testing.T) {
	if _, ok := CUDAMemory(CPU); ok {
		t.Error("CUDAMemory(CPU) reported statistics")
	}
	if err := ResetCUDAPeak(CPU); err != nil {
		t.Errorf("ResetCUDAPeak(CPU): %v", err)
	}
	if CUDAAvailable() {
		st, ok := CUDAMemory(CUDA(0))
		t.Logf("cuda:0 caching allocator: %+v (available %v)", st, ok)
		return
	}
	if st, ok := CUDAMemory(CUDA(0)); ok {
		t.Errorf("CUDAMemory(cuda:0) without CUDA reported %+v", st)
	}
}

package torch

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// rss returns the resident set size in bytes after returning free Go heap to
// the OS, so that what remains is live memory (Go and C).
func rss(t *testing.T) int64 {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// leakStep runs 20 ops: creation, arithmetic, views, reductions, a backward,
// a gradient read, in-place updates and zeroing, the pattern of a train step.
func leakStep(s *Scope, w *Tensor) error {
	x := s.FromFloat32([]float32{1, 2, 3, 4, 5, 6, 7, 8}, 2, 4)     // 1
	h := s.Silu(s.Linear(x, w, nil))                                // 3
	h = s.Softmax(s.Transpose(s.View(h, 2, 2, 2), 1, 2), -1)        // 6
	l := s.Mean(s.Add(s.Sum(h), s.Norm(s.Narrow(x, 1, 0, 2))))      // 11
	l = s.MulScalar(s.Add(l, s.Mean(s.Cat([]*Tensor{x, x}, 0))), 1) // 14
	if err := s.Err(); err != nil {
		return err
	}
	if err := l.Backward(); err != nil { // 15
		return err
	}
	g := s.Grad(w)                            // 16
	if _, err := s.AllFinite(g); err != nil { // 18
		return err
	}
	upd := s.MulScalar(g, -1e-3)                                                      // 19
	if err := NoGrad(func() error { return w.CopyFrom(s.Add(w, upd)) }); err != nil { // 20
		return err
	}
	return w.ZeroGrad()
}

// TestNoLeak runs 200k ops after a warm-up of 160k (glibc's arenas and
// libtorch's caches settle within about 150k). Over the 200k, RSS may not grow
// by 1%, and the number of live tensor handles must come back to its start.
func TestNoLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("long leak test")
	}
	const warmup, steps, opsPerStep = 8_000, 10_000, 20
	err := Run(func() error {
		base := Live()
		root := NewScope()
		w := root.Randn([]int64{4, 4}, Float32, CPU)
		if err := w.SetRequiresGrad(true); err != nil {
			return err
		}
		var before int64
		for i := range warmup + steps {
			if i == warmup {
				before = rss(t)
			}
			s := NewScope()
			err := leakStep(s, w)
			s.Close()
			if err != nil {
				return err
			}
		}
		after := rss(t)
		root.Close()
		growth := float64(after-before) / float64(before)
		t.Logf("%d ops after warm-up: RSS %d -> %d KiB (%+.3f%%), live handles %d -> %d",
			steps*opsPerStep, before>>10, after>>10, 100*growth, base, Live())
		if growth > 0.01 {
			t.Errorf("RSS grew %.2f%% over %d ops after warm-up", 100*growth, steps*opsPerStep)
		}
		if Live() != base {
			t.Errorf("live handles %d, want %d", Live(), base)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package torch

import (
	"runtime"
	"testing"

	lib "github.com/sugarme/gotch/libtch"
)

// BenchmarkAdd measures the Go-side cost of one op: a tiny add through this
// package (checks, handle tracking, error check, freeing via the scope) against
// the bare libtch call plus its error check and free. The difference is mose's
// per-op overhead; README reports it.
//
//	go test -run='^$' -bench=Add -benchmem ./internal/torch/
func BenchmarkAdd(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	setup := NewScope()
	defer setup.Close()
	x := setup.Ones([]int64{1}, Float32, CPU)
	y := setup.Ones([]int64{1}, Float32, CPU)

	b.Run("libtch", func(b *testing.B) {
		var out [1]lib.Ctensor
		for b.Loop() {
			lib.AtgAdd(&out[0], x.c, y.c)
			if lib.GetAndResetLastErr() != nil {
				b.Fatal("add failed")
			}
			lib.AtFree(out[0])
		}
	})
	b.Run("mose", func(b *testing.B) {
		s := NewScope()
		n := 0
		for b.Loop() {
			s.Add(x, y)
			if n++; n == 1024 { // a step's worth of ops, then the scope frees them
				s.Close()
				n = 0
			}
		}
		s.Close()
		if err := s.Err(); err != nil {
			b.Fatal(err)
		}
	})
}

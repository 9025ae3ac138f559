// Command smoke is run by scripts/setup/setup.sh to prove that the prepared libtch
// links against the chosen libtorch and works: a 2x2 matmul, a sum, a backward,
// and a read of the gradient. It talks to libtch directly so that it checks the
// toolchain independently of mose's own tensor layer.
package main

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
)

const kindFloat = 6 // c10::ScalarType::Float

func lastErr(op string) error {
	if p := lib.GetAndResetLastErr(); p != nil {
		return fmt.Errorf("%s: libtorch error (message not decoded by smoke)", op)
	}
	return nil
}

func run() error {
	runtime.LockOSThread()
	data := []float32{1, 2, 3, 4}
	dims := []int64{2, 2}
	x := lib.AtTensorOfData(unsafe.Pointer(&data[0]), dims, 2, 4, kindFloat)
	if err := lastErr("tensor_of_data"); err != nil {
		return err
	}
	var out [1]lib.Ctensor
	lib.AtgSetRequiresGrad(&out[0], x, 1)
	if err := lastErr("set_requires_grad"); err != nil {
		return err
	}
	xg := out[0]
	lib.AtgMatmul(&out[0], xg, xg)
	if err := lastErr("matmul"); err != nil {
		return err
	}
	y := out[0]
	lib.AtgSum(&out[0], y, -1)
	if err := lastErr("sum"); err != nil {
		return err
	}
	s := out[0]
	lib.AtBackward(s, 0, 0)
	if err := lastErr("backward"); err != nil {
		return err
	}
	lib.AtgGrad(&out[0], xg)
	if err := lastErr("grad"); err != nil {
		return err
	}
	g := out[0]
	got := make([]float32, 4)
	lib.AtCopyData(g, unsafe.Pointer(&got[0]), 4, 4)
	// d/dX[i,j] of sum(X·X) = Σ_b X[j,b] + Σ_a X[a,i], computed in Go.
	want := make([]float32, 4)
	for i := 0; i < 2; i++ {
		for j := 0; j < 2; j++ {
			want[i*2+j] = data[j*2+0] + data[j*2+1] + data[0*2+i] + data[1*2+i]
		}
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("gradient mismatch: got %v, want %v", got, want)
		}
	}
	for _, t := range []lib.Ctensor{g, s, y, xg, x} {
		lib.AtFree(t)
	}
	fmt.Printf("smoke: libtorch OK (matmul + backward, grad %v, cuda available: %v)\n",
		got, lib.AtcCudaIsAvailable())
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "smoke:", err)
		os.Exit(1)
	}
}

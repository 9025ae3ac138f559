package torch

/*
#include <stdint.h>
// Defined in gotch's libtch (torch_api.cpp) but not wrapped in Go.
void at_manual_seed(int64_t);
void at_set_num_threads(int);
int at_get_num_threads();
// libtch's Go wrappers of these two read their C int result as a Go int
// (8 bytes), picking up garbage in the upper half; mose calls them directly.
int at_grad_set_enabled(int);
int at_device(void *);
*/
import "C"

import (
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
)

// ManualSeed seeds libtorch's default generators (CPU and CUDA).
func ManualSeed(seed int64) error {
	C.at_manual_seed(C.int64_t(seed))
	return lastError("manual_seed")
}

// SetThreads sets the number of threads libtorch uses for intra-op parallelism.
func SetThreads(n int) error {
	if n < 1 {
		return goErr("set_num_threads", "thread count %d < 1", n)
	}
	C.at_set_num_threads(C.int(n))
	return lastError("set_num_threads")
}

// Threads returns libtorch's intra-op thread count.
func Threads() int { return int(C.at_get_num_threads()) }

// CUDAAvailable reports whether libtorch can use a CUDA device.
func CUDAAvailable() bool { return lib.AtcCudaIsAvailable() }

// CUDADeviceCount returns the number of visible CUDA devices.
func CUDADeviceCount() int { return int(lib.AtcCudaDeviceCount()) }

// Synchronize waits for all work queued on a CUDA device; a no-op on CPU.
func Synchronize(dev Device) {
	if dev.IsCUDA() {
		lib.AtcSynchronize(int64(dev.c()))
	}
}

// setGradEnabled sets this thread's grad mode and returns the previous one.
func setGradEnabled(on bool) (prev bool, err error) {
	r := C.at_grad_set_enabled(C.int(b2i(on)))
	if err := lastError("grad_set_enabled"); err != nil {
		return false, err
	}
	return r == 1, nil
}

// deviceOf returns the device index libtorch reports for t (-1 for CPU).
func deviceOf(t *Tensor) Device {
	d := C.at_device(unsafe.Pointer(t.c))
	if d < 0 {
		return CPU
	}
	return Device(d + 1)
}

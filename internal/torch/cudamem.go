package torch

/*
#include "shim.h"
*/
import "C"

// CUDAMemStats are libtorch's CUDA caching-allocator statistics of one device,
// in bytes (what torch.cuda.memory_allocated, max_memory_allocated,
// memory_reserved and max_memory_reserved report). Peaks are since the process
// started or the last ResetCUDAPeak.
type CUDAMemStats struct {
	Allocated, PeakAllocated int64 // bytes held by live tensors
	Reserved, PeakReserved   int64 // bytes the caching allocator holds from the driver
}

// CUDAMemory returns dev's caching-allocator statistics. ok is false on the
// CPU, in a CPU build, and with libtorch 2.1 (which lacks the device-generic
// allocator interface internal/torch/cudamem.cpp uses).
func CUDAMemory(dev Device) (st CUDAMemStats, ok bool) {
	if !dev.IsCUDA() {
		return st, false
	}
	var a, pa, r, pr C.longlong
	if C.mose_cuda_mem_stats(C.int(dev.Index()), &a, &pa, &r, &pr) != 1 {
		return st, false
	}
	return CUDAMemStats{Allocated: int64(a), PeakAllocated: int64(pa), Reserved: int64(r), PeakReserved: int64(pr)}, true
}

// ResetCUDAPeak resets dev's peak statistics; a no-op on the CPU and in a CPU build.
func ResetCUDAPeak(dev Device) error {
	if !dev.IsCUDA() {
		return nil
	}
	return shimError("cuda_reset_peak", C.mose_cuda_reset_peak(C.int(dev.Index())))
}

package torch

/*
#cgo LDFLAGS: -ldl
int mose_cuda_mem_info(int device, long long *free_bytes, long long *total_bytes);
*/
import "C"

// CUDAMemInfo returns the free and total memory the CUDA driver reports for
// dev (cudaMemGetInfo: free counts what this process's caching allocator
// holds as used). ok is false on the CPU and when no CUDA runtime is loaded
// (a CPU build).
func CUDAMemInfo(dev Device) (free, total int64, ok bool) {
	if !dev.IsCUDA() {
		return 0, 0, false
	}
	var f, t C.longlong
	if C.mose_cuda_mem_info(C.int(dev.Index()), &f, &t) != 1 {
		return 0, 0, false
	}
	return int64(f), int64(t), true
}

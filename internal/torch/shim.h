// Declarations of mose's C++ shims (shim.cpp), callable from cgo.
#ifndef MOSE_SHIM_H
#define MOSE_SHIM_H
#ifdef __cplusplus
extern "C" {
#endif

char *mose_sdpa_nomask(void **out, void *q, void *k, void *v, int causal, double scale,
                       int scale_null);
char *mose_set_deterministic(int on);
int mose_deterministic(void);
// cudamem.cpp: libtorch's CUDA caching-allocator statistics.
int mose_cuda_mem_stats(int device, long long *allocated, long long *peak_allocated,
                        long long *reserved, long long *peak_reserved);
char *mose_cuda_reset_peak(int device);

#ifdef __cplusplus
}
#endif
#endif

// Declarations of mose's C++ shims (shim.cpp), callable from cgo.
#ifndef MOSE_SHIM_H
#define MOSE_SHIM_H
#ifdef __cplusplus
extern "C" {
#endif

char *mose_sdpa_nomask(void **out, void *q, void *k, void *v, int causal, double scale,
                       int scale_null);

#ifdef __cplusplus
}
#endif
#endif

// mose's C++ shims: the few libtorch calls libtch cannot express.
//
// Tensors cross as libtch handles (at::Tensor*). New results are allocated with
// `new at::Tensor`, exactly as libtch does, so Tensor.Free (at_free) releases
// them. Errors come back as a malloc'ed message (NULL on success).

#include "mose_abi.h" // must come first: sets _GLIBCXX_USE_CXX11_ABI to libtorch's

#include <ATen/Context.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/scaled_dot_product_attention.h>
#include <cstdlib>
#include <cstring>

#include <torch/version.h>

#include "shim.h"

static char *error_of(const std::exception &e) { return strdup(e.what()); }

// libtch's atg_scaled_dot_product_attention turns an absent mask into an
// undefined tensor inside a present optional, which libtorch 2.1 rejects
// ("attn_mask dtype ... nullptr (uninitialized)"). Passing nullopt keeps the
// fused CPU (flash) and CUDA (flash / memory-efficient) kernels reachable.
char *mose_sdpa_nomask(void **out, void *q, void *k, void *v, int causal, double scale,
                       int scale_null) {
  try {
    auto &Q = *static_cast<at::Tensor *>(q);
    auto &K = *static_cast<at::Tensor *>(k);
    auto &V = *static_cast<at::Tensor *>(v);
    c10::optional<double> sc = scale_null ? c10::nullopt : c10::optional<double>(scale);
    out[0] = new at::Tensor(at::scaled_dot_product_attention(Q, K, V, c10::nullopt, 0.0, causal != 0, sc));
    return nullptr;
  } catch (const std::exception &e) {
    return error_of(e);
  }
}

// Deterministic mode: libtorch's deterministic algorithms (an op without a
// deterministic implementation raises instead of running), and SDPA restricted
// to its math backend, whose backward has no atomics (the flash,
// memory-efficient and cuDNN attention backwards accumulate with atomics on
// CUDA). cuBLAS also needs CUBLAS_WORKSPACE_CONFIG=:4096:8 (or :16:8) in the
// environment before its first use; libtorch raises if it is missing.
char *mose_set_deterministic(int on) {
  try {
    auto &ctx = at::globalContext();
    ctx.setDeterministicAlgorithms(on != 0, /*warn_only=*/false);
    ctx.setSDPUseFlash(on == 0);
    ctx.setSDPUseMemEfficient(on == 0);
#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 3
    ctx.setSDPUseCuDNN(on == 0);
#endif
    return nullptr;
  } catch (const std::exception &e) {
    return error_of(e);
  }
}

int mose_deterministic(void) { return at::globalContext().deterministicAlgorithms() ? 1 : 0; }

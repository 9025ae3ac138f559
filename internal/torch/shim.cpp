// mose's C++ shims: the few libtorch calls libtch cannot express.
//
// Tensors cross as libtch handles (at::Tensor*). New results are allocated with
// `new at::Tensor`, exactly as libtch does, so Tensor.Free (at_free) releases
// them. Errors come back as a malloc'ed message (NULL on success).

#include "mose_abi.h" // must come first: sets _GLIBCXX_USE_CXX11_ABI to libtorch's

#include <ATen/core/Tensor.h>
#include <ATen/ops/scaled_dot_product_attention.h>
#include <cstdlib>
#include <cstring>

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

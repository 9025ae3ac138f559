// mose_qlinear: y = x·Ŵᵀ + b for a weight stored quantized, as an autograd
// function that saves the quantized parts, not Ŵ: the forward dequantizes Ŵ,
// multiplies and drops it; the backward dequantizes it again and returns the
// input's gradient only (torchao's LinearNF4 does the same). libtch has no
// custom autograd functions, hence this shim. The dequantization is the one of
// internal/quant (torchao's get_original_weight and int8 dequantize), op for
// op, so that Ŵ is bit for bit the one quant.Weight.Dequantize returns.
//
// Ŵ is written into scratch buffers kept across calls (one set per device
// and dtype, grown to the largest linear, freed by mose_qlinear_release):
// allocating and freeing a weight-sized Ŵ and its temporaries three times
// per linear and step fragments the C heap, whose retained free blocks then
// dominate a quantized CPU run's resident memory (docs/memory.md). The
// buffers are used under one lock, from the dequantization to the product
// that reads Ŵ, so two linears never share them at once.

#include "mose_abi.h" // must come first: sets _GLIBCXX_USE_CXX11_ABI to libtorch's

#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// kinds, as internal/torch's QuantKind.
constexpr int64_t kNF4 = 1;
constexpr int64_t kInt8 = 2;

// The scratch buffers: slot, device type, device index, dtype -> buffer.
std::mutex scratch_mu;
std::map<std::tuple<int, int, int, int>, at::Tensor> scratch_bufs;

// scratch returns n elements of the slot's buffer for dt on dev, growing it
// (the smaller one freed first). Call it with scratch_mu held.
at::Tensor scratch(int slot, int64_t n, at::ScalarType dt, const at::Device &dev) {
  at::Tensor &b = scratch_bufs[std::make_tuple(slot, static_cast<int>(dev.type()), static_cast<int>(dev.index()),
                                               static_cast<int>(dt))];
  if (!b.defined() || b.numel() < n) {
    b = at::Tensor();
    b = at::empty({n}, at::TensorOptions().dtype(dt).device(dev));
  }
  return b.narrow(0, 0, n);
}

// dequantize returns the (out, in) weight in dtype dt, in the scratch
// buffers (call it with scratch_mu held; the result is valid until the next
// call). The ops are those of internal/quant, written into the buffers:
//   nf4:  parts = data (N/2) uint8, scalers (N/64) int8, factor (N/16384), mean (), pairs (256,2);
//         buffers: the codes as int32 (2N bytes) and the values (N in dt), scaled in place
//   int8: parts = q (out,in) int8, scale (out,1) float32;
//         buffers: the product in float32 (4N bytes) and, unless dt is float32, its cast to dt (N)
at::Tensor dequantize(int64_t kind, const variable_list &p, int64_t out, int64_t in, at::ScalarType dt) {
  const int64_t n = out * in;
  const at::Device dev = p[0].device();
  if (kind == kNF4) {
    const int64_t nb = n / 64, groups = n / (64 * 256);
    at::Tensor idx = scratch(0, n / 2, at::kInt, dev);
    idx.copy_(p[0]);
    at::Tensor vals = scratch(1, n, dt, dev).view({n / 2, 2});
    at::index_select_out(vals, p[4], 0, idx);                                          // (N/2, 2)
    at::Tensor sc = at::div(p[1].view({groups, 256}), p[2].unsqueeze(-1));            // (G, 256)
    sc = at::add(sc.reshape({nb}), p[3]);                                            // (N/64)
    return vals.view({nb, 64}).mul_(sc.unsqueeze(-1)).view({out, in});
  }
  // q · scale in float32 (the codes, integers in [-128, 127], are exact in
  // any float dtype, so casting them to float32 directly equals casting via
  // the run dtype), then cast to the run dtype.
  at::Tensor prod = scratch(2, n, at::kFloat, dev).view({out, in});
  prod.copy_(p[0]);
  prod.mul_(p[1]);
  if (dt == at::kFloat) {
    return prod;
  }
  return scratch(1, n, dt, dev).view({out, in}).copy_(prod);
}

struct QLinear : public torch::autograd::Function<QLinear> {
  // x: (…, in) -> (…, out)
  // bias: empty, or the one bias tensor (an undefined tensor argument is not
  // allowed in an autograd function's inputs).
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x, int64_t kind, int64_t out, int64_t in,
                            int64_t dtype, const variable_list &parts, const variable_list &bias) {
    std::lock_guard<std::mutex> lock(scratch_mu);
    at::Tensor w = dequantize(kind, parts, out, in, static_cast<at::ScalarType>(dtype));
    ctx->save_for_backward(parts);
    ctx->saved_data["kind"] = kind;
    ctx->saved_data["out"] = out;
    ctx->saved_data["in"] = in;
    ctx->saved_data["dtype"] = dtype;
    ctx->saved_data["nbias"] = static_cast<int64_t>(bias.size());
    return bias.empty() ? at::linear(x, w) : at::linear(x, w, bias[0]);
  }

  // grad: (…, out) -> the gradient of x only: (…, in)
  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    variable_list parts = ctx->get_saved_variables();
    std::lock_guard<std::mutex> lock(scratch_mu);
    at::Tensor w = dequantize(ctx->saved_data["kind"].toInt(), parts, ctx->saved_data["out"].toInt(),
                              ctx->saved_data["in"].toInt(), static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt()));
    at::Tensor gx = grads[0].matmul(w);
    // one per forward argument, the tensors of the lists counted one by one
    variable_list out(5 + parts.size() + ctx->saved_data["nbias"].toInt());
    out[0] = gx;
    return out;
  }
};

} // namespace

// mose_qlinear_release frees the dequantization's scratch buffers (they are
// made again by the next quantized linear).
extern "C" void mose_qlinear_release() {
  std::lock_guard<std::mutex> lock(scratch_mu);
  scratch_bufs.clear();
}

extern "C" char *mose_qlinear(void **result, void *x, void *bias, int kind, void **parts, int nparts, long long out,
                              long long in, int dtype) {
  try {
    variable_list ps;
    ps.reserve(nparts);
    for (int i = 0; i < nparts; i++) {
      ps.push_back(*static_cast<at::Tensor *>(parts[i]));
    }
    variable_list b;
    if (bias != nullptr) {
      b.push_back(*static_cast<at::Tensor *>(bias));
    }
    result[0] = new at::Tensor(QLinear::apply(*static_cast<at::Tensor *>(x), (int64_t)kind, (int64_t)out, (int64_t)in,
                                              (int64_t)dtype, ps, b));
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}

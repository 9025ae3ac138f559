// mose_qlinear: y = x·Ŵᵀ + b for a weight stored quantized, as an autograd
// function that saves the quantized parts, not Ŵ: the forward dequantizes Ŵ,
// multiplies and drops it; the backward dequantizes it again and returns the
// input's gradient only (torchao's LinearNF4 does the same). libtch has no
// custom autograd functions, hence this shim. The dequantization is the one of
// internal/quant (torchao's get_original_weight and int8 dequantize), op for
// op, so that Ŵ is bit for bit the one quant.Weight.Dequantize returns.

#include "mose_abi.h" // must come first: sets _GLIBCXX_USE_CXX11_ABI to libtorch's

#include <cstring>
#include <exception>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// kinds, as internal/torch's QuantKind.
constexpr int64_t kNF4 = 1;
constexpr int64_t kInt8 = 2;

// dequantize returns the (out, in) weight in dtype dt.
//   nf4:  parts = data (N/2) uint8, scalers (N/64) int8, factor (N/16384), mean (), pairs (256,2)
//   int8: parts = q (out,in) int8, scale (out,1) float32
at::Tensor dequantize(int64_t kind, const variable_list &p, int64_t out, int64_t in, at::ScalarType dt) {
  if (kind == kNF4) {
    const int64_t n = out * in, nb = n / 64, groups = n / (64 * 256);
    at::Tensor vals = p[4].index_select(0, p[0].to(at::kInt));                         // (N/2, 2)
    at::Tensor sc = at::div(p[1].view({groups, 256}), p[2].unsqueeze(-1));            // (G, 256)
    sc = at::add(sc.reshape({nb}), p[3]);                                            // (N/64)
    return at::mul(vals.view({nb, 64}), sc.unsqueeze(-1)).view({out, in});
  }
  // q·scale in float32 (the codes, |q| <= 128, are exact in any float dtype,
  // so this is torchao's q.to(dt) * scale, one pass fewer), then to dt.
  at::Tensor w = at::mul(p[0].to(at::kFloat), p[1]);
  return dt == at::kFloat ? w : w.to(dt);
}

struct QLinear : public torch::autograd::Function<QLinear> {
  // x: (…, in) -> (…, out)
  // bias: empty, or the one bias tensor (an undefined tensor argument is not
  // allowed in an autograd function's inputs).
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x, int64_t kind, int64_t out, int64_t in,
                            int64_t dtype, const variable_list &parts, const variable_list &bias) {
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

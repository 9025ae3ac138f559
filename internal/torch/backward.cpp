// mose_backward: torch::autograd::backward over several roots with given
// gradients, which libtch's at_backward (one scalar root) cannot express.
// Activation checkpointing needs it: a recomputed layer's output is
// backpropagated with the gradient the layer above computed.

#include "mose_abi.h" // must come first: sets _GLIBCXX_USE_CXX11_ABI to libtorch's

#include <cstring>
#include <exception>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/csrc/autograd/autograd.h>

extern "C" char *mose_backward(void **roots, void **grads, int n) {
  try {
    std::vector<at::Tensor> ts, gs;
    ts.reserve(n);
    gs.reserve(n);
    for (int i = 0; i < n; i++) {
      ts.push_back(*static_cast<at::Tensor *>(roots[i]));
      gs.push_back(grads[i] != nullptr ? *static_cast<at::Tensor *>(grads[i]) : at::Tensor());
    }
    torch::autograd::backward(ts, gs, /*retain_graph=*/false, /*create_graph=*/false);
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}

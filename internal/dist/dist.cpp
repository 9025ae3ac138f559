// mose's c10d shim: libtorch's own distributed engine (TCPStore rendezvous,
// ProcessGroupGloo on CPU, ProcessGroupNCCL on CUDA) behind a few C calls.
//
// libtorch ships the c10d headers and implementation but not gloo's headers;
// scripts/setup/setup.sh unpacks Debian's libgloo-dev headers into the cache
// (declarations only: the implementation is the one inside libtorch_cpu.so).
// NCCL is compiled in only for CUDA builds that found nccl.h (setup defines
// MOSE_CUDA in mose_abi.h and links nccl.h into .build/include).
//
// Errors come back as a malloc'ed message (NULL on success), as in
// internal/torch/shim.cpp.

#include "mose_abi.h" // must come first: sets _GLIBCXX_USE_CXX11_ABI to libtorch's

#define USE_C10D_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#if defined(MOSE_CUDA) && __has_include(<nccl.h>)
#define USE_C10D_NCCL 1
#define MOSE_HAVE_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <c10/util/Logging.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "dist.h"

namespace {

char *error_of(const std::exception &e) { return strdup(e.what()); }
char *error_of(const std::string &s) { return strdup(s.c_str()); }

// group is what a mose_pg_new handle points to.
struct group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  std::chrono::milliseconds timeout;
};

// wait waits for work, bounded by the group's timeout; a collective that a
// dead peer never completes throws instead of hanging.
void wait(group *g, const c10::intrusive_ptr<c10d::Work> &work) {
  if (!work->wait(g->timeout)) {
    throw std::runtime_error("collective did not complete");
  }
}

// gloo_device is the network device Gloo binds: the interface named by
// GLOO_SOCKET_IFNAME (as PyTorch reads it); on a loopback master (one machine)
// the loopback interface; else the one this host's name resolves to.
std::shared_ptr<gloo::transport::Device> gloo_device(const char *master) {
  if (const char *ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  }
  std::string m(master);
  if (m == "localhost" || m.rfind("127.", 0) == 0 || m == "::1") {
    return c10d::ProcessGroupGloo::createDeviceForHostname(m);
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

} // namespace

char *mose_pg_new(void **out, const char *host, int port, int rank, int world, int backend,
                  int device, long timeout_ms) {
  try {
    if (world < 1 || rank < 0 || rank >= world) {
      return error_of("rank " + std::to_string(rank) + " is not in [0, " + std::to_string(world) + ")");
    }
    if (port < 1 || port > 65535) {
      return error_of("port " + std::to_string(port) + " is not in [1, 65535]");
    }
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(port);
    so.isServer = rank == 0;
    so.numWorkers = world;
    so.waitWorkers = true;
    so.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), so);
    auto g = new group{store, {}, timeout};
    try {
      if (backend == 0) {
        auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
        opts->devices.push_back(gloo_device(host));
        opts->threads = 2;
        g->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, opts);
      } else {
#ifdef MOSE_HAVE_NCCL
        auto opts = c10d::ProcessGroupNCCL::Options::create();
        opts->timeout = timeout;
        g->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, opts);
        (void)device;
#else
        delete g;
        return error_of("this mose build has no NCCL (a CPU build, or nccl.h was not found at setup)");
#endif
      }
    } catch (...) {
      delete g;
      throw;
    }
    *out = g;
    return nullptr;
  } catch (const std::exception &e) {
    return error_of(e);
  }
}

char *mose_pg_allreduce_sum(void *pg, void *tensor) {
  try {
    auto g = static_cast<group *>(pg);
    std::vector<at::Tensor> ts{*static_cast<at::Tensor *>(tensor)};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    o.timeout = g->timeout;
    wait(g, g->backend->allreduce(ts, o));
    return nullptr;
  } catch (const std::exception &e) {
    return error_of(e);
  }
}

char *mose_pg_broadcast(void *pg, void *tensor, int root) {
  try {
    auto g = static_cast<group *>(pg);
    std::vector<at::Tensor> ts{*static_cast<at::Tensor *>(tensor)};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = g->timeout;
    wait(g, g->backend->broadcast(ts, o));
    return nullptr;
  } catch (const std::exception &e) {
    return error_of(e);
  }
}

char *mose_pg_barrier(void *pg) {
  try {
    auto g = static_cast<group *>(pg);
    c10d::BarrierOptions o;
    o.timeout = g->timeout;
    wait(g, g->backend->barrier(o));
    return nullptr;
  } catch (const std::exception &e) {
    return error_of(e);
  }
}

void mose_pg_free(void *pg) {
  try {
    delete static_cast<group *>(pg);
  } catch (...) {
  }
}

void mose_quiet_c10d_logs(void) {
  const char *user = std::getenv("TORCH_CPP_LOG_LEVEL");
  if (user != nullptr && *user != '\0') {
    return; // the user asked for libtorch's own logs: keep them
  }
  FLAGS_caffe2_log_level = 3; // FATAL: c10d's retries and warnings stay unprinted
}

int mose_nccl_available(void) {
#ifdef MOSE_HAVE_NCCL
  return 1;
#else
  return 0;
#endif
}

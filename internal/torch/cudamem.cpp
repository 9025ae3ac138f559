// libtorch's CUDA caching-allocator statistics (torch.cuda.max_memory_allocated
// and friends), through the device-generic allocator interface of libtorch
// 2.9+ (c10/core/CachingDeviceAllocator.h): it needs no CUDA header, so this
// file compiles in a CPU build too, where it reports "not available" at run
// time (no CUDA allocator is registered). libtorch 2.1 has no such interface:
// there the statistics are not available.

#include "mose_abi.h" // must come first: sets _GLIBCXX_USE_CXX11_ABI to libtorch's

#include <cstdlib>
#include <cstring>
#include <exception>
#include <torch/version.h>

#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 9
#define MOSE_DEVICE_ALLOCATOR 1
#include <c10/core/CachingDeviceAllocator.h>
#else
#define MOSE_DEVICE_ALLOCATOR 0
#endif

#include "shim.h"

// mose_cuda_mem_stats fills the current and peak bytes allocated to tensors and
// reserved by the caching allocator on CUDA device `device`, and returns 1; it
// returns 0 when libtorch cannot report them (libtorch 2.1, a CPU build, no
// CUDA allocator registered).
int mose_cuda_mem_stats(int device, long long *allocated, long long *peak_allocated,
                        long long *reserved, long long *peak_reserved) {
  *allocated = *peak_allocated = *reserved = *peak_reserved = 0;
#if MOSE_DEVICE_ALLOCATOR
  try {
    auto *alloc = c10::GetAllocator(c10::DeviceType::CUDA);
    auto *dev = dynamic_cast<c10::DeviceAllocator *>(alloc);
    if (dev == nullptr) return 0;
    auto st = dev->getDeviceStats(static_cast<c10::DeviceIndex>(device));
    // Index 0 is StatType::AGGREGATE (all pools).
    *allocated = st.allocated_bytes[0].current;
    *peak_allocated = st.allocated_bytes[0].peak;
    *reserved = st.reserved_bytes[0].current;
    *peak_reserved = st.reserved_bytes[0].peak;
    return 1;
  } catch (const std::exception &) {
    return 0;
  }
#else
  (void)device;
  return 0;
#endif
}

// mose_cuda_reset_peak resets the peak statistics of CUDA device `device` (a
// no-op where the statistics are not available).
char *mose_cuda_reset_peak(int device) {
#if MOSE_DEVICE_ALLOCATOR
  try {
    auto *dev = dynamic_cast<c10::DeviceAllocator *>(c10::GetAllocator(c10::DeviceType::CUDA));
    if (dev != nullptr) dev->resetPeakStats(static_cast<c10::DeviceIndex>(device));
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
#else
  (void)device;
#endif
  return nullptr;
}

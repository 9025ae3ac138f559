// mose_cuda_mem_info: the CUDA driver's free and total memory of a device
// (cudaMemGetInfo), found at run time in the CUDA runtime libtorch_cuda has
// loaded, so that no CUDA header or link flag is needed and a CPU build
// simply reports "not available".

#include <dlfcn.h>

extern "C" int mose_cuda_mem_info(int device, long long *free_bytes, long long *total_bytes) {
  *free_bytes = *total_bytes = 0;
  typedef int (*get_device_fn)(int *);
  typedef int (*set_device_fn)(int);
  typedef int (*mem_info_fn)(size_t *, size_t *);
  auto get_device = reinterpret_cast<get_device_fn>(dlsym(RTLD_DEFAULT, "cudaGetDevice"));
  auto set_device = reinterpret_cast<set_device_fn>(dlsym(RTLD_DEFAULT, "cudaSetDevice"));
  auto mem_info = reinterpret_cast<mem_info_fn>(dlsym(RTLD_DEFAULT, "cudaMemGetInfo"));
  if (get_device == nullptr || set_device == nullptr || mem_info == nullptr) return 0;
  int prev = 0;
  if (get_device(&prev) != 0) return 0;
  if (prev != device && set_device(device) != 0) return 0;
  size_t f = 0, t = 0;
  int rc = mem_info(&f, &t);
  if (prev != device) set_device(prev);
  if (rc != 0) return 0;
  *free_bytes = static_cast<long long>(f);
  *total_bytes = static_cast<long long>(t);
  return 1;
}

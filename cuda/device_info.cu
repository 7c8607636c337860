// Queries the CUDA runtime for devices; with static cudart this works (and reports none) on
// machines without a driver.
#include <cuda_runtime.h>

#include "device_info.h"

namespace cmsae::cuda {

DeviceInfo query_devices() {
  DeviceInfo info;
  cudaRuntimeGetVersion(&info.runtime_version);
  cudaDriverGetVersion(&info.driver_version);
  cudaError_t st = cudaGetDeviceCount(&info.device_count);
  info.status = static_cast<int>(st);
  if (st != cudaSuccess) {
    info.device_count = 0;
    info.message = std::string("cudaGetDeviceCount: ") + cudaGetErrorName(st) + ": " + cudaGetErrorString(st);
    cudaGetLastError();
    return info;
  }
  info.available = info.device_count > 0;
  if (info.available) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) info.name = prop.name;
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
      info.free_memory = static_cast<double>(free_b);
      info.total_memory = static_cast<double>(total_b);
    } else {
      cudaGetLastError();
    }
  } else {
    info.message = "no CUDA device found";
  }
  return info;
}

}  // namespace cmsae::cuda

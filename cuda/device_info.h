// CUDA runtime/device discovery, callable from plain C++ (no CUDA headers leak out of cuda/).
#pragma once
#include <string>

namespace cmsae::cuda {

struct DeviceInfo {
  bool available = false;  // at least one usable device
  int status = 0;          // cudaError_t of cudaGetDeviceCount
  int device_count = 0;
  int runtime_version = 0;
  int driver_version = 0;
  std::string name;     // device 0
  double free_memory = 0, total_memory = 0;  // bytes on device 0
  std::string message;  // error text when not available
};

DeviceInfo query_devices();

}  // namespace cmsae::cuda

// Factory of the CUDA Top-K SAE (cuda/sae_device.cu), callable from plain C++.
#pragma once
#include <memory>

#include "../native/sae/backend.h"

namespace cmsae::cuda {

// Throws ERR_CUDA_UNAVAILABLE when no device can be used.
std::unique_ptr<SaeBackend> create_device_sae(int d, int m, int k, DevicePrecision precision);
std::unique_ptr<DeviceRows> create_device_rows(long rows, int d);

}  // namespace cmsae::cuda

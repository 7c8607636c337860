// Factory of the CUDA co-moment accumulator (cuda/corr_device.cu), callable from plain C++.
#pragma once
#include <memory>

#include "../native/corr/device_corr.h"

namespace cmsae::cuda {

std::unique_ptr<DeviceCorr> create_device_corr(int mA, int mB);

}  // namespace cmsae::cuda

// Factory of the CUDA assignment passes (cuda/lap_device.cu), callable from plain C++.
#pragma once
#include <memory>

#include "../native/lap/device_lap.h"

namespace cmsae::cuda {

std::unique_ptr<DeviceLap> create_device_lap();

}  // namespace cmsae::cuda

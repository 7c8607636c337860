// CPU emulation of the CUDA backend's interfaces, for testing without a GPU (CMSAE_EMULATE_CUDA=1).
#pragma once
#include <memory>

#include "../corr/device_corr.h"
#include "../lap/device_lap.h"
#include "../sae/backend.h"

namespace cmsae {

// Registers emulated the device SAE backend / DeviceRows / DeviceCorr / DeviceLap factories (replacing the CUDA ones).
void register_emulated_devices();

// The factories, one file each (emulated_sae.cc, emulated_corr.cc, emulated_lap.cc).
std::unique_ptr<SaeBackend> make_emulated_sae(int d, int m, int k, DevicePrecision precision);
std::unique_ptr<DeviceRows> make_emulated_rows(long rows, int d);
std::unique_ptr<DeviceCorr> make_emulated_corr(int mA, int mB);
std::unique_ptr<DeviceLap> make_emulated_lap();

}  // namespace cmsae

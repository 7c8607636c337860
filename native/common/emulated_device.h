// CPU emulation of the CUDA backend's interfaces, for testing without a GPU (CMSAE_EMULATE_CUDA=1).
#pragma once

namespace cmsae {

// Registers emulated DeviceSae / DeviceRows / DeviceCorr / DeviceLap factories (replacing the CUDA ones).
void register_emulated_devices();

}  // namespace cmsae

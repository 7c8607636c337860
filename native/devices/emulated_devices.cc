// A CPU emulation of the device interfaces (DeviceSae, DeviceRows, DeviceCorr, DeviceLap), switched on with
// CMSAE_EMULATE_CUDA=1 when the addon loads. It exists to test, on machines without a GPU, everything the
// CUDA backend relies on around its kernels: the host mirror in SaeModel, the resident-rows path, the
// bindings, the TypeScript device selection and the trainer. The "device" arrays are host vectors and the
// "kernels" are the CPU engine's functions, so results equal the CPU engine's.
#include "emulated_devices.h"

#include "../corr/device_corr.h"
#include "../lap/device_lap.h"
#include "../sae/backend.h"

namespace cmsae {

void register_emulated_devices() {
  set_device_sae_factory(&make_emulated_sae, &make_emulated_rows);
  set_device_corr_factory(&make_emulated_corr);
  set_device_lap_factory(&make_emulated_lap);
}

}  // namespace cmsae

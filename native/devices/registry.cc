// The registry of the device factories (the device SAE backend + DeviceRows, DeviceCorr, DeviceLap): set by the addon when it
// was built with CUDA (or by the CPU emulation); empty otherwise.
#include <atomic>

#include "../corr/device_corr.h"
#include "../lap/device_lap.h"
#include "../sae/backend.h"

namespace cmsae {
namespace {
std::atomic<DeviceSaeFactory> g_sae{nullptr};
std::atomic<DeviceRowsFactory> g_rows{nullptr};
std::atomic<DeviceCorrFactory> g_corr{nullptr};
std::atomic<DeviceLapFactory> g_lap{nullptr};
}  // namespace

void set_device_sae_factory(DeviceSaeFactory f, DeviceRowsFactory rows) {
  g_sae.store(f);
  g_rows.store(rows);
}
DeviceSaeFactory device_sae_factory() { return g_sae.load(); }
DeviceRowsFactory device_rows_factory() { return g_rows.load(); }

void set_device_corr_factory(DeviceCorrFactory f) { g_corr.store(f); }
DeviceCorrFactory device_corr_factory() { return g_corr.load(); }

void set_device_lap_factory(DeviceLapFactory f) { g_lap.store(f); }
DeviceLapFactory device_lap_factory() { return g_lap.load(); }

}  // namespace cmsae

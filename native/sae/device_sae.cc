// The registry of the CUDA backend's factory (set by the addon when it was built with CUDA).
#include "device_sae.h"

#include <atomic>

namespace cmsae {
namespace {
std::atomic<DeviceSaeFactory> g_factory{nullptr};
std::atomic<DeviceRowsFactory> g_rows{nullptr};
}  // namespace

void set_device_sae_factory(DeviceSaeFactory f, DeviceRowsFactory rows) {
  g_factory.store(f);
  g_rows.store(rows);
}
DeviceSaeFactory device_sae_factory() { return g_factory.load(); }
DeviceRowsFactory device_rows_factory() { return g_rows.load(); }

}  // namespace cmsae

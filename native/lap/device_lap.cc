// The registry of the CUDA assignment passes' factory (set by the addon when it was built with CUDA).
#include "device_lap.h"

#include <atomic>

namespace cmsae {
namespace {
std::atomic<DeviceLapFactory> g_factory{nullptr};
}  // namespace

void set_device_lap_factory(DeviceLapFactory f) { g_factory.store(f); }
DeviceLapFactory device_lap_factory() { return g_factory.load(); }

}  // namespace cmsae

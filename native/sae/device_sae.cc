// The registry of the CUDA backend's factory (set by the addon when it was built with CUDA).
#include "device_sae.h"

#include <atomic>

namespace cmsae {
namespace {
std::atomic<DeviceSaeFactory> g_factory{nullptr};
}  // namespace

void set_device_sae_factory(DeviceSaeFactory f) { g_factory.store(f); }
DeviceSaeFactory device_sae_factory() { return g_factory.load(); }

}  // namespace cmsae

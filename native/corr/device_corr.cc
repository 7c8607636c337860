// The registry of the CUDA correlation factory (set by the addon when it was built with CUDA).
#include "device_corr.h"

#include <atomic>

namespace cmsae {
namespace {
std::atomic<DeviceCorrFactory> g_factory{nullptr};
}  // namespace

void set_device_corr_factory(DeviceCorrFactory f) { g_factory.store(f); }
DeviceCorrFactory device_corr_factory() { return g_factory.load(); }

}  // namespace cmsae

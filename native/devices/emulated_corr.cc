// The CPU emulation of DeviceCorr (CMSAE_EMULATE_CUDA=1; see emulated_devices.h): a plain co-moment sum.
#include <algorithm>
#include <vector>

#include "../corr/device_corr.h"
#include "emulated_devices.h"

namespace cmsae {
namespace {

class EmulatedCorr final : public DeviceCorr {
 public:
  EmulatedCorr(int mA, int mB) : mB_(mB), S_(static_cast<size_t>(mA) * mB, 0.0) {}
  void add(const int32_t* ai, const float* av, int kA, const int32_t* bi, const float* bv, int kB, long rows) override {
    for (long r = 0; r < rows; ++r)
      for (int s = 0; s < kA; ++s) {
        if (av[r * kA + s] == 0.f) continue;
        for (int t = 0; t < kB; ++t)
          if (bv[r * kB + t] != 0.f)
            S_[static_cast<size_t>(ai[r * kA + s]) * mB_ + bi[r * kB + t]] += static_cast<double>(av[r * kA + s]) * bv[r * kB + t];
      }
  }
  void drain(double* S_host) override {
    for (size_t q = 0; q < S_.size(); ++q) S_host[q] += S_[q];
    std::fill(S_.begin(), S_.end(), 0.0);
  }

 private:
  int mB_;
  std::vector<double> S_;
};

}  // namespace

std::unique_ptr<DeviceCorr> make_emulated_corr(int mA, int mB) { return std::make_unique<EmulatedCorr>(mA, mB); }

}  // namespace cmsae

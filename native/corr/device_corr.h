// The device (CUDA) half of the co-moment accumulation S_ij = sum_n a_i b_j: CorrAccumulator keeps the
// per-latent moments on the host (cheap) and hands the pair products to a DeviceCorr, whose float64 S is
// drained into the host S before anything reads it. Implemented in cuda/corr_device.cu.
#pragma once
#include <cstdint>
#include <memory>

namespace cmsae {

class DeviceCorr {
 public:
  virtual ~DeviceCorr() = default;
  // Validated rows of codes (A: [rows, kA], B: [rows, kB]; value 0 = inactive).
  virtual void add(const int32_t* ai, const float* av, int kA, const int32_t* bi, const float* bv, int kB, long rows) = 0;
  // S_host[mA, mB] += S_device; S_device = 0.
  virtual void drain(double* S_host) = 0;
};

using DeviceCorrFactory = std::unique_ptr<DeviceCorr> (*)(int mA, int mB);
void set_device_corr_factory(DeviceCorrFactory f);
DeviceCorrFactory device_corr_factory();

}  // namespace cmsae

// The CPU emulation of the device SAE backend and DeviceRows (CMSAE_EMULATE_CUDA=1; see emulated_devices.h).
#include <cstring>
#include <vector>

#include "../common/errors.h"
#include "../sae/cpu_backend.h"
#include "emulated_devices.h"

namespace cmsae {
namespace {

class EmulatedRows final : public DeviceRows {
 public:
  EmulatedRows(long rows, int d) : rows_(rows), d_(d), data_(static_cast<size_t>(rows) * d) {}
  long rows() const override { return rows_; }
  int dim() const override { return d_; }
  void upload(long r0, const float* x, long n) override {
    if (r0 < 0 || n < 0 || r0 + n > rows_) fail("ERR_RANGE", "rows outside the resident rows");
    std::memcpy(data_.data() + static_cast<size_t>(r0) * d_, x, sizeof(float) * n * d_);
  }
  const float* device_data() const override { return data_.data(); }

 private:
  long rows_;
  int d_;
  std::vector<float> data_;
};

}  // namespace

// The emulated device SAE is the CPU engine on arrays of its own, behind the device-shaped upload/download contract.
std::unique_ptr<SaeBackend> make_emulated_sae(int d, int m, int k, DevicePrecision) {
  return std::make_unique<CpuBackend>(nullptr, d, m, k);
}
std::unique_ptr<DeviceRows> make_emulated_rows(long rows, int d) { return std::make_unique<EmulatedRows>(rows, d); }

}  // namespace cmsae

// Embedding rows resident on the CUDA device (a training split): DeviceRows of native/sae/backend.h.
#include <cuda_runtime.h>

#include <string>

#include "../native/common/errors.h"
#include "../native/sae/backend.h"
#include "cuda_check.h"
#include "device_info.h"
#include "sae_device.h"

namespace cmsae::cuda {
namespace {

class CudaRows final : public DeviceRows {
 public:
  CudaRows(long rows, int d) : rows_(rows), d_(d) { buf_.alloc(static_cast<size_t>(rows) * d); }
  long rows() const override { return rows_; }
  int dim() const override { return d_; }
  void upload(long r0, const float* x, long n) override {
    if (r0 < 0 || n < 0 || r0 + n > rows_) fail("ERR_RANGE", "rows [" + std::to_string(r0) + ", " + std::to_string(r0 + n) + ") are outside the " + std::to_string(rows_) + " resident rows");
    CMSAE_CUDA(cudaMemcpy(buf_.p + static_cast<size_t>(r0) * d_, x, sizeof(float) * n * d_, cudaMemcpyHostToDevice));
  }
  const float* device_data() const override { return buf_.p; }

 private:
  long rows_;
  int d_;
  DeviceBuffer<float> buf_;
};

}  // namespace

std::unique_ptr<DeviceRows> create_device_rows(long rows, int d) {
  const DeviceInfo info = query_devices();
  if (!info.available) fail("ERR_CUDA_UNAVAILABLE", "resident rows need a CUDA device (" + info.message + ")");
  return std::make_unique<CudaRows>(rows, d);
}

}  // namespace cmsae::cuda

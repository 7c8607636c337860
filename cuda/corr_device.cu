// CUDA co-moments S_ij += a_i b_j over paired sparse code rows (float64 accumulators; each product of two
// floats is exact in float64, so only the order of the float64 additions differs from the CPU engine). CPU
// reference: CorrAccumulator::flush (native/corr/corr_accumulator.cc).
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../native/common/errors.h"
#include "corr_device.h"
#include "cuda_check.h"
#include "device_info.h"

namespace cmsae::cuda {
namespace {

// One thread per (row, A slot): S[ia, ib] += va * vb for every active B slot of the row.
__global__ void comoments(const int32_t* __restrict__ ai, const float* __restrict__ av, int kA, const int32_t* __restrict__ bi,
                          const float* __restrict__ bv, int kB, long rows, int mB, double* __restrict__ S) {
  const long t = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (t >= rows * kA) return;
  const long r = t / kA;
  const float va = av[t];
  if (va == 0.f) return;
  double* row = S + static_cast<long>(ai[t]) * mB;
  for (int s = 0; s < kB; ++s) {
    const float vb = bv[r * kB + s];
    if (vb != 0.f) atomicAdd(row + bi[r * kB + s], static_cast<double>(va) * vb);
  }
}

class CudaCorr final : public DeviceCorr {
 public:
  CudaCorr(int mA, int mB) : mA_(mA), mB_(mB) {
    CMSAE_CUDA(cudaStreamCreate(&stream_));
    S_.alloc(static_cast<size_t>(mA) * mB);
    S_.zero(stream_);
    CMSAE_CUDA(cudaStreamSynchronize(stream_));
  }
  ~CudaCorr() override {
    if (stream_) cudaStreamDestroy(stream_);
  }
  void add(const int32_t* ai, const float* av, int kA, const int32_t* bi, const float* bv, int kB, long rows) override {
    const long chunk = std::max<long>(1, (1L << 24) / std::max(kA, kB));
    for (long r0 = 0; r0 < rows; r0 += chunk) {
      const long n = std::min(chunk, rows - r0);
      ai_.ensure(n * kA);
      av_.ensure(n * kA);
      bi_.ensure(n * kB);
      bv_.ensure(n * kB);
      ai_.upload(ai + r0 * kA, stream_, n * kA);
      av_.upload(av + r0 * kA, stream_, n * kA);
      bi_.upload(bi + r0 * kB, stream_, n * kB);
      bv_.upload(bv + r0 * kB, stream_, n * kB);
      const long threads = n * kA;
      comoments<<<(threads + 255) / 256, 256, 0, stream_>>>(ai_.p, av_.p, kA, bi_.p, bv_.p, kB, n, mB_, S_.p);
      CMSAE_CUDA(cudaGetLastError());
      CMSAE_CUDA(cudaStreamSynchronize(stream_));  // the host arrays may change after add() returns
    }
  }
  void drain(double* S_host) override {
    const long rows_per = std::max<long>(1, (1L << 22) / mB_);
    std::vector<double> buf(static_cast<size_t>(rows_per) * mB_);
    for (long i0 = 0; i0 < mA_; i0 += rows_per) {
      const long n = std::min<long>(rows_per, mA_ - i0);
      CMSAE_CUDA(cudaMemcpyAsync(buf.data(), S_.p + i0 * mB_, sizeof(double) * n * mB_, cudaMemcpyDeviceToHost, stream_));
      CMSAE_CUDA(cudaStreamSynchronize(stream_));
      double* dst = S_host + i0 * mB_;
      for (long q = 0; q < n * mB_; ++q) dst[q] += buf[q];
    }
    S_.zero(stream_);
    CMSAE_CUDA(cudaStreamSynchronize(stream_));
  }

 private:
  int mA_, mB_;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer<double> S_;
  DeviceBuffer<int32_t> ai_, bi_;
  DeviceBuffer<float> av_, bv_;
};

}  // namespace

std::unique_ptr<DeviceCorr> create_device_corr(int mA, int mB) {
  const DeviceInfo info = query_devices();
  if (!info.available)
    fail("ERR_CUDA_UNAVAILABLE", "device 'cuda' was requested but no CUDA device can be used (" + info.message + "): use device 'cpu' or 'auto'");
  return std::make_unique<CudaCorr>(mA, mB);
}

}  // namespace cmsae::cuda

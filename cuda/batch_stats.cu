// mean[c] = (1/rows) sum_r X[r, c], tv = sum_r sum_c (X[r, c] - mean[c])^2 per batch segment (float64); CPU reference: native/sae/batch_stats.cc column_stats.
// Column sums in fixed chunks of kColChunk rows and a fixed final order (deterministic; the order of the float64
// additions differs from the CPU's per-thread partials), and the gather that stages resident rows as the batch.
#include <cuda_runtime.h>

#include <cstdint>

#include "sae_ops.cuh"

namespace cmsae::cuda {
namespace {

// part[chunk, c] = sum over rows [r0 + chunk * kColChunk, ...) of (X[r, c] - shift[c]) (squared when sq); grid
// (ceil(d / 256), chunks). Fixed chunks and a fixed final order: deterministic.
__global__ void column_partials(const float* __restrict__ X, long r0, long rows, int d, const double* __restrict__ shift, bool sq,
                                double* __restrict__ part) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= d) return;
  const long a = r0 + static_cast<long>(blockIdx.y) * kColChunk, b = min(r0 + rows, a + kColChunk);
  const double sh = shift ? shift[c] : 0.0;
  double s = 0;
  for (long r = a; r < b; ++r) {
    const double e = X[r * d + c] - sh;
    s += sq ? e * e : e;
  }
  part[static_cast<long>(blockIdx.y) * d + c] = s;
}

// out[c] = scale * sum_chunk part[chunk, c] (+ out[c] when accumulate).
__global__ void column_finish(const double* __restrict__ part, int chunks, int d, double scale, bool accumulate, double* __restrict__ out) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= d) return;
  double s = 0;
  for (int q = 0; q < chunks; ++q) s += part[static_cast<long>(q) * d + c];
  out[c] = (accumulate ? out[c] : 0.0) + scale * s;
}

// out[r] = src[idx[r]] (one block per gathered row).
__global__ void gather_rows(const float* __restrict__ src, const int32_t* __restrict__ idx, int d, float* __restrict__ out) {
  const long r = blockIdx.x;
  const float* row = src + static_cast<long>(idx[r]) * d;
  for (int c = threadIdx.x; c < d; c += blockDim.x) out[r * d + c] = row[c];
}

}  // namespace

void launch_gather_rows(const float* src, const int32_t* idx, long rows, int d, float* out, cudaStream_t stream) {
  gather_rows<<<rows, kThreads, 0, stream>>>(src, idx, d, out);
}

void launch_column_partials(const float* X, long r0, long rows, int d, const double* shift, bool sq, int chunks, double* part,
                            cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(blocks_for(d)), static_cast<unsigned>(chunks));
  column_partials<<<grid, kThreads, 0, stream>>>(X, r0, rows, d, shift, sq, part);
}

void launch_column_finish(const double* part, int chunks, int d, double scale, bool accumulate, double* out,
                          cudaStream_t stream) {
  column_finish<<<blocks_for(d), kThreads, 0, stream>>>(part, chunks, d, scale, accumulate, out);
}

void launch_segment_variance(const float* X, long rows, int nseg, int d, DeviceBuffer<double>& part, double* mean, double* tv,
                             cudaStream_t stream) {
  const int chunks = static_cast<int>((rows + kColChunk - 1) / kColChunk);
  part.ensure(static_cast<size_t>(chunks) * d);
  for (int s = 0; s < nseg; ++s) {
    launch_column_partials(X, s * rows, rows, d, nullptr, false, chunks, part.p, stream);
    launch_column_finish(part.p, chunks, d, 1.0 / static_cast<double>(rows), false, mean, stream);
    launch_column_partials(X, s * rows, rows, d, mean, true, chunks, part.p, stream);
    launch_column_finish(part.p, chunks, d, 1.0, false, tv + static_cast<size_t>(s) * d, stream);
  }
}

}  // namespace cmsae::cuda

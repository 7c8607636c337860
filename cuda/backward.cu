// g_dec[j] = sum val G_r, g_enc[j] = sum dval (x_r - b_dec), g_benc[j] = sum dval, g_bdec = sum_r G_r - sum_j g_benc[j] W_enc[j]; CPU reference: native/sae/backward.cc sparse_backward.
// Also the decoder-gradient projection (project_decoder_grads, same file) and the gradients' square norm
// (SparseGrads::sum_squares). Entries are grouped by latent with a stable CUB radix sort (the CPU: a counting
// sort, same order); the device takes the projection's dot and g_bdec's encoder part in float64 (the CPU in float32).
#include <cuda_runtime.h>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include <algorithm>

#include "block_reduce.cuh"
#include "sae_ops.cuh"

namespace cmsae::cuda {
namespace {

// Latent j's gradient rows from its sorted entries e in [off[j], off[j+1]) (p = pos[e], r = p / k):
// g_dec[j] = sum val_p G_r; g_enc[j] = sum dval_p x_r - (sum dval_p) b_dec; g_benc[j] = sum dval_p.
__global__ void latent_grads(const int* __restrict__ off, const int* __restrict__ pos, const float* __restrict__ val,
                             const float* __restrict__ dval, const float* __restrict__ G, const float* __restrict__ X,
                             const float* __restrict__ b_dec, int d, int k, float* __restrict__ g_dec,
                             float* __restrict__ g_enc, float* __restrict__ g_benc) {
  const int j = blockIdx.x;
  const int e0 = off[j], e1 = off[j + 1];
  float dsum = 0.f;
  for (int e = e0; e < e1; ++e) dsum += dval[pos[e]];
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float gd = 0.f, ge = 0.f;
    for (int e = e0; e < e1; ++e) {
      const int p = pos[e];
      const long r = p / k;
      gd = fmaf(val[p], G[r * d + c], gd);
      ge = fmaf(dval[p], X[r * d + c], ge);
    }
    ge = fmaf(-dsum, b_dec[c], ge);
    g_dec[static_cast<long>(j) * d + c] = gd;
    g_enc[static_cast<long>(j) * d + c] = ge;
  }
  if (threadIdx.x == 0) g_benc[j] = dsum;
}

// part[chunk, c] = sum over latents j in the chunk of g_benc[j] W_enc[j, c].
__global__ void encoder_bias_partials(const float* __restrict__ g_benc, const float* __restrict__ W_enc, int m, int d,
                                      double* __restrict__ part) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= d) return;
  const int a = blockIdx.y * kColChunk, b = min(m, a + kColChunk);
  double s = 0;
  for (int j = a; j < b; ++j) s += static_cast<double>(g_benc[j]) * W_enc[static_cast<long>(j) * d + c];
  part[static_cast<long>(blockIdx.y) * d + c] = s;
}

// out[i] = float(a[i]).
__global__ void to_float(const double* __restrict__ a, int n, float* __restrict__ out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = static_cast<float>(a[i]);
}

// g_dec[j] -= (g_dec[j] . W_dec[j]) W_dec[j] (one block per latent).
__global__ void project_rows(const float* __restrict__ W, float* __restrict__ g, int d) {
  const long j = blockIdx.x;
  double dot = 0;
  for (int c = threadIdx.x; c < d; c += blockDim.x) dot += static_cast<double>(g[j * d + c]) * W[j * d + c];
  const float f = static_cast<float>(block_sum(dot));
  for (int c = threadIdx.x; c < d; c += blockDim.x) g[j * d + c] = fmaf(-f, W[j * d + c], g[j * d + c]);
}

// part[block] = sum of squares of a[0..n) over the block's grid-stride share (fixed grid: deterministic).
__global__ void sum_squares(const float* __restrict__ a, long n, double* __restrict__ part) {
  double s = 0;
  for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < n; i += static_cast<long>(gridDim.x) * blockDim.x)
    s += static_cast<double>(a[i]) * a[i];
  s = block_sum(s);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

}  // namespace

void launch_sort_by_latent(const int* keys, const int* pos, long n, int m, int* count, int* keys_sorted, int* pos_sorted,
                           int* off, DeviceBuffer<unsigned char>& sort_temp, DeviceBuffer<unsigned char>& scan_temp,
                           cudaStream_t stream) {
  int bits = 1;
  while ((1L << bits) <= m) ++bits;
  size_t temp_bytes = 0;
  CMSAE_CUDA(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys, keys_sorted, pos, pos_sorted, n, 0, bits, stream));
  sort_temp.ensure(temp_bytes);
  CMSAE_CUDA(cub::DeviceRadixSort::SortPairs(sort_temp.p, temp_bytes, keys, keys_sorted, pos, pos_sorted, n, 0, bits, stream));
  // offsets = exclusive scan of the per-latent counts (count[m] is 0).
  size_t scan_bytes = 0;
  CMSAE_CUDA(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, count, off, m + 1, stream));
  scan_temp.ensure(scan_bytes);
  CMSAE_CUDA(cub::DeviceScan::ExclusiveSum(scan_temp.p, scan_bytes, count, off, m + 1, stream));
}

void launch_latent_grads(const int* off, const int* pos_sorted, const float* val, const float* dval, const float* G,
                         const float* X, const float* b_dec, int m, int d, int k, float* g_dec, float* g_enc, float* g_benc,
                         cudaStream_t stream) {
  latent_grads<<<m, kThreads, 0, stream>>>(off, pos_sorted, val, dval, G, X, b_dec, d, k, g_dec, g_enc, g_benc);
}

void launch_decoder_bias_grad(const float* G, long R, const float* g_benc, const float* W_enc, int m, int d,
                              DeviceBuffer<double>& part, double* sum, float* g_bdec, cudaStream_t stream) {
  const int rchunks = static_cast<int>((R + kColChunk - 1) / kColChunk), jchunks = (m + kColChunk - 1) / kColChunk;
  part.ensure(static_cast<size_t>(std::max(rchunks, jchunks)) * d);
  launch_column_partials(G, 0, R, d, nullptr, false, rchunks, part.p, stream);
  launch_column_finish(part.p, rchunks, d, 1.0, false, sum, stream);
  const dim3 jgrid(static_cast<unsigned>(blocks_for(d)), static_cast<unsigned>(jchunks));
  encoder_bias_partials<<<jgrid, kThreads, 0, stream>>>(g_benc, W_enc, m, d, part.p);
  launch_column_finish(part.p, jchunks, d, -1.0, true, sum, stream);
  to_float<<<blocks_for(d), kThreads, 0, stream>>>(sum, d, g_bdec);
}

void launch_project_rows(const float* W_dec, float* g_dec, int m, int d, cudaStream_t stream) {
  project_rows<<<m, kThreads, 0, stream>>>(W_dec, g_dec, d);
}

void launch_sum_squares(const float* a, long n, double* part, cudaStream_t stream) {
  sum_squares<<<kSumBlocks, kThreads, 0, stream>>>(a, n, part);
}

}  // namespace cmsae::cuda

// x_hat = b_dec + sum_s val_s W_dec[idx_s], G = s (x_hat - x), dL/dval_s = G . W_dec[idx_s]; CPU reference: native/sae/decode.cc decode_with_gradient.
// Also the plain decode (sparse_decode, same file) and the additive dL/dval correction of the code-level losses
// (BackwardInput::extra_dval, native/sae/backward.cc). s = w * 2 / D per batch segment (native/sae/loss_scale.h).
#include <cuda_runtime.h>

#include <cstdint>

#include "block_reduce.cuh"
#include "sae_ops.cuh"

namespace cmsae::cuda {
namespace {

// out[r] = b_dec + sum_s val[r, s] W_dec[idx[r, s]] (one block per row).
__global__ void decode_rows(const float* __restrict__ W, const float* __restrict__ b_dec, int d, const int32_t* __restrict__ idx,
                            const float* __restrict__ val, int k, float* __restrict__ out) {
  const long r = blockIdx.x;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float o = b_dec ? b_dec[c] : 0.f;
    for (int s = 0; s < k; ++s) {
      const float v = val[r * k + s];
      if (v != 0.f) o = fmaf(v, W[static_cast<long>(idx[r * k + s]) * d + c], o);
    }
    out[r * d + c] = o;
  }
}

// Forward loss of row r: x_hat, e = x_hat - x, G = gscale[seg] e, sse_row[r] = sum e^2, and
// dval[r, s] = G . W_dec[idx[r, s]] for active slots (0 otherwise).
__global__ void forward_loss(const float* __restrict__ W, const float* __restrict__ b_dec, const float* __restrict__ X, int d,
                             const int32_t* __restrict__ idx, const float* __restrict__ val, int k, long seg_rows,
                             double gscale0, double gscale1, float* __restrict__ G, double* __restrict__ sse_row,
                             float* __restrict__ dval) {
  const long r = blockIdx.x;
  const float gscale = static_cast<float>(r < seg_rows ? gscale0 : gscale1);
  double sse = 0;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float o = b_dec[c];
    for (int s = 0; s < k; ++s) {
      const float v = val[r * k + s];
      if (v != 0.f) o = fmaf(v, W[static_cast<long>(idx[r * k + s]) * d + c], o);
    }
    const float e = o - X[r * d + c];
    sse += static_cast<double>(e) * e;
    G[r * d + c] = gscale * e;
  }
  const double total = block_sum(sse);  // its barriers also make this block's G row visible to every thread
  if (threadIdx.x == 0) sse_row[r] = total;
  __syncthreads();
  const float* g_row = G + r * d;
  const int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int s = warp; s < k; s += warps) {
    const float v = val[r * k + s];
    float dot = 0.f;
    if (v > 0.f) {
      const float* w = W + static_cast<long>(idx[r * k + s]) * d;
      for (int c = lane; c < d; c += 32) dot = fmaf(g_row[c], w[c], dot);
      dot = warp_sumf(dot);
    }
    if (lane == 0) dval[r * k + s] = v > 0.f ? dot : 0.f;
  }
}

// a[i] += b[i].
__global__ void add_into(float* __restrict__ a, const float* __restrict__ b, long n) {
  const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (i < n) a[i] += b[i];
}

}  // namespace

void launch_decode_rows(const float* W_dec, const float* b_dec, int d, const int32_t* idx, const float* val, long rows, int k,
                        float* out, cudaStream_t stream) {
  decode_rows<<<rows, kThreads, 0, stream>>>(W_dec, b_dec, d, idx, val, k, out);
}

void launch_forward_loss(const float* W_dec, const float* b_dec, const float* X, int d, const int32_t* idx, const float* val,
                         int k, long R, long seg_rows, double gscale0, double gscale1, float* G, double* sse_row, float* dval,
                         cudaStream_t stream) {
  forward_loss<<<R, kThreads, 0, stream>>>(W_dec, b_dec, X, d, idx, val, k, seg_rows, gscale0, gscale1, G, sse_row, dval);
}

void launch_add_into(float* a, const float* b, long n, cudaStream_t stream) {
  add_into<<<blocks_for(n), kThreads, 0, stream>>>(a, b, n);
}

}  // namespace cmsae::cuda

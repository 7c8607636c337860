// p = p decay - step_size m / (sqrt(v) inv_sqrt_bc2 + eps) with the AdamW moments of g s; CPU reference: native/sae/kernels_impl.h adamw.
// Also the decoder row renormalization W_dec[j] /= ||W_dec[j]|| + eps (float64 square norm, as renormalize_rows and
// CpuBackend::apply_update in native/sae/cpu_backend.cc).
#include <cuda_runtime.h>

#include <algorithm>

#include "block_reduce.cuh"
#include "sae_ops.cuh"

namespace cmsae::cuda {
namespace {

// AdamW (torch formula, as the CPU kernel): p *= decay; m += (1-b1)(g s - m); v = b2 v + (1-b2)(g s)^2;
// p -= step_size m / (sqrt(v) inv_sqrt_bc2 + eps).
__global__ void adamw(float* __restrict__ p, float* __restrict__ m1, float* __restrict__ m2, const float* __restrict__ g, long n,
                      AdamWArgs a) {
  for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < n; i += static_cast<long>(gridDim.x) * blockDim.x) {
    const float gi = g[i] * a.grad_scale;
    float pi = p[i] * a.decay_factor;
    const float mi = m1[i] + (1.f - a.beta1) * (gi - m1[i]);
    const float vi = a.beta2 * m2[i] + (1.f - a.beta2) * gi * gi;
    pi -= a.step_size * mi / (sqrtf(vi) * a.inv_sqrt_bc2 + a.eps);
    p[i] = pi;
    m1[i] = mi;
    m2[i] = vi;
  }
}

// W_dec[j] /= ||W_dec[j]|| + eps (one block per row).
__global__ void renorm_rows(float* __restrict__ W, int d, float eps) {
  const long j = blockIdx.x;
  double s = 0;
  for (int c = threadIdx.x; c < d; c += blockDim.x) s += static_cast<double>(W[j * d + c]) * W[j * d + c];
  const float inv = 1.0f / (static_cast<float>(sqrt(block_sum(s))) + eps);
  for (int c = threadIdx.x; c < d; c += blockDim.x) W[j * d + c] *= inv;
}

}  // namespace

void launch_adamw(float* p, float* m1, float* m2, const float* g, long n, const AdamWArgs& a, cudaStream_t stream) {
  const long blocks = std::min<long>(blocks_for(n), 4096);
  adamw<<<blocks, kThreads, 0, stream>>>(p, m1, m2, g, n, a);
}

void launch_renorm_rows(float* W, int m, int d, float eps, cudaStream_t stream) {
  renorm_rows<<<m, kThreads, 0, stream>>>(W, d, eps);
}

}  // namespace cmsae::cuda

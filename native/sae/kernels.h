// Table of SIMD kernels used by the SAE engine; one instance per SIMD level (scalar, AVX2, AVX-512).
#pragma once
#include <cstdint>

#include "../common/cpu_features.h"

namespace cmsae {

struct AdamWArgs {
  float beta1, beta2, eps;
  float decay_factor;  // 1 - lr * weight_decay (1 when this parameter is not decayed)
  float step_size;     // lr / (1 - beta1^t)
  float inv_sqrt_bc2;  // 1 / sqrt(1 - beta2^t)
  float grad_scale;    // gradient-clipping coefficient (1 when not clipped)
};

struct SaeKernels {
  const char* name;
  int mr;  // rows of the encode register tile (batch rows)
  int nr;  // columns of the encode register tile (latents)

  // tile[r][c] = sum_k Ap[k*mr + r] * Bp[k*nr + c] + bias[c]; masks[r] = bits c with tile[r][c] > thr[r].
  // The tile is written to `tile` (mr*nr floats) when any mask bit is set or force_store; returns OR of masks.
  uint32_t (*encode_tile)(int K, const float* Ap, const float* Bp, const float* bias, const float* thr,
                          float* tile, uint32_t* masks, bool force_store);
  // sum_i a[i] * b[i]
  float (*dot)(const float* a, const float* b, long n);
  // y[i] += alpha * x[i]
  void (*axpy)(float alpha, const float* x, float* y, long n);
  // sum_i x[i]^2 in float64
  double (*sumsq)(const float* x, long n);
  // AdamW (torch formula) on n parameters: p *= decay; m += (1-b1)(g*s - m); v = b2 v + (1-b2)(g*s)^2;
  // p -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps). g == nullptr means a zero gradient.
  void (*adamw)(float* p, float* m, float* v, const float* g, long n, const AdamWArgs& a);
};

const SaeKernels& kernels_for(SimdLevel level);
inline const SaeKernels& kernels() { return kernels_for(active_simd_level()); }

// Defined in the per-ISA translation units.
const SaeKernels& kernels_scalar();
const SaeKernels& kernels_avx2();
const SaeKernels& kernels_avx512();

}  // namespace cmsae

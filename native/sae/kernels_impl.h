// Kernel bodies shared by every SIMD level. Included by kernels_<isa>.cc after defining
// CMSAE_VEC (the vector type), CMSAE_MR, CMSAE_NV (vectors per tile row) and CMSAE_KERNELS_FN.
#include <cmath>
#include <cstdint>

#include "kernels.h"

namespace cmsae {
namespace {

using V = CMSAE_VEC;
constexpr int MR = CMSAE_MR;
constexpr int NV = CMSAE_NV;
constexpr int NR = NV * V::W;

// Register-tiled GEMM over the full depth K, then bias add and a per-row threshold test (the fused
// Top-K encode's inner step): tile = Ap·Bp + bias, masks[r] = {c : tile[r][c] > thr[r]}.
uint32_t encode_tile(int K, const float* __restrict Ap, const float* __restrict Bp, const float* bias,
                     const float* thr, float* tile, uint32_t* masks, bool force_store) {
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
  for (int k = 0; k < K; ++k) {
    V b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = V::load(Bp + k * NR + v * V::W);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      V a = V::broadcast(Ap + k * MR + r);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = fmadd(a, b[v], acc[r][v]);
    }
  }
  V bv[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) bv[v] = V::load(bias + v * V::W);
  uint32_t any = 0;
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    V t = V::set1(thr[r]);
    uint32_t bits = 0;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      acc[r][v] = acc[r][v] + bv[v];
      bits |= gt_bits(acc[r][v], t) << (v * V::W);
    }
    masks[r] = bits;
    any |= bits;
  }
  if (any || force_store) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v].store(tile + r * NR + v * V::W);
  }
  return any;
}

float dot(const float* __restrict a, const float* __restrict b, long n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (long i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float alpha, const float* __restrict x, float* __restrict y, long n) {
#pragma omp simd
  for (long i = 0; i < n; ++i) y[i] += alpha * x[i];
}

double sumsq(const float* x, long n) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (long i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return s;
}

void adamw(float* __restrict p, float* __restrict m, float* __restrict v, const float* __restrict g, long n,
           const AdamWArgs& a) {
  const float one_m_b1 = 1.f - a.beta1, one_m_b2 = 1.f - a.beta2;
  if (g) {
#pragma omp simd
    for (long i = 0; i < n; ++i) {
      float gi = g[i] * a.grad_scale;
      float mi = m[i] + one_m_b1 * (gi - m[i]);
      float vi = a.beta2 * v[i] + one_m_b2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * a.decay_factor - a.step_size * mi / (std::sqrt(vi) * a.inv_sqrt_bc2 + a.eps);
    }
  } else {
#pragma omp simd
    for (long i = 0; i < n; ++i) {
      float mi = m[i] - one_m_b1 * m[i];
      float vi = a.beta2 * v[i];
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * a.decay_factor - a.step_size * mi / (std::sqrt(vi) * a.inv_sqrt_bc2 + a.eps);
    }
  }
}

}  // namespace

const SaeKernels& CMSAE_KERNELS_FN() {
  static const SaeKernels table{CMSAE_KERNELS_NAME, MR, NR, encode_tile, dot, axpy, sumsq, adamw};
  return table;
}

}  // namespace cmsae

// 8-lane float vector on AVX2+FMA. Include only from translation units compiled with -mavx2 -mfma.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace cmsae::simd {

struct VecAvx2 {
  static constexpr int W = 8;
  __m256 v;
  static VecAvx2 zero() { return {_mm256_setzero_ps()}; }
  static VecAvx2 load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static VecAvx2 broadcast(const float* p) { return {_mm256_broadcast_ss(p)}; }
  static VecAvx2 set1(float x) { return {_mm256_set1_ps(x)}; }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  friend VecAvx2 fmadd(VecAvx2 a, VecAvx2 b, VecAvx2 c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  friend VecAvx2 operator+(VecAvx2 a, VecAvx2 b) { return {_mm256_add_ps(a.v, b.v)}; }
  // Bit i set when lane i of a is greater than the same lane of b (ordered, NaN compares false).
  friend uint32_t gt_bits(VecAvx2 a, VecAvx2 b) {
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ)));
  }
};

}  // namespace cmsae::simd

// 16-lane float vector on AVX-512F. Include only from translation units compiled with -mavx512f.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace cmsae::simd {

struct VecAvx512 {
  static constexpr int W = 16;
  __m512 v;
  static VecAvx512 zero() { return {_mm512_setzero_ps()}; }
  static VecAvx512 load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static VecAvx512 broadcast(const float* p) { return {_mm512_set1_ps(*p)}; }
  static VecAvx512 set1(float x) { return {_mm512_set1_ps(x)}; }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  friend VecAvx512 fmadd(VecAvx512 a, VecAvx512 b, VecAvx512 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  friend VecAvx512 operator+(VecAvx512 a, VecAvx512 b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend uint32_t gt_bits(VecAvx512 a, VecAvx512 b) {
    return static_cast<uint32_t>(_mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ));
  }
};

}  // namespace cmsae::simd

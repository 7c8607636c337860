// AVX-512 pieces shared by the BF16 packer and the certified encode's row preparation. Include only from
// translation units compiled with AVX-512F/DQ.
#pragma once
#include <immintrin.h>

namespace cmsae {

// GCC 12 warns falsely about the _mm512_undefined_* inside the extract intrinsics once inlined here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// Lane by lane, the float whose bits are bf16_round(x) << 16 (round to nearest even by u + 0x7FFF + lsb).
inline __m512i bf16_bits(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb);
  return _mm512_and_si512(r, _mm512_set1_epi32(static_cast<int32_t>(0xFFFF0000u)));
}

// acc + x_i^2 over the 16 lanes, in float64 (the squares exact).
inline __m512d square_sum(__m512d acc, __m512 x) {
  const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
  const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
  return _mm512_fmadd_pd(hi, hi, _mm512_fmadd_pd(lo, lo, acc));
}

}  // namespace cmsae

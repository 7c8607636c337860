// The AVX-512 BF16 packer (bf16_encoder.h): Wh = bf16(W) by integer round-to-nearest-even (u + 0x7FFF + lsb, the
// bits of bf16_round), VNNI pairs by 16x16 register transposes, ||W||^2, ||Wh||^2, ||W - Wh||^2 summed in float64.
#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "avx512_util.h"
#include "bf16_avx512.h"
#include "bf16_encoder.h"

namespace cmsae {

namespace {

// 8 VNNI pairs (element 2i in the low half, 2i + 1 in the high half) from the bf16 bits of 16 consecutive floats.
inline __m256i vnni_pairs(__m512i bits) {
  const __m512i even = _mm512_and_si512(_mm512_srli_epi64(bits, 16), _mm512_set1_epi64(0xFFFF));
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi64(bits, 32), _mm512_set1_epi64(0xFFFF0000));
  return _mm512_cvtepi64_epi32(_mm512_or_si512(even, odd));
}

}  // namespace

void pack_bf16_panels_avx512(const float* W_rows, const float* b_enc, long p0, long p1, Bf16Encoder& e) {
  constexpr int L = kBf16PanelLatents;
  const int d = e.d, dpad = e.dpad, pairs = dpad / 2;
  thread_local std::vector<uint32_t> tmp_cache;  // [16 latents][pairs] VNNI pairs before the transpose
  std::vector<uint32_t>& tmp = tmp_cache;
  tmp.resize(static_cast<size_t>(L) * pairs);
  for (long p = p0; p < p1; ++p) {
    bool finite = true;
    for (int c = 0; c < L; ++c) {
      const long j = p * L + c;
      uint32_t* row = tmp.data() + static_cast<long>(c) * pairs;
      if (j >= e.m) {
        for (int q = 0; q < pairs; ++q) row[q] = 0;
        set_bf16_padding_latent(e, j);
        continue;
      }
      const float* w = W_rows + j * d;
      __m512d sw = _mm512_setzero_pd(), sh = sw, sl = sw;
      for (int k = 0; k < dpad; k += 32) {
        __m512i bits[2];
        for (int h = 0; h < 2; ++h) {
          const int k0 = k + 16 * h;
          const __m512 x = _mm512_maskz_loadu_ps(first_lanes(d - k0), w + k0);
          bits[h] = bf16_bits(x);
          const __m512 hf = _mm512_castsi512_ps(bits[h]);
          sw = square_sum(sw, x);
          sh = square_sum(sh, hf);
          sl = square_sum(sl, _mm512_sub_ps(x, hf));  // exact residual
        }
        const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(vnni_pairs(bits[0])), vnni_pairs(bits[1]), 1);
        _mm512_storeu_si512(row + k / 2, both);
      }
      finite = set_bf16_latent_terms(e, j, _mm512_reduce_add_pd(sw), _mm512_reduce_add_pd(sh),
                                     _mm512_reduce_add_pd(sl), b_enc[j]) &&
               finite;
    }
    e.finite.data()[p] = finite ? 1 : 0;
    // VNNI panel: pair q, latent c at uint32 offset q * 16 + c.
    uint32_t* dst = reinterpret_cast<uint32_t*>(e.Wp.data() + p * static_cast<long>(dpad) * L);
    for (int q0 = 0; q0 < pairs; q0 += 16) {
      __m512 r[16];
      for (int c = 0; c < L; ++c) r[c] = _mm512_castsi512_ps(_mm512_loadu_si512(tmp.data() + c * pairs + q0));
      transpose16x16(r);
      for (int q = 0; q < 16; ++q) _mm512_store_si512(dst + (q0 + q) * 16, _mm512_castps_si512(r[q]));
    }
  }
}

}  // namespace cmsae

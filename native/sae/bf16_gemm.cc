// C[r][c] = sum_k bf16 Xh[r][k] * Wh[c][k] in float32 (any summation order; the certificate's bound covers it), for
// 32 rows x 32 latents: by AMX tiles (4 accumulator tiles, 2 of rows, 2 of latents) or by vdpbf16ps register tiles.
#include "bf16_gemm.h"

#include <immintrin.h>

#include <cstring>

#include "bf16_encoder.h"

namespace cmsae {

namespace {
// Palette 1, tiles 0-7 all 16 rows x 64 bytes: 0-3 accumulators (16 x 16 floats), 4-5 rows of Xh (16 x 32 bf16),
// 6-7 VNNI panels (16 depth pairs x 16 latents x 2).
struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
}  // namespace

// A constant in memory: GCC 12 does not see that ldtilecfg reads its operand and drops stores to a local config.
alignas(64) const TileConfig kTileConfig = {
    1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0}, {16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0}};

void amx_tiles_begin() { _tile_loadconfig(&kTileConfig); }

void amx_tiles_end() { _tile_release(); }

// 8 rows x 32 latents per register tile (16 accumulators), four tiles per block.
void avx512_bf16_block(const uint16_t* Xh, int dpad, const uint16_t* Wp, float* C, long ldc) {
  constexpr int R = 8;
  const long panel = static_cast<long>(dpad) * kBf16PanelLatents;
  for (int r0 = 0; r0 < kBf16BlockRows; r0 += R) {
    __m512 acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const uint16_t* X = Xh + static_cast<long>(r0) * dpad;
    for (int q = 0; q < dpad / 2; ++q) {
      const __m512bh b0 = (__m512bh)_mm512_load_si512(Wp + static_cast<long>(q) * 32);
      const __m512bh b1 = (__m512bh)_mm512_load_si512(Wp + panel + static_cast<long>(q) * 32);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        int32_t pair;
        std::memcpy(&pair, X + static_cast<long>(r) * dpad + 2 * q, 4);
        const __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
        acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
      }
    }
    for (int r = 0; r < R; ++r) {
      _mm512_storeu_ps(C + (r0 + r) * ldc, acc[r][0]);
      _mm512_storeu_ps(C + (r0 + r) * ldc + 16, acc[r][1]);
    }
  }
}

}  // namespace cmsae

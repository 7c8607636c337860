// Low-precision GEMM blocks of the certified encode: C[32][32] = Xh[32 rows] . Wh[32 latents]^T, BF16 products with
// float32 accumulation, by AMX-BF16 tiles (tdpbf16ps) or AVX-512-BF16 (vdpbf16ps). Compiled with the AMX and BF16
// instruction flags; call only where cpu_features.h says the instructions exist.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "bf16_encoder.h"

namespace cmsae {

constexpr int kBf16BlockRows = 32;     // rows of one block (two AMX tiles of 16)
constexpr int kBf16BlockLatents = 32;  // latents of one block (two VNNI panels of 16)

// Xh: 32 rows of `dpad` bf16 (row-major, dpad a multiple of 32); Wp: two consecutive VNNI panels (bf16_encoder.h);
// C: 32 x 32 floats, row-major with row stride ldc floats. Before the first AMX block on a thread call amx_tiles_begin(), and
// amx_tiles_end() when done (the tile configuration is per thread). between() runs after every `every`-th depth step:
// other work (vector code) then runs while the tile unit works on the products already issued. Instantiate only where
// AMX is compiled in.
template <class Between>
inline void amx_bf16_block(const uint16_t* Xh, int dpad, const uint16_t* Wp, float* C, long ldc, int every,
                                   Between&& between) {
  const long panel = static_cast<long>(dpad) * kBf16PanelLatents;  // bf16 per VNNI panel
  const long xstride = static_cast<long>(dpad) * 2;                  // bytes per row of Xh
  const uint16_t* W0 = Wp;
  const uint16_t* W1 = Wp + panel;
  const uint16_t* X1 = Xh + 16L * dpad;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  int step = 0;
  for (int k = 0; k < dpad; k += 32) {
    // A depth step of 32 = 16 VNNI pairs = 16 rows of 64 bytes in a panel, 1 KiB apart per step. The panels are
    // used once per call: loaded with the streaming hint (tileloaddt1) so the rows' tiles, reused, stay in L1.
    _tile_loadd(4, Xh + k, xstride);
    _tile_stream_loadd(6, W0 + static_cast<long>(k) * kBf16PanelLatents, 64);
    _tile_stream_loadd(7, W1 + static_cast<long>(k) * kBf16PanelLatents, 64);
    _tile_loadd(5, X1 + k, xstride);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
    if (++step == every) {
      step = 0;
      between();
    }
  }
  const long ldb = ldc * 4;
  _tile_stored(0, C, ldb);
  _tile_stored(1, C + 16, ldb);
  _tile_stored(2, C + 16 * ldc, ldb);
  _tile_stored(3, C + 16 * ldc + 16, ldb);
}
void amx_tiles_begin();
void amx_tiles_end();
void avx512_bf16_block(const uint16_t* Xh, int dpad, const uint16_t* Wp, float* C, long ldc);

}  // namespace cmsae

// Low-precision GEMM blocks of the certified encode: C[32][32] = Xh[32 rows] . Wh[32 latents]^T, BF16 products with
// float32 accumulation, by AMX-BF16 tiles (tdpbf16ps) or AVX-512-BF16 (vdpbf16ps). Compiled with the AMX and BF16
// instruction flags; call only where cpu_features.h says the instructions exist.
#pragma once
#include <cstdint>

namespace cmsae {

constexpr int kBf16BlockRows = 32;     // rows of one block (two AMX tiles of 16)
constexpr int kBf16BlockLatents = 32;  // latents of one block (two VNNI panels of 16)

// Xh: 32 rows of `dpad` bf16 (row-major, dpad a multiple of 32); Wp: two consecutive VNNI panels (bf16_encoder.h);
// C: 32 x 32 floats, row-major with row stride ldc floats. Before the first AMX block on a thread call amx_tiles_begin(), and
// amx_tiles_end() when done (the tile configuration is per thread).
void amx_bf16_block(const uint16_t* Xh, int dpad, const uint16_t* Wp, float* C, long ldc);
void amx_tiles_begin();
void amx_tiles_end();
void avx512_bf16_block(const uint16_t* Xh, int dpad, const uint16_t* Wp, float* C, long ldc);

}  // namespace cmsae

// Run-time SIMD level detection (scalar / AVX2+FMA / AVX-512F) with an environment override.
#pragma once
#include <string>

namespace cmsae {

enum class SimdLevel { Scalar = 0, Avx2 = 1, Avx512 = 2 };

// Highest level this CPU supports (ignores the override).
SimdLevel detect_simd_level();
// Level in use: detect_simd_level(), lowered by CMSAE_SIMD=scalar|avx2|avx512 or set_simd_level().
SimdLevel active_simd_level();
// Force a level (clamped to what the CPU supports). Returns the level actually set.
SimdLevel set_simd_level(SimdLevel level);
const char* simd_level_name(SimdLevel level);
bool parse_simd_level(const std::string& name, SimdLevel* out);

// BF16 dot-product instruction sets of the certified encode (certified_encode.h).
// AVX-512-BF16 (vdpbf16ps) on top of AVX-512F/BW/VL/DQ.
bool cpu_has_avx512_bf16();
// AMX-BF16 tiles (tdpbf16ps): the CPU flags and, on Linux, the kernel's permission for the tile data state
// (arch_prctl ARCH_REQ_XCOMP_PERM, requested once per process). False when either is missing.
bool amx_bf16_usable();

}  // namespace cmsae

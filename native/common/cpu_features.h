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

}  // namespace cmsae

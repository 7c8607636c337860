#include "cpu_features.h"

#include <atomic>
#include <cstdlib>

#if defined(__linux__) && (defined(__x86_64__) || defined(_M_X64))
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace cmsae {

SimdLevel detect_simd_level() {
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return SimdLevel::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::Avx2;
#endif
#endif
  return SimdLevel::Scalar;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Avx512: return "avx512";
    case SimdLevel::Avx2: return "avx2";
    default: return "scalar";
  }
}

bool parse_simd_level(const std::string& name, SimdLevel* out) {
  if (name == "scalar") *out = SimdLevel::Scalar;
  else if (name == "avx2") *out = SimdLevel::Avx2;
  else if (name == "avx512") *out = SimdLevel::Avx512;
  else return false;
  return true;
}

namespace {
SimdLevel clamp_level(SimdLevel wanted) {
  SimdLevel best = detect_simd_level();
  return static_cast<int>(wanted) < static_cast<int>(best) ? wanted : best;
}

std::atomic<int>& level_slot() {
  static std::atomic<int> slot([] {
    SimdLevel level = detect_simd_level();
    if (const char* env = std::getenv("CMSAE_SIMD")) {
      SimdLevel wanted;
      if (parse_simd_level(env, &wanted)) level = clamp_level(wanted);
    }
    return static_cast<int>(level);
  }());
  return slot;
}
}  // namespace

SimdLevel active_simd_level() { return static_cast<SimdLevel>(level_slot().load(std::memory_order_relaxed)); }

SimdLevel set_simd_level(SimdLevel level) {
  SimdLevel actual = clamp_level(level);
  level_slot().store(static_cast<int>(actual), std::memory_order_relaxed);
  return actual;
}

bool cpu_has_avx512_bf16() {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  static const bool has = [] {
    __builtin_cpu_init();
    return detect_simd_level() == SimdLevel::Avx512 && __builtin_cpu_supports("avx512bf16");
  }();
  return has;
#else
  return false;
#endif
}

namespace {
#if defined(__linux__) && (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
// CPUID.(EAX=7,ECX=0):EDX bit 22 = AMX-BF16, bit 24 = AMX-TILE (not every compiler's __builtin_cpu_supports knows
// them).
bool cpu_has_amx_bf16_flags() {
  unsigned eax = 7, ebx = 0, ecx = 0, edx = 0;
  __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
  return (edx >> 22 & 1u) && (edx >> 24 & 1u);
}
#endif
}  // namespace

bool amx_bf16_usable() {
#if defined(__linux__) && (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  static const bool usable = [] {
    if (!cpu_has_avx512_bf16() || !cpu_has_amx_bf16_flags()) return false;
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return usable;
#else
  return false;
#endif
}

}  // namespace cmsae

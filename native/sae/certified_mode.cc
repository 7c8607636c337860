// The encode path setting (float32 or a certified BF16 path, certified_encode.h) and the encode counters.
#include <atomic>
#include <cstdlib>
#include <string>

#include "../common/cpu_features.h"
#include "../common/validate.h"
#include "certified_encode.h"

namespace cmsae {

// ---- the path setting ---------------------------------------------------------------------------------------------

namespace {

enum Mode { kAuto = 0, kFp32 = 1, kAvx512Bf16 = 2, kAmxBf16 = 3 };
constexpr const char* kModeNames[] = {"auto", "fp32", "avx512-bf16", "amx-bf16"};

bool parse_mode(const std::string& s, int* out) {
  for (int i = 0; i < 4; ++i)
    if (s == kModeNames[i]) {
      *out = i;
      return true;
    }
  return false;
}

std::atomic<int>& mode_slot() {
  static std::atomic<int> slot([] {
    int mode = kAuto;
    if (const char* env = std::getenv("CMSAE_ENCODE")) {
      int wanted;
      if (parse_mode(env, &wanted)) mode = wanted;
    }
    return mode;
  }());
  return slot;
}

std::atomic<long long> g_certified_rows{0}, g_fallback_rows{0}, g_candidates{0}, g_aux_candidates{0};

}  // namespace

const char* encode_path_name(EncodePath p) {
  switch (p) {
    case EncodePath::AmxBf16: return "amx-bf16";
    case EncodePath::Avx512Bf16: return "avx512-bf16";
    default: return "fp32";
  }
}

bool encode_path_available(EncodePath p) {
  if (p == EncodePath::Fp32) return true;
  if (active_simd_level() != SimdLevel::Avx512 || !cpu_has_avx512_bf16()) return false;
  return p == EncodePath::Avx512Bf16 || amx_bf16_usable();
}

SetEncodeMode set_encode_mode(const std::string& name) {
  int mode;
  if (!parse_mode(name, &mode)) return SetEncodeMode::UnknownName;
  if (mode == kAvx512Bf16 && !encode_path_available(EncodePath::Avx512Bf16)) return SetEncodeMode::Unavailable;
  if (mode == kAmxBf16 && !encode_path_available(EncodePath::AmxBf16)) return SetEncodeMode::Unavailable;
  mode_slot().store(mode, std::memory_order_relaxed);
  return SetEncodeMode::Set;
}

std::string encode_mode() { return kModeNames[mode_slot().load(std::memory_order_relaxed)]; }

EncodePath encode_path_for(int k, int m) {
  const int mode = mode_slot().load(std::memory_order_relaxed);
  if (mode == kFp32) return EncodePath::Fp32;
  if (mode == kAmxBf16 && encode_path_available(EncodePath::AmxBf16)) return EncodePath::AmxBf16;
  if (mode == kAvx512Bf16 && encode_path_available(EncodePath::Avx512Bf16)) return EncodePath::Avx512Bf16;
  if (mode != kAuto) return EncodePath::Fp32;  // a forced path the SIMD level no longer allows
  // Auto: large k leaves too many candidates for the certificate to pay off (k = m recomputes everything).
  if (static_cast<long>(k) * 8 > m) return EncodePath::Fp32;
  if (encode_path_available(EncodePath::AmxBf16)) return EncodePath::AmxBf16;
  if (encode_path_available(EncodePath::Avx512Bf16)) return EncodePath::Avx512Bf16;
  return EncodePath::Fp32;
}

EncodePath active_encode_path() { return encode_path_for(1, 1 << 30); }

EncodeCounters encode_counters() {
  return {g_certified_rows.load(), g_fallback_rows.load(), g_candidates.load(), g_aux_candidates.load()};
}

void count_encode_rows(long long certified, long long fallback, long long candidates, long long aux_candidates) {
  g_certified_rows += certified;
  g_fallback_rows += fallback;
  g_candidates += candidates;
  g_aux_candidates += aux_candidates;
}

#if !defined(CMSAE_HAVE_X86_SIMD)
// No certified path off x86 (encode_path_available is false there); the float32 path keeps the contract.
void certified_topk_encode(EncodePath, const EncoderView& enc, const float* x, long rows, int k, float floor,
                           int32_t* idx, float* val, const AuxSelect* aux, bool* x_nonfinite) {
  if (nonfinite_checked_first(x, rows * static_cast<long>(enc.d), x_nonfinite)) return;
  topk_encode_fp32(enc, x, rows, k, floor, idx, val, aux);
  count_encode_rows(0, rows, 0, 0);
}
#endif

}  // namespace cmsae

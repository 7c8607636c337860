// Certified mixed-precision Top-K encode: z = TopK_k(ReLU(W_enc (x - b_dec) + b_enc)), bit-identical to topk_encode's
// float32 result, from a BF16 GEMM. Each low-precision pre-activation p16 comes with a bound E (bf16_encoder.h) such
// that the float32 value lies in [p16 - E, p16 + E]; a row's k-th float32 value is at least L, the k-th largest lower
// end, so every latent whose upper end is below L (or not above the floor) is out. The rest, the candidates, are
// recomputed exactly (the same FMA chain as encode_tile) and ranked with the same (value desc, index asc) order.
// Rows whose candidates overflow the per-row capacity, or whose bound is void (non-finite or huge norms), are
// encoded by the float32 path instead.
#pragma once
#include <cstdint>
#include <string>

#include "topk_encode.h"

namespace cmsae {

enum class EncodePath { Fp32 = 0, Avx512Bf16 = 1, AmxBf16 = 2 };
const char* encode_path_name(EncodePath p);

// The encode path setting: "auto" (the best certified path the CPU has, for calls with 8 k <= m), "fp32",
// "avx512-bf16" or "amx-bf16" (that path for every call, whatever k). Initially from CMSAE_ENCODE, else "auto".
// The setting is unchanged unless the result is Set.
enum class SetEncodeMode { Set, UnknownName, Unavailable };
SetEncodeMode set_encode_mode(const std::string& mode);
std::string encode_mode();
// The path a call with these sizes takes now.
EncodePath encode_path_for(int k, int m);
// The path "auto" resolves to for ordinary sizes (8 k <= m) under the current setting.
EncodePath active_encode_path();
// Certified paths this CPU and the active SIMD level can run, best first.
bool encode_path_available(EncodePath p);

// Counters since the process started (for tests and profiling).
struct EncodeCounters {
  long long certified_rows, fallback_rows, candidates, aux_candidates;
};
EncodeCounters encode_counters();
void count_encode_rows(long long certified, long long fallback, long long candidates, long long aux_candidates);

// The certified encode on `path` (not Fp32); enc.bf16 must hold the packed BF16 copy of enc's W_rows/b_enc.
// x_nonfinite: as for topk_encode (null: the caller checked x).
void certified_topk_encode(EncodePath path, const EncoderView& enc, const float* x, long rows, int k, float floor,
                           int32_t* idx, float* val, const AuxSelect* aux, bool* x_nonfinite = nullptr);

}  // namespace cmsae

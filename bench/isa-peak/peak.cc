// Peak issue rate of the instructions behind our GEMMs, on this core: float32 FMA (vfmadd231ps, 16 lanes x 2 flops)
// and BF16 dot (vdpbf16ps, 32 pairs x 2 flops), each as 16 independent accumulator chains (throughput, not latency).
// Prints TSC cycles per instruction and flops per TSC cycle; the ratio bounds what a BF16 VNNI GEMM can gain here.
#include <immintrin.h>
#include <x86intrin.h>

#include <cstdio>

namespace {
constexpr int kChains = 16;
constexpr long kIters = 5000000;

// Best of 5 runs of kIters x kChains instructions, in TSC cycles per instruction. A macro, not a lambda: a lambda does
// not inherit its function's target attribute, so its intrinsics would not compile.
#define BEST_CYCLES_PER_INSTR(result, body)                                                       \
  do {                                                                                            \
    double best_ = 1e30;                                                                          \
    for (int rep_ = 0; rep_ < 5; ++rep_) {                                                        \
      const unsigned long long t0_ = __rdtsc();                                                   \
      for (long n_ = 0; n_ < kIters; ++n_)                                                        \
        _Pragma("GCC unroll 16") for (int i = 0; i < kChains; ++i) { body; }                     \
      const double c_ = static_cast<double>(__rdtsc() - t0_) / (static_cast<double>(kIters) * kChains); \
      if (c_ < best_) best_ = c_;                                                                 \
    }                                                                                             \
    result = best_;                                                                               \
  } while (0)

// One measured function per instruction: `kChains` accumulators of type V, each step acc = OP(acc, x, y).
#define DEFINE_PEAK(name, target_isa, V, set_acc, x_init, y_init, OP, reg)             \
  __attribute__((target(target_isa))) double name() {                                \
    V a[kChains];                                                                     \
    for (int i = 0; i < kChains; ++i) a[i] = set_acc(1e-3f * i);                      \
    const auto x = x_init, y = y_init;                                                \
    double c;                                                                         \
    BEST_CYCLES_PER_INSTR(c, a[i] = OP(a[i], x, y); asm volatile("" : : reg(a[i]));); \
    return c;                                                                         \
  }

DEFINE_PEAK(fma512, "avx512f", __m512, _mm512_set1_ps, _mm512_set1_ps(1.0f), _mm512_set1_ps(1e-9f), _mm512_fmadd_ps, "v")
DEFINE_PEAK(dpbf16_512, "avx512f,avx512bf16", __m512, _mm512_set1_ps, (__m512bh)_mm512_set1_epi32(0x3f803f80),
            (__m512bh)_mm512_set1_epi32(0x2f802f80), _mm512_dpbf16_ps, "v")
DEFINE_PEAK(fma256, "avx2,fma", __m256, _mm256_set1_ps, _mm256_set1_ps(1.0f), _mm256_set1_ps(1e-9f), _mm256_fmadd_ps, "x")
}  // namespace

int main() {
  __builtin_cpu_init();
  std::printf("instruction          TSC cycles/instr  flops/TSC cycle\n");
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    const double c = fma256();
    std::printf("vfmadd231ps ymm      %16.3f %16.1f\n", c, 16.0 / c);
  }
  double fma = 0;
  if (__builtin_cpu_supports("avx512f")) {
    fma = fma512();
    std::printf("vfmadd231ps zmm      %16.3f %16.1f\n", fma, 32.0 / fma);
  }
  if (__builtin_cpu_supports("avx512bf16")) {
    const double c = dpbf16_512();
    std::printf("vdpbf16ps zmm        %16.3f %16.1f\n", c, 64.0 / c);
    if (fma > 0) std::printf("BF16 dot / FP32 FMA peak flops: %.2fx\n", (64.0 / c) / (32.0 / fma));
  } else {
    std::printf("vdpbf16ps: not on this CPU\n");
  }
  return 0;
}

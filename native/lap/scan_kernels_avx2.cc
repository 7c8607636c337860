// AVX2 instance of the assignment scan kernels (compiled with -mavx2 -mfma); same results as the scalar
// instance bit for bit (min, compares and float64 subtractions only).
#include <immintrin.h>

#include <algorithm>

#include "scan_kernels.h"

namespace cmsae {
namespace {

// out[g] = min over group g of sign*x, plus the column-threshold bits (float: 8 lanes, double: 4 lanes).
template <class T, class V, int L, class Ops>
void group_min_impl(const T* x, long n, T sign, long group, T* out, const T* col_thr, uint64_t* col_mask,
                    uint8_t* nonfinite) {
  const V s = Ops::set1(sign);
  V bad = Ops::zero();
  uint8_t bad_tail = 0;
  if (col_thr)
    for (long w = 0; w < (n + 63) / 64; ++w) col_mask[w] = 0;
  for (long g0 = 0, g = 0; g0 < n; g0 += group, ++g) {
    const long end = std::min(n, g0 + group);
    V m = Ops::set1(sign * x[g0]);
    long q = g0;
    for (; q + L <= end; q += L) {
      const V xv = Ops::load(x + q);
      const V c = Ops::mul(xv, s);
      m = Ops::min(c, m);
      if (col_thr)
        col_mask[q >> 6] |= static_cast<uint64_t>(Ops::le_bits(c, Ops::load(col_thr + q))) << (q & 63);
      const V z = Ops::sub(xv, xv);
      bad = Ops::or_(bad, Ops::unord(z));
    }
    T mm = Ops::hmin(m);
    for (; q < end; ++q) {
      const T c = sign * x[q];
      mm = c < mm ? c : mm;
      if (col_thr) col_mask[q >> 6] |= static_cast<uint64_t>(c <= col_thr[q]) << (q & 63);
      const T z = x[q] - x[q];
      bad_tail |= static_cast<uint8_t>(z != z);
    }
    out[g] = mm;
  }
  *nonfinite |= static_cast<uint8_t>(bad_tail | (Ops::any(bad) ? 1 : 0));
}

struct OpsF32 {
  static __m256 set1(float a) { return _mm256_set1_ps(a); }
  static __m256 zero() { return _mm256_setzero_ps(); }
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static __m256 mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
  static __m256 sub(__m256 a, __m256 b) { return _mm256_sub_ps(a, b); }
  static __m256 min(__m256 a, __m256 b) { return _mm256_min_ps(a, b); }
  static __m256 or_(__m256 a, __m256 b) { return _mm256_or_ps(a, b); }
  static __m256 unord(__m256 a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static uint32_t le_bits(__m256 a, __m256 b) { return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_LE_OQ))); }
  static bool any(__m256 a) { return _mm256_movemask_ps(a) != 0; }
  static float hmin(__m256 m) {
    __m128 lo = _mm_min_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    lo = _mm_min_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_min_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
  }
};

struct OpsF64 {
  static __m256d set1(double a) { return _mm256_set1_pd(a); }
  static __m256d zero() { return _mm256_setzero_pd(); }
  static __m256d load(const double* p) { return _mm256_loadu_pd(p); }
  static __m256d mul(__m256d a, __m256d b) { return _mm256_mul_pd(a, b); }
  static __m256d sub(__m256d a, __m256d b) { return _mm256_sub_pd(a, b); }
  static __m256d min(__m256d a, __m256d b) { return _mm256_min_pd(a, b); }
  static __m256d or_(__m256d a, __m256d b) { return _mm256_or_pd(a, b); }
  static __m256d unord(__m256d a) { return _mm256_cmp_pd(a, a, _CMP_UNORD_Q); }
  static uint32_t le_bits(__m256d a, __m256d b) { return static_cast<uint32_t>(_mm256_movemask_pd(_mm256_cmp_pd(a, b, _CMP_LE_OQ))); }
  static bool any(__m256d a) { return _mm256_movemask_pd(a) != 0; }
  static double hmin(__m256d m) {
    __m128d lo = _mm_min_pd(_mm256_castpd256_pd128(m), _mm256_extractf128_pd(m, 1));
    lo = _mm_min_sd(lo, _mm_unpackhi_pd(lo, lo));
    return _mm_cvtsd_f64(lo);
  }
};

void group_min_f32(const float* x, long n, float sign, long group, float* out, const float* col_thr,
                   uint64_t* col_mask, uint8_t* nonfinite) {
  group_min_impl<float, __m256, 8, OpsF32>(x, n, sign, group, out, col_thr, col_mask, nonfinite);
}
void group_min_f64(const double* x, long n, double sign, long group, double* out, const double* col_thr,
                   uint64_t* col_mask, uint8_t* nonfinite) {
  group_min_impl<double, __m256d, 4, OpsF64>(x, n, sign, group, out, col_thr, col_mask, nonfinite);
}

uint64_t below_mask_f32(const float* x, int n, float sign, float thr, const float* col_thr) {
  const __m256 s = _mm256_set1_ps(sign), t = _mm256_set1_ps(thr);
  uint64_t mask = 0;
  int q = 0;
  for (; q + 8 <= n; q += 8) {
    const __m256 c = _mm256_mul_ps(_mm256_loadu_ps(x + q), s);
    const __m256 hit = _mm256_or_ps(_mm256_cmp_ps(c, t, _CMP_LE_OQ), _mm256_cmp_ps(c, _mm256_loadu_ps(col_thr + q), _CMP_LE_OQ));
    mask |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_ps(hit))) << q;
  }
  for (; q < n; ++q) {
    const float c = sign * x[q];
    mask |= static_cast<uint64_t>((c <= thr) | (c <= col_thr[q])) << q;
  }
  return mask;
}

uint64_t below_mask_f64(const double* x, int n, double sign, double thr, const double* col_thr) {
  const __m256d s = _mm256_set1_pd(sign), t = _mm256_set1_pd(thr);
  uint64_t mask = 0;
  int q = 0;
  for (; q + 4 <= n; q += 4) {
    const __m256d c = _mm256_mul_pd(_mm256_loadu_pd(x + q), s);
    const __m256d hit = _mm256_or_pd(_mm256_cmp_pd(c, t, _CMP_LE_OQ), _mm256_cmp_pd(c, _mm256_loadu_pd(col_thr + q), _CMP_LE_OQ));
    mask |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_pd(hit))) << q;
  }
  for (; q < n; ++q) {
    const double c = sign * x[q];
    mask |= static_cast<uint64_t>((c <= thr) | (c <= col_thr[q])) << q;
  }
  return mask;
}

// bits of (sign*c - u - v < -tol) for 4 float64 lanes
inline uint64_t price4(__m256d c, __m256d s, __m256d u, const double* v, __m256d neg_tol) {
  const __m256d red = _mm256_sub_pd(_mm256_sub_pd(_mm256_mul_pd(c, s), u), _mm256_loadu_pd(v));
  return static_cast<uint32_t>(_mm256_movemask_pd(_mm256_cmp_pd(red, neg_tol, _CMP_LT_OQ)));
}

uint64_t price_mask_f32(const float* x, int n, double sign, double u, const double* v, double tol) {
  const __m256d s = _mm256_set1_pd(sign), uu = _mm256_set1_pd(u), nt = _mm256_set1_pd(-tol);
  uint64_t mask = 0;
  int q = 0;
  for (; q + 4 <= n; q += 4) mask |= price4(_mm256_cvtps_pd(_mm_loadu_ps(x + q)), s, uu, v + q, nt) << q;
  for (; q < n; ++q) mask |= static_cast<uint64_t>(sign * static_cast<double>(x[q]) - u - v[q] < -tol) << q;
  return mask;
}

uint64_t price_mask_f64(const double* x, int n, double sign, double u, const double* v, double tol) {
  const __m256d s = _mm256_set1_pd(sign), uu = _mm256_set1_pd(u), nt = _mm256_set1_pd(-tol);
  uint64_t mask = 0;
  int q = 0;
  for (; q + 4 <= n; q += 4) mask |= price4(_mm256_loadu_pd(x + q), s, uu, v + q, nt) << q;
  for (; q < n; ++q) mask |= static_cast<uint64_t>(sign * x[q] - u - v[q] < -tol) << q;
  return mask;
}

}  // namespace

const ScanKernels& scan_kernels_avx2() {
  static const ScanKernels k{"avx2",
                             {group_min_f32, below_mask_f32, price_mask_f32},
                             {group_min_f64, below_mask_f64, price_mask_f64}};
  return k;
}

}  // namespace cmsae

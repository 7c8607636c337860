// AVX2 instance of the assignment scan kernels (compiled with -mavx2 -mfma); same results as the scalar
// instance bit for bit (min, compares and float64 subtractions only).
#include <immintrin.h>

#include <algorithm>

#include "scan_kernels.h"

namespace cmsae {
namespace {

// out[g] = min over group g of sign*x (float).
void group_min_f32(const float* x, long n, float sign, long group, float* out, uint8_t* nonfinite) {
  const __m256 s = _mm256_set1_ps(sign);
  __m256 bad = _mm256_setzero_ps();
  uint8_t bad_tail = 0;
  for (long g0 = 0, g = 0; g0 < n; g0 += group, ++g) {
    const long end = std::min(n, g0 + group);
    __m256 m = _mm256_set1_ps(sign * x[g0]);
    long q = g0;
    for (; q + 8 <= end; q += 8) {
      const __m256 xv = _mm256_loadu_ps(x + q);
      m = _mm256_min_ps(_mm256_mul_ps(xv, s), m);
      const __m256 z = _mm256_sub_ps(xv, xv);
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(z, z, _CMP_UNORD_Q));
    }
    __m128 lo = _mm_min_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    lo = _mm_min_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_min_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    float mm = _mm_cvtss_f32(lo);
    for (; q < end; ++q) {
      const float c = sign * x[q];
      mm = c < mm ? c : mm;
      const float z = x[q] - x[q];
      bad_tail |= static_cast<uint8_t>(z != z);
    }
    out[g] = mm;
  }
  *nonfinite |= static_cast<uint8_t>(bad_tail | (_mm256_movemask_ps(bad) != 0));
}

void group_min_f64(const double* x, long n, double sign, long group, double* out, uint8_t* nonfinite) {
  const __m256d s = _mm256_set1_pd(sign);
  __m256d bad = _mm256_setzero_pd();
  uint8_t bad_tail = 0;
  for (long g0 = 0, g = 0; g0 < n; g0 += group, ++g) {
    const long end = std::min(n, g0 + group);
    __m256d m = _mm256_set1_pd(sign * x[g0]);
    long q = g0;
    for (; q + 4 <= end; q += 4) {
      const __m256d xv = _mm256_loadu_pd(x + q);
      m = _mm256_min_pd(_mm256_mul_pd(xv, s), m);
      const __m256d z = _mm256_sub_pd(xv, xv);
      bad = _mm256_or_pd(bad, _mm256_cmp_pd(z, z, _CMP_UNORD_Q));
    }
    __m128d lo = _mm_min_pd(_mm256_castpd256_pd128(m), _mm256_extractf128_pd(m, 1));
    lo = _mm_min_sd(lo, _mm_unpackhi_pd(lo, lo));
    double mm = _mm_cvtsd_f64(lo);
    for (; q < end; ++q) {
      const double c = sign * x[q];
      mm = c < mm ? c : mm;
      const double z = x[q] - x[q];
      bad_tail |= static_cast<uint8_t>(z != z);
    }
    out[g] = mm;
  }
  *nonfinite |= static_cast<uint8_t>(bad_tail | (_mm256_movemask_pd(bad) != 0));
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

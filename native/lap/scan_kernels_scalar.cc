// Plain C++ instance of the assignment scan kernels (the reference the SIMD instances are tested against),
// and the run-time dispatch.
#include <algorithm>

#include "scan_kernels.h"

namespace cmsae {
namespace {

template <class T>
void group_min(const T* x, long n, T sign, long group, T* out, const T* col_thr, uint64_t* col_mask,
               uint8_t* nonfinite) {
  uint8_t bad = 0;
  if (col_thr)
    for (long w = 0; w < (n + 63) / 64; ++w) col_mask[w] = 0;
  for (long g0 = 0, g = 0; g0 < n; g0 += group, ++g) {
    const long end = std::min(n, g0 + group);
    T m = sign * x[g0];
    for (long q = g0; q < end; ++q) {
      const T c = sign * x[q];
      m = c < m ? c : m;
      if (col_thr) col_mask[q >> 6] |= static_cast<uint64_t>(c <= col_thr[q]) << (q & 63);
      const T z = x[q] - x[q];
      bad |= static_cast<uint8_t>(z != z);
    }
    out[g] = m;
  }
  *nonfinite |= bad;
}

template <class T>
uint64_t below_mask(const T* x, int n, T sign, T thr, const T* col_thr) {
  uint64_t mask = 0;
  for (int q = 0; q < n; ++q) {
    const T c = sign * x[q];
    mask |= static_cast<uint64_t>((c <= thr) | (c <= col_thr[q])) << q;
  }
  return mask;
}

template <class T>
uint64_t price_mask(const T* x, int n, double sign, double u, const double* v, double tol) {
  uint64_t mask = 0;
  for (int q = 0; q < n; ++q) mask |= static_cast<uint64_t>(sign * static_cast<double>(x[q]) - u - v[q] < -tol) << q;
  return mask;
}

}  // namespace

const ScanKernels& scan_kernels_scalar() {
  static const ScanKernels k{"scalar",
                             {group_min<float>, below_mask<float>, price_mask<float>},
                             {group_min<double>, below_mask<double>, price_mask<double>}};
  return k;
}

const ScanKernels& scan_kernels_for(SimdLevel level) {
#if defined(CMSAE_HAVE_X86_SIMD)
  if (level != SimdLevel::Scalar) return scan_kernels_avx2();
#else
  (void)level;
#endif
  return scan_kernels_scalar();
}

}  // namespace cmsae

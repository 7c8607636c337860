// Streaming filters of the certified sparse assignment's dense passes; one instance per SIMD level
// (scalar, AVX2), picked at run time like the SAE kernels. c = sign * x is the min-form cost.
#pragma once
#include <cstdint>

#include "../common/cpu_features.h"

namespace cmsae {

template <class T>
struct ScanKernelsT {
  // out[g] = min_{q in group g} sign*x[q] for groups of `group` entries (a multiple of 8; the last group may
  // be shorter); when col_thr is set, bit q%64 of col_mask[q/64] = sign*x[q] <= col_thr[q] (col_mask has
  // ceil(n/64) words, overwritten). Sets *nonfinite when any x is NaN or +-Inf (x - x is NaN exactly then).
  void (*group_min)(const T* x, long n, T sign, long group, T* out, const T* col_thr, uint64_t* col_mask,
                    uint8_t* nonfinite);
  // bit q (q < n <= 64) = sign*x[q] <= thr || sign*x[q] <= col_thr[q]
  uint64_t (*below_mask)(const T* x, int n, T sign, T thr, const T* col_thr);
  // bit q (q < n <= 64) = sign*x[q] - u - v[q] < -tol, in float64
  uint64_t (*price_mask)(const T* x, int n, double sign, double u, const double* v, double tol);
};

struct ScanKernels {
  const char* name;
  ScanKernelsT<float> f32;
  ScanKernelsT<double> f64;
  template <class T>
  const ScanKernelsT<T>& of() const {
    if constexpr (sizeof(T) == 4) return f32;
    else return f64;
  }
};

// Lowest set bit of a non-zero mask (the masks the filters return).
inline int lowest_bit(uint64_t mask) {
#if defined(__GNUC__)
  return __builtin_ctzll(mask);
#else
  int q = 0;
  while (!((mask >> q) & 1)) ++q;
  return q;
#endif
}

const ScanKernels& scan_kernels_for(SimdLevel level);
inline const ScanKernels& scan_kernels() { return scan_kernels_for(active_simd_level()); }

// Defined in the per-ISA translation units.
const ScanKernels& scan_kernels_scalar();
#if defined(CMSAE_HAVE_X86_SIMD)
const ScanKernels& scan_kernels_avx2();
#endif

}  // namespace cmsae

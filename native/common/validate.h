// Cheap input checks shared by the binding and the kernels (finiteness with the first bad position).
#pragma once
#include <cmath>
#include <string>

#include "errors.h"

namespace cmsae {

// Throws ERR_NONFINITE naming the first NaN/Inf element of x ([rows, cols]).
inline void check_finite(const float* x, long rows, int cols, const char* name) {
  const long n = rows * static_cast<long>(cols);
  float probe = 0.f;  // x*0 is NaN exactly when x is NaN or +-Inf
#pragma omp simd reduction(+ : probe)
  for (long i = 0; i < n; ++i) probe += x[i] * 0.f;
  if (probe == 0.f) return;
  for (long i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      const long r = i / cols, c = i % cols;
      fail("ERR_NONFINITE", std::string(name) + " has a non-finite value (" + (std::isnan(x[i]) ? "NaN" : "Inf") +
                                ") at row " + std::to_string(r) + ", column " + std::to_string(c) +
                                ": remove or repair that row before calling again");
    }
  }
}

// Throws ERR_NONFINITE when a kernel's output ([rows, cols]) overflowed float32 although its inputs were finite.
inline void check_output_finite(const float* y, long rows, int cols, const char* what) {
  const long n = rows * static_cast<long>(cols);
  float probe = 0.f;
#pragma omp simd reduction(+ : probe)
  for (long i = 0; i < n; ++i) probe += y[i] * 0.f;
  if (probe == 0.f) return;
  for (long i = 0; i < n; ++i)
    if (!std::isfinite(y[i]))
      fail("ERR_NONFINITE", std::string(what) + " overflowed float32 at row " + std::to_string(i / cols) +
                                ": the inputs or the weights are too large (rescale the inputs, e.g. normalization 'l2')");
}

}  // namespace cmsae

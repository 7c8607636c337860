// Cheap input checks shared by the binding and the kernels (finiteness with the first bad position).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "errors.h"
#include "thread_pool.h"

namespace cmsae {

// True when x[0..n) holds a NaN or +-Inf (an all-ones exponent field), flagged in 16 independent integer lanes:
// compilers vectorize it in every translation unit, even plain SSE2 ones (no float reassociation needed).
inline bool any_nonfinite(const float* x, long n) {
  constexpr uint32_t kExp = 0x7f800000u;
  uint32_t lanes[16] = {};
  long i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) {
      uint32_t u;
      std::memcpy(&u, x + i + j, sizeof u);
      lanes[j] |= (u & kExp) == kExp;
    }
  uint32_t bad = 0;
  for (int j = 0; j < 16; ++j) bad |= lanes[j];
  for (; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, sizeof u);
    bad |= (u & kExp) == kExp;
  }
  return bad != 0;
}

// any_nonfinite over the pool's threads for large arrays (a batch is read from memory once, at the threads' rate).
inline bool any_nonfinite_parallel(const float* x, long n) {
  constexpr long kPerTask = 1L << 17;  // elements below which one thread is as fast
  if (n < 2 * kPerTask) return any_nonfinite(x, n);
  const int T = static_cast<int>(std::min<long>(num_threads(), n / kPerTask));
  if (T <= 1) return any_nonfinite(x, n);
  bool found[64] = {};
  const int parts = std::min(T, 64);
  parallel_for(parts, [&](int t) {
    const long b = split_begin(n, parts, t), e = split_begin(n, parts, t + 1);
    found[t] = any_nonfinite(x + b, e - b);
  });
  for (int t = 0; t < parts; ++t)
    if (found[t]) return true;
  return false;
}

// For an encode asked to check its input (x_nonfinite not null) that cannot check it on the way: checks x[0..n)
// first, sets *x_nonfinite and returns it. Returns false when not asked.
inline bool nonfinite_checked_first(const float* x, long n, bool* x_nonfinite) {
  return x_nonfinite && (*x_nonfinite = any_nonfinite_parallel(x, n));
}

// Throws ERR_NONFINITE naming the first NaN/Inf element of x ([rows, cols]).
inline void check_finite(const float* x, long rows, int cols, const char* name) {
  const long n = rows * static_cast<long>(cols);
  if (!any_nonfinite_parallel(x, n)) return;
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
  if (!any_nonfinite(y, n)) return;
  for (long i = 0; i < n; ++i)
    if (!std::isfinite(y[i]))
      fail("ERR_NONFINITE", std::string(what) + " overflowed float32 at row " + std::to_string(i / cols) +
                                ": the inputs or the weights are too large (rescale the inputs, e.g. normalization 'l2')");
}

}  // namespace cmsae

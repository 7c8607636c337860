// Sparse decode: x_hat[b] = b_dec + sum_s val[b,s] * W_dec[idx[b,s]], parallel over rows.
#include "decode.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../common/thread_pool.h"
#include "kernels.h"

namespace cmsae {
namespace {

// out = b_dec (or 0) + sum_s val[s] W_dec[idx[s]] for one row.
inline void decode_row(const SaeKernels& K, const float* W_dec, const float* b_dec, int d, const int32_t* idx,
                       const float* val, int k, float* out) {
  if (b_dec)
    std::memcpy(out, b_dec, sizeof(float) * d);
  else
    std::memset(out, 0, sizeof(float) * d);
  for (int s = 0; s < k; ++s)
    if (val[s] != 0.f) K.axpy(val[s], W_dec + static_cast<long>(idx[s]) * d, out, d);
}

}  // namespace

void sparse_decode(const float* W_dec, const float* b_dec, int d, const int32_t* idx, const float* val, long rows,
                   int k, float* out) {
  const SaeKernels& K = kernels();
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), rows / 16 + 1)));
  parallel_for(T, [&](int t) {
    for (long b = split_begin(rows, T, t); b < split_begin(rows, T, t + 1); ++b)
      decode_row(K, W_dec, b_dec, d, idx + b * k, val + b * k, k, out + b * d);
  });
}

double decode_with_gradient(const float* W_dec, const float* b_dec, int d, const int32_t* idx, const float* val, int k,
                            const float* X, long r0, long rows, float gscale, float* xhat, float* G, float* dval) {
  const SaeKernels& K = kernels();
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), rows / 16 + 1)));
  std::vector<double> part(T, 0.0);
  parallel_for(T, [&](int t) {
    double acc = 0;
    for (long b = r0 + split_begin(rows, T, t); b < r0 + split_begin(rows, T, t + 1); ++b) {
      float* o = xhat + b * d;
      float* g = G + b * d;
      const float* x = X + b * d;
      if (b + 1 < r0 + rows)  // the next row's decoder rows are random gathers: start fetching them now
        for (int s = 0; s < k; ++s) {
          const float* nxt = W_dec + static_cast<long>(idx[(b + 1) * k + s]) * d;
          for (int c = 0; c < d; c += 16) __builtin_prefetch(nxt + c);
        }
      decode_row(K, W_dec, b_dec, d, idx + b * k, val + b * k, k, o);
      for (int c = 0; c < d; ++c) {
        const float e = o[c] - x[c];
        acc += static_cast<double>(e) * e;
        g[c] = gscale * e;
      }
      for (int s = 0; s < k; ++s) {
        const float v = val[b * k + s];
        dval[b * k + s] = v > 0.f ? K.dot(g, W_dec + static_cast<long>(idx[b * k + s]) * d, d) : 0.f;
      }
    }
    part[t] = acc;
  });
  double sse = 0;
  for (int t = 0; t < T; ++t) sse += part[t];
  return sse;
}

}  // namespace cmsae

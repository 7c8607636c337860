// The divergence guard's bound arithmetic (see update_guard.h) and the exact scan of parameter arrays.
#include "update_guard.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../common/thread_pool.h"

namespace cmsae {

bool predict_update(const ArrayBounds& now, const AdamWArgs& a, double G, int renorm_dim, ArrayBounds* next) {
  const double r = 1.0 + 1e-6, L = kSafeMagnitude;
  const double b1 = a.beta1, b2 = a.beta2, eps = a.eps, step = a.step_size, c = a.inv_sqrt_bc2;
  const double decay = std::fabs(static_cast<double>(a.decay_factor));
  // Every operand in range (NaN compares false, so it fails here too).
  if (!(b1 >= 0 && b1 <= 1 && b2 >= 0 && b2 <= 1 && eps > 0 && step >= 0 && step < L && c >= 0 && c < L && decay < L)) return false;
  if (!(now.p < L && now.m < L && now.v < L && G >= 0 && G * G < L)) return false;
  const double M = (b1 * now.m + (1 - b1) * G) * r;
  const double V = (b2 * now.v + (1 - b2) * G * G) * r;
  const double U = step * M / eps * r;  // |step_size m / (sqrt(v) c + eps)| with the denominator >= eps
  const double P = (decay * now.p + U) * r;
  if (!(M < L && V < L && std::sqrt(V) * c < L && step * M < L && U < L && decay * now.p < L && P < L)) return false;
  next->m = M;
  next->v = V;
  next->p = P;
  if (renorm_dim > 0) {
    if (!(P * std::sqrt(static_cast<double>(renorm_dim)) < L)) return false;
    next->p = r;  // |w_c| <= ||w|| / (||w|| + eps) < 1, up to rounding
  }
  return true;
}

bool scan_bounds(const float* p, const float* m, const float* v, size_t n, ArrayBounds* out) {
  const long len = static_cast<long>(n);
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), len / 262144 + 1)));
  std::vector<float> part(static_cast<size_t>(T) * 4, 0.f);
  parallel_for(T, [&](int t) {
    float mp = 0.f, mm = 0.f, mv = 0.f, probe = 0.f, vmin = 0.f;
    const long b = split_begin(len, T, t), e = split_begin(len, T, t + 1);
#pragma omp simd reduction(max : mp, mm, mv) reduction(+ : probe) reduction(min : vmin)
    for (long i = b; i < e; ++i) {
      probe += (p[i] - p[i]) + (m[i] - m[i]) + (v[i] - v[i]);  // NaN exactly when some value is NaN or +-Inf
      mp = std::max(mp, std::fabs(p[i]));
      mm = std::max(mm, std::fabs(m[i]));
      mv = std::max(mv, v[i]);
      vmin = std::min(vmin, v[i]);
    }
    part[t * 4] = mp;
    part[t * 4 + 1] = mm;
    part[t * 4 + 2] = mv;
    part[t * 4 + 3] = (probe == 0.f && vmin >= 0.f) ? 0.f : 1.f;
  });
  ArrayBounds b{0, 0, 0};
  bool ok = true;
  for (int t = 0; t < T; ++t) {
    b.p = std::max<double>(b.p, part[t * 4]);
    b.m = std::max<double>(b.m, part[t * 4 + 1]);
    b.v = std::max<double>(b.v, part[t * 4 + 2]);
    ok = ok && part[t * 4 + 3] == 0.f;
  }
  *out = b;
  return ok;
}

}  // namespace cmsae

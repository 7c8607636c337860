#include "pair_loss.h"

#include <cmath>
#include <vector>

#include "../common/errors.h"

namespace cmsae {
namespace {

// Slot of the largest positive value of a row (ties: the smaller latent index); -1 when none is positive.
int argmax_slot(const int32_t* idx, const float* val, int k) {
  int best = -1;
  for (int s = 0; s < k; ++s) {
    if (!(val[s] > 0.f)) continue;
    if (best < 0 || val[s] > val[best] || (val[s] == val[best] && idx[s] < idx[best])) best = s;
  }
  return best;
}

}  // namespace

double pair_code_loss(PairLoss kind, const int32_t* idx, const float* val, int k, long n, int m, double scale,
                      float* dval) {
  if (kind == PairLoss::None || n <= 0) return 0.0;
  require(m > 0 && k > 0, "ERR_ARG", "pair loss: m and k must be >= 1");
  // slot_of[j]: the y row's slot holding latent j (stamped by pair, no clearing between pairs).
  std::vector<int32_t> slot_of(static_cast<size_t>(m), -1), stamp(static_cast<size_t>(m), -1);
  const double inv_n = 1.0 / static_cast<double>(n);
  double total = 0;
  for (long b = 0; b < n; ++b) {
    const int32_t* xi = idx + b * k;
    const float* xv = val + b * k;
    const int32_t* yi = idx + (n + b) * k;
    const float* yv = val + (n + b) * k;
    float* gx = dval ? dval + b * k : nullptr;
    float* gy = dval ? dval + (n + b) * k : nullptr;
    for (int s = 0; s < k; ++s)
      if (yv[s] != 0.f) {
        slot_of[yi[s]] = s;
        stamp[yi[s]] = static_cast<int32_t>(b);
      }
    auto y_slot = [&](int32_t j) { return stamp[j] == b ? slot_of[j] : -1; };
    if (kind == PairLoss::IsoInner) {
      double dot = 0;
      for (int s = 0; s < k; ++s) {
        if (xv[s] == 0.f) continue;
        const int t = y_slot(xi[s]);
        if (t < 0) continue;
        dot += static_cast<double>(xv[s]) * yv[t];
        if (gx) {
          gx[s] += static_cast<float>(-scale * inv_n * yv[t]);
          gy[t] += static_cast<float>(-scale * inv_n * xv[s]);
        }
      }
      total -= dot * inv_n;
    } else if (kind == PairLoss::Group) {
      // Latents active on either side; every other latent contributes the constant sqrt(1e-12).
      long active_union = 0;
      double sum = 0;
      for (int s = 0; s < k; ++s) {
        if (xv[s] == 0.f) continue;
        const int t = y_slot(xi[s]);
        const double a = xv[s], c = t >= 0 ? yv[t] : 0.0;
        const double r = std::sqrt(a * a + c * c + 1e-12);
        sum += r;
        ++active_union;
        if (gx) {
          gx[s] += static_cast<float>(scale * inv_n * a / r);
          if (t >= 0) gy[t] += static_cast<float>(scale * inv_n * c / r);
        }
      }
      // y latents not active on the x side
      for (int t = 0; t < k; ++t) {
        if (yv[t] == 0.f) continue;
        bool in_x = false;
        for (int s = 0; s < k && !in_x; ++s) in_x = xv[s] != 0.f && xi[s] == yi[t];
        if (in_x) continue;
        const double c = yv[t];
        const double r = std::sqrt(c * c + 1e-12);
        sum += r;
        ++active_union;
        if (gy) gy[t] += static_cast<float>(scale * inv_n * c / r);
      }
      sum += static_cast<double>(m - active_union) * 1e-6;
      total += sum * inv_n;
    } else {  // Iso
      const int ax = argmax_slot(xi, xv, k), ay = argmax_slot(yi, yv, k);
      const int32_t mask_a = ax >= 0 ? xi[ax] : -1, mask_b = ay >= 0 ? yi[ay] : -1;
      auto kept = [&](int32_t j) { return j != mask_a && j != mask_b; };
      double dot = 0, uu = 0, vv = 0;
      for (int s = 0; s < k; ++s) {
        if (xv[s] == 0.f || !kept(xi[s])) continue;
        uu += static_cast<double>(xv[s]) * xv[s];
        const int t = y_slot(xi[s]);
        if (t >= 0) dot += static_cast<double>(xv[s]) * yv[t];
      }
      for (int t = 0; t < k; ++t)
        if (yv[t] != 0.f && kept(yi[t])) vv += static_cast<double>(yv[t]) * yv[t];
      const double nu = std::sqrt(uu), nv = std::sqrt(vv);
      const double mu = std::max(nu, 1e-8), mv = std::max(nv, 1e-8), D = mu * mv;
      const double c = dot / D;
      total -= c * inv_n;
      if (gx) {
        // dc/du_j = v_j / D - c u_j / (nu mu) (the second term only when nu > 1e-8); same for v.
        const double g = -scale * inv_n;
        for (int s = 0; s < k; ++s) {
          if (xv[s] == 0.f || !kept(xi[s])) continue;
          const int t = y_slot(xi[s]);
          double d = t >= 0 ? yv[t] / D : 0.0;
          if (nu > 1e-8) d -= c * xv[s] / (nu * mu);
          gx[s] += static_cast<float>(g * d);
        }
        for (int t = 0; t < k; ++t) {
          if (yv[t] == 0.f || !kept(yi[t])) continue;
          double u_j = 0;
          for (int s = 0; s < k; ++s)
            if (xv[s] != 0.f && xi[s] == yi[t]) u_j = xv[s];
          double d = u_j / D;
          if (nv > 1e-8) d -= c * yv[t] / (nv * mv);
          gy[t] += static_cast<float>(g * d);
        }
      }
    }
  }
  return total;
}

}  // namespace cmsae

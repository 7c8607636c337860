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

// One pair of rows (b of the x side, n + b of the y side), their gradient rows (null: loss only), and the y row's
// slot of each latent (slot_of stamped by pair: no clearing between pairs).
struct PairRows {
  const int32_t *xi, *yi;
  const float *xv, *yv;
  float *gx, *gy;
  int k;
  long b;
  const std::vector<int32_t>* slot_of;
  const std::vector<int32_t>* stamp;
  int y_slot(int32_t j) const { return (*stamp)[j] == b ? (*slot_of)[j] : -1; }
};

// -z_x . z_y / n (the paper's raw inner product); returns the pair's term of L.
double iso_inner_pair(const PairRows& p, double scale, double inv_n) {
  double dot = 0;
  for (int s = 0; s < p.k; ++s) {
    if (p.xv[s] == 0.f) continue;
    const int t = p.y_slot(p.xi[s]);
    if (t < 0) continue;
    dot += static_cast<double>(p.xv[s]) * p.yv[t];
    if (p.gx) {
      p.gx[s] += static_cast<float>(-scale * inv_n * p.yv[t]);
      p.gy[t] += static_cast<float>(-scale * inv_n * p.xv[s]);
    }
  }
  return -dot * inv_n;
}

// sum_j sqrt(z_x[j]^2 + z_y[j]^2 + 1e-12) / n over all m latents.
double group_pair(const PairRows& p, int m, double scale, double inv_n) {
  // Latents active on either side; every other latent contributes the constant sqrt(1e-12).
  long active_union = 0;
  double sum = 0;
  for (int s = 0; s < p.k; ++s) {
    if (p.xv[s] == 0.f) continue;
    const int t = p.y_slot(p.xi[s]);
    const double a = p.xv[s], c = t >= 0 ? p.yv[t] : 0.0;
    const double r = std::sqrt(a * a + c * c + 1e-12);
    sum += r;
    ++active_union;
    if (p.gx) {
      p.gx[s] += static_cast<float>(scale * inv_n * a / r);
      if (t >= 0) p.gy[t] += static_cast<float>(scale * inv_n * c / r);
    }
  }
  // y latents not active on the x side
  for (int t = 0; t < p.k; ++t) {
    if (p.yv[t] == 0.f) continue;
    bool in_x = false;
    for (int s = 0; s < p.k && !in_x; ++s) in_x = p.xv[s] != 0.f && p.xi[s] == p.yi[t];
    if (in_x) continue;
    const double c = p.yv[t];
    const double r = std::sqrt(c * c + 1e-12);
    sum += r;
    ++active_union;
    if (p.gy) p.gy[t] += static_cast<float>(scale * inv_n * c / r);
  }
  sum += static_cast<double>(m - active_union) * 1e-6;
  return sum * inv_n;
}

// -cos(mask . z_x, mask . z_y) / n, the mask zero at both rows' argmax (the authors' Iso-Energy).
double iso_pair(const PairRows& p, double scale, double inv_n) {
  const int k = p.k;
  const int32_t *xi = p.xi, *yi = p.yi;
  const float *xv = p.xv, *yv = p.yv;
  const int ax = argmax_slot(xi, xv, k), ay = argmax_slot(yi, yv, k);
  const int32_t mask_a = ax >= 0 ? xi[ax] : -1, mask_b = ay >= 0 ? yi[ay] : -1;
  auto kept = [&](int32_t j) { return j != mask_a && j != mask_b; };
  double dot = 0, uu = 0, vv = 0;
  for (int s = 0; s < k; ++s) {
    if (xv[s] == 0.f || !kept(xi[s])) continue;
    uu += static_cast<double>(xv[s]) * xv[s];
    const int t = p.y_slot(xi[s]);
    if (t >= 0) dot += static_cast<double>(xv[s]) * yv[t];
  }
  for (int t = 0; t < k; ++t)
    if (yv[t] != 0.f && kept(yi[t])) vv += static_cast<double>(yv[t]) * yv[t];
  const double nu = std::sqrt(uu), nv = std::sqrt(vv);
  const double mu = std::max(nu, 1e-8), mv = std::max(nv, 1e-8), D = mu * mv;
  const double c = dot / D;
  if (p.gx) {
    // dc/du_j = v_j / D - c u_j / (nu mu) (the second term only when nu > 1e-8); same for v.
    const double g = -scale * inv_n;
    for (int s = 0; s < k; ++s) {
      if (xv[s] == 0.f || !kept(xi[s])) continue;
      const int t = p.y_slot(xi[s]);
      double d = t >= 0 ? yv[t] / D : 0.0;
      if (nu > 1e-8) d -= c * xv[s] / (nu * mu);
      p.gx[s] += static_cast<float>(g * d);
    }
    for (int t = 0; t < k; ++t) {
      if (yv[t] == 0.f || !kept(yi[t])) continue;
      double u_j = 0;
      for (int s = 0; s < k; ++s)
        if (xv[s] != 0.f && xi[s] == yi[t]) u_j = xv[s];
      double d = u_j / D;
      if (nv > 1e-8) d -= c * yv[t] / (nv * mv);
      p.gy[t] += static_cast<float>(g * d);
    }
  }
  return -c * inv_n;
}

}  // namespace

double pair_code_loss(PairLoss kind, const int32_t* idx, const float* val, int k, long n, int m, double scale,
                      float* dval) {
  if (kind == PairLoss::None || n <= 0) return 0.0;
  require(m > 0 && k > 0, "ERR_ARG", "pair loss: m and k must be >= 1");
  std::vector<int32_t> slot_of(static_cast<size_t>(m), -1), stamp(static_cast<size_t>(m), -1);
  const double inv_n = 1.0 / static_cast<double>(n);
  double total = 0;
  for (long b = 0; b < n; ++b) {
    PairRows p{idx + b * k, idx + (n + b) * k, val + b * k, val + (n + b) * k,
               dval ? dval + b * k : nullptr, dval ? dval + (n + b) * k : nullptr, k, b, &slot_of, &stamp};
    for (int s = 0; s < k; ++s)
      if (p.yv[s] != 0.f) {
        slot_of[p.yi[s]] = s;
        stamp[p.yi[s]] = static_cast<int32_t>(b);
      }
    if (kind == PairLoss::IsoInner) total += iso_inner_pair(p, scale, inv_n);
    else if (kind == PairLoss::Group) total += group_pair(p, m, scale, inv_n);
    else total += iso_pair(p, scale, inv_n);
  }
  return total;
}

}  // namespace cmsae

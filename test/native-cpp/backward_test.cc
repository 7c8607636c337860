// The sparse backward (sae/backward.h) against a dense float64 reference written from the formulas:
//   dW_dec[j] = sum_(r,s: idx=j, val>0) val G_r  (+ AuxK: aux_val G_aux_r);
//   dpre = dval (+ extra_dval)  (AuxK: G_aux_r . W_dec[j]);   dW_enc[j] = sum dpre (x_r - b_dec);
//   db_enc[j] = sum dpre;   db_dec = sum_r G_r - sum_j db_enc[j] W_enc[j];
// and the decoder projection g_dec[j] -= (g_dec[j] . W_dec[j]) W_dec[j]. Entries with val = 0 give nothing.
// Each element is compared within the float32 rounding bound of its sum: 2 n 2^-24 sum|terms|, n the terms.
#include <algorithm>
#include <numeric>
#include <vector>

#include "check.h"
#include "common/thread_pool.h"
#include "sae/backward.h"

namespace {

using cmsae_test::Rng;
constexpr double kUnit = 0x1.0p-24;

struct Problem {
  int R, d, m, k, k_aux;
  bool extra;
  std::vector<float> W_enc, W_dec, b_dec, X, G, G_aux, dval, extra_dval, val, aux_val;  // W_* [m, d]
  std::vector<int32_t> idx, aux_idx;
};

// Distinct latents per row; about a fifth of the slots inactive (val 0, with a nonzero dval that must be ignored).
void fill_codes(Rng& rng, int R, int m, int k, std::vector<int32_t>& idx, std::vector<float>& val) {
  std::vector<int32_t> perm(m);
  for (int r = 0; r < R; ++r) {
    std::iota(perm.begin(), perm.end(), 0);
    for (int s = 0; s < k; ++s) {
      std::swap(perm[s], perm[s + rng.below(m - s)]);
      idx.push_back(perm[s]);
      val.push_back(rng.uniform() < 0.2 ? 0.f : static_cast<float>(0.1 + 2 * rng.uniform()));
    }
  }
}

Problem make_problem(uint64_t seed, int R, int d, int m, int k, int k_aux, bool extra) {
  Rng rng(seed);
  Problem p{R, d, m, k, k_aux, extra, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
  auto normals = [&](std::vector<float>& v, size_t n, double scale) {
    for (size_t i = 0; i < n; ++i) v.push_back(static_cast<float>(scale * rng.normal()));
  };
  normals(p.W_enc, static_cast<size_t>(m) * d, 1 / std::sqrt(d));
  normals(p.W_dec, static_cast<size_t>(m) * d, 1 / std::sqrt(d));
  normals(p.b_dec, d, 0.3);
  normals(p.X, static_cast<size_t>(R) * d, 1);
  normals(p.G, static_cast<size_t>(R) * d, 0.1);
  fill_codes(rng, R, m, k, p.idx, p.val);
  normals(p.dval, static_cast<size_t>(R) * k, 0.5);
  if (extra) normals(p.extra_dval, static_cast<size_t>(R) * k, 0.2);
  if (k_aux > 0) {
    normals(p.G_aux, static_cast<size_t>(R) * d, 0.1);
    fill_codes(rng, R, m, k_aux, p.aux_idx, p.aux_val);
  }
  return p;
}

struct Dense {
  std::vector<double> g_enc, g_dec, g_benc, g_bdec;      // [m, d], [m, d], [m], [d]
  std::vector<double> t_enc, t_dec, t_benc, t_bdec;      // the rounding bound of each element
  std::vector<bool> touched;                             // [m]
};

Dense dense_reference(const Problem& p) {
  const int d = p.d, m = p.m;
  Dense ref{std::vector<double>(static_cast<size_t>(m) * d), std::vector<double>(static_cast<size_t>(m) * d), std::vector<double>(m), std::vector<double>(d),
            std::vector<double>(static_cast<size_t>(m) * d), std::vector<double>(static_cast<size_t>(m) * d), std::vector<double>(m), std::vector<double>(d),
            std::vector<bool>(m, false)};
  std::vector<double> a_enc(static_cast<size_t>(m) * d), a_dec(static_cast<size_t>(m) * d), a_benc(m), a_bdec(d);  // sums of |terms|
  std::vector<int> count(m, 0);
  auto entry = [&](int r, int j, double v, double dpre, double dpre_mag, const float* g) {
    ref.touched[j] = true;
    ++count[j];
    for (int c = 0; c < d; ++c) {
      const size_t q = static_cast<size_t>(j) * d + c;
      ref.g_dec[q] += v * g[c];
      a_dec[q] += std::fabs(v * g[c]);
      ref.g_enc[q] += dpre * (static_cast<double>(p.X[static_cast<size_t>(r) * d + c]) - p.b_dec[c]);
      a_enc[q] += dpre_mag * (std::fabs(p.X[static_cast<size_t>(r) * d + c]) + std::fabs(p.b_dec[c]));
    }
    ref.g_benc[j] += dpre;
    a_benc[j] += dpre_mag;
  };
  for (int r = 0; r < p.R; ++r) {
    for (int s = 0; s < p.k; ++s) {
      const size_t q = static_cast<size_t>(r) * p.k + s;
      if (p.val[q] <= 0.f) continue;
      const double dpre = static_cast<double>(p.dval[q]) + (p.extra ? p.extra_dval[q] : 0.0);
      entry(r, p.idx[q], p.val[q], dpre, std::fabs(p.dval[q]) + (p.extra ? std::fabs(p.extra_dval[q]) : 0.0), &p.G[static_cast<size_t>(r) * d]);
    }
    for (int s = 0; s < p.k_aux; ++s) {
      const size_t q = static_cast<size_t>(r) * p.k_aux + s;
      if (p.aux_val[q] <= 0.f) continue;
      const int j = p.aux_idx[q];
      const float* g = &p.G_aux[static_cast<size_t>(r) * d];
      double dpre = 0, mag = 0;
      for (int c = 0; c < d; ++c) {
        dpre += static_cast<double>(g[c]) * p.W_dec[static_cast<size_t>(j) * d + c];
        mag += std::fabs(static_cast<double>(g[c]) * p.W_dec[static_cast<size_t>(j) * d + c]);
      }
      entry(r, j, p.aux_val[q], dpre, mag, g);
    }
  }
  int most = 0, n_touched = 0;
  for (int j = 0; j < m; ++j) {
    most = std::max(most, count[j]);
    n_touched += ref.touched[j];
  }
  for (int c = 0; c < d; ++c) {
    for (int r = 0; r < p.R; ++r) {
      ref.g_bdec[c] += p.G[static_cast<size_t>(r) * d + c];
      a_bdec[c] += std::fabs(p.G[static_cast<size_t>(r) * d + c]);
    }
    for (int j = 0; j < m; ++j) {
      ref.g_bdec[c] -= ref.g_benc[j] * p.W_enc[static_cast<size_t>(j) * d + c];
      a_bdec[c] += a_benc[j] * std::fabs(p.W_enc[static_cast<size_t>(j) * d + c]);
    }
  }
  // n roundings: the entries of a latent, the AuxK dot products (d), the b_dec term; for db_dec also the latents.
  const double n_lat = most + d + 2, n_bdec = p.R + n_touched + most + d + 2;
  for (size_t q = 0; q < ref.g_enc.size(); ++q) {
    ref.t_enc[q] = 2 * n_lat * kUnit * a_enc[q] + 1e-30;
    ref.t_dec[q] = 2 * n_lat * kUnit * a_dec[q] + 1e-30;
  }
  for (int j = 0; j < m; ++j) ref.t_benc[j] = 2 * n_lat * kUnit * a_benc[j] + 1e-30;
  for (int c = 0; c < d; ++c) ref.t_bdec[c] = 2 * n_bdec * kUnit * a_bdec[c] + 1e-30;
  return ref;
}

cmsae::SparseGrads run_backward(const Problem& p) {
  cmsae::BackwardInput in{p.W_enc.data(), p.W_dec.data(), p.b_dec.data(), p.d, p.m, p.X.data(), p.R, p.idx.data(), p.val.data(),
                          p.k, p.G.data(), p.dval.data(), p.extra ? p.extra_dval.data() : nullptr};
  if (p.k_aux > 0) {
    in.aux_idx = p.aux_idx.data();
    in.aux_val = p.aux_val.data();
    in.k_aux = p.k_aux;
    in.G_aux = p.G_aux.data();
  }
  cmsae::SparseGrads g;
  cmsae::sparse_backward(in, g);
  return g;
}

void expect_matches(const Problem& p, const Dense& ref, const cmsae::SparseGrads& g, const std::string& label) {
  const int d = p.d;
  std::vector<int32_t> want_touched;
  for (int j = 0; j < p.m; ++j)
    if (ref.touched[j]) want_touched.push_back(j);
  CHECK(g.touched == want_touched, label, ": touched latents (", g.touched.size(), " vs ", want_touched.size(), ")");
  for (int j = 0; j < p.m; ++j) {
    const int slot = g.slot[j];
    CHECK((slot >= 0) == ref.touched[j], label, ": slot of latent ", j);
    CHECK(std::fabs(g.g_benc[j] - ref.g_benc[j]) <= ref.t_benc[j], label, ": db_enc[", j, "] ", g.g_benc[j], " vs ", ref.g_benc[j]);
    if (slot < 0 || static_cast<size_t>(slot) >= g.touched.size() || g.touched[slot] != j) continue;
    for (int c = 0; c < d; ++c) {
      const size_t q = static_cast<size_t>(j) * d + c, o = static_cast<size_t>(slot) * d + c;
      CHECK(std::fabs(g.g_dec[o] - ref.g_dec[q]) <= ref.t_dec[q], label, ": dW_dec[", j, ", ", c, "] ", g.g_dec[o], " vs ", ref.g_dec[q]);
      CHECK(std::fabs(g.g_enc[o] - ref.g_enc[q]) <= ref.t_enc[q], label, ": dW_enc[", j, ", ", c, "] ", g.g_enc[o], " vs ", ref.g_enc[q]);
    }
  }
  for (int c = 0; c < d; ++c)
    CHECK(std::fabs(g.g_bdec[c] - ref.g_bdec[c]) <= ref.t_bdec[c], label, ": db_dec[", c, "] ", g.g_bdec[c], " vs ", ref.g_bdec[c]);
}

// g_dec[j] -= (g_dec[j] . w_j) w_j on the backward's own output, against the same in float64.
void expect_projection(const Problem& p, cmsae::SparseGrads& g, const std::string& label) {
  const int d = p.d;
  const std::vector<float> before(g.g_dec.data(), g.g_dec.data() + g.touched.size() * d);
  cmsae::project_decoder_grads(p.W_dec.data(), g);
  for (size_t i = 0; i < g.touched.size(); ++i) {
    const float* w = &p.W_dec[static_cast<size_t>(g.touched[i]) * d];
    const float* gb = &before[i * d];
    double dot = 0, mag = 0;
    for (int c = 0; c < d; ++c) {
      dot += static_cast<double>(gb[c]) * w[c];
      mag += std::fabs(static_cast<double>(gb[c]) * w[c]);
    }
    for (int c = 0; c < d; ++c) {
      const double want = gb[c] - dot * w[c];
      const double tol = 2 * (d + 3) * kUnit * (std::fabs(gb[c]) + mag * std::fabs(w[c])) + 1e-30;
      CHECK(std::fabs(g.g_dec[i * d + c] - want) <= tol, label, ": projected dW_dec[", g.touched[i], ", ", c, "] ", g.g_dec[i * d + c], " vs ", want);
    }
  }
}

struct Shape {
  int R, d, m, k, k_aux;
  bool extra;
};
const Shape kShapes[] = {
    {50, 37, 90, 6, 0, false},  // d not a multiple of any vector width
    {64, 48, 300, 8, 4, true},  // AuxK entries and extra dL/dval
    {1, 16, 8, 8, 0, true},     // one row, k = m
    {30, 5, 300, 3, 2, false},  // tiny d, most latents untouched
    {7, 1, 3, 2, 1, false},     // d = 1
};

void shapes_against_dense() {
  for (const Shape& s : kShapes) {
    const Problem p = make_problem(11 + s.R * 31 + s.m, s.R, s.d, s.m, s.k, s.k_aux, s.extra);
    const Dense ref = dense_reference(p);
    cmsae_test::for_each_simd_level([&](const char* level) {
      for (int threads : {1, 2, 3}) {
        cmsae::set_num_threads(threads);
        const std::string label = cmsae_test::join(s.R, "x", s.d, " m ", s.m, " k ", s.k, " aux ", s.k_aux, " (", level, ", ", threads, " thread(s))");
        cmsae::SparseGrads g = run_backward(p);
        expect_matches(p, ref, g, label);
        expect_projection(p, g, label);
      }
    });
  }
  cmsae::set_num_threads(2);
}

// Nothing active: no touched latent, db_enc = 0, db_dec = sum of G; a reused output holds nothing stale.
void nothing_active() {
  Problem p = make_problem(5, 12, 9, 20, 3, 0, true);
  cmsae::SparseGrads g = run_backward(p);  // fills g's buffers once
  std::fill(p.val.begin(), p.val.end(), 0.f);
  cmsae::BackwardInput in{p.W_enc.data(), p.W_dec.data(), p.b_dec.data(), p.d, p.m, p.X.data(), p.R, p.idx.data(), p.val.data(),
                          p.k, p.G.data(), p.dval.data(), p.extra_dval.data()};
  cmsae::sparse_backward(in, g);
  expect_matches(p, dense_reference(p), g, "all val 0, reused output");
  CHECK(g.touched.empty(), "no latent may be touched");
}

}  // namespace

int main() {
  return cmsae_test::run_cases("sparse_backward", {
                                                      {"random and awkward shapes vs a dense float64 reference, every SIMD level, 1-3 threads", shapes_against_dense},
                                                      {"no active entry", nothing_active},
                                                  });
}

// MS_j = (||E^T a~_j||^2 - sum a~_j^2) / ((sum a~_j)^2 - sum a~_j^2) per latent: posting lists per latent (rows in
// ascending order), then threads over blocks of latents, each latent's E^T a accumulated in a private row.
#include "monosemanticity.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../common/errors.h"
#include "../common/memory.h"
#include "../common/thread_pool.h"

namespace cmsae {
namespace {

// JavaScript's spelling of a non-finite number (the message matches the checks on the TypeScript side).
std::string js_number(float v) {
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "Infinity" : "-Infinity";
}

// 1 / max(||row||, 1e-12) per external row (squares in float64, column order); ERR_NONFINITE at the first bad value.
std::vector<double> inverse_row_norms(const float* x, long rows, int d) {
  std::vector<double> inv(static_cast<size_t>(rows));
  for (long r = 0; r < rows; ++r) {
    const float* p = x + static_cast<size_t>(r) * d;
    double s = 0.0;
    for (int c = 0; c < d; ++c) {
      if (!std::isfinite(p[c])) fail("ERR_NONFINITE", "row " + std::to_string(r) + " of the external embeddings holds " + js_number(p[c]));
      s += static_cast<double>(p[c]) * p[c];
    }
    inv[static_cast<size_t>(r)] = 1.0 / std::max(std::sqrt(s), 1e-12);
  }
  return inv;
}

// The rows where each latent is active, with its activation there (the row's slots of that latent summed in
// slot order, in float64; rows where the sum is 0 are left out), in row order: CSR over latents.
struct Postings {
  std::vector<long> begin, end;  // [m]
  std::vector<int32_t> row;
  std::vector<double> value;
};

Postings postings(const CodeRows& c, long m) {
  Postings p;
  std::vector<int32_t> last(static_cast<size_t>(m), -1);  // the last row each latent was seen in
  std::vector<long> count(static_cast<size_t>(m) + 1, 0);
  for (long r = 0; r < c.rows; ++r)
    for (int s = 0; s < c.k; ++s) {
      const long q = r * c.k + s;
      if (c.val[q] == 0.f) continue;
      const int32_t j = c.idx[q];
      if (j < 0 || j >= m)
        fail("ERR_RANGE", "codes.indices has latent " + std::to_string(j) + " at row " + std::to_string(r) + ", slot " +
                              std::to_string(s) + ", outside [0, m = " + std::to_string(m) + ")");
      if (last[j] != r) last[j] = static_cast<int32_t>(r), ++count[static_cast<size_t>(j) + 1];
    }
  for (long j = 0; j < m; ++j) count[j + 1] += count[j];
  p.begin.assign(count.begin(), count.end() - 1);
  p.row.resize(static_cast<size_t>(count[m]));
  p.value.resize(static_cast<size_t>(count[m]));
  std::vector<long> next = p.begin;
  std::fill(last.begin(), last.end(), -1);
  for (long r = 0; r < c.rows; ++r)
    for (int s = 0; s < c.k; ++s) {
      const long q = r * c.k + s;
      if (c.val[q] == 0.f) continue;
      const int32_t j = c.idx[q];
      // Inputs are read twice: codes changed in between (an async caller's) must not write out of bounds.
      if (j < 0 || j >= m || (last[j] != r && next[j] >= count[static_cast<size_t>(j) + 1]))
        fail("ERR_STATE", "the codes changed while their monosemanticity was computed: keep them unchanged until it returns");
      if (last[j] == r) {
        p.value[next[j] - 1] += c.val[q];  // the same latent again in this row
        continue;
      }
      last[j] = static_cast<int32_t>(r);
      p.row[next[j]] = static_cast<int32_t>(r);
      p.value[next[j]++] = c.val[q];
    }
  p.end.resize(static_cast<size_t>(m));
  for (long j = 0; j < m; ++j) {  // drop rows whose slots of j summed to 0 (the latent is silent there)
    long w = p.begin[j];
    for (long q = p.begin[j]; q < next[j]; ++q)
      if (p.value[q] != 0.0) p.row[w] = p.row[q], p.value[w++] = p.value[q];
    p.end[j] = w;
  }
  return p;
}

struct Inputs {
  const float* x;
  int d;
  long n;
  const std::vector<double>& inv;
  const std::vector<double>& esum;  // E^T 1
};

// u += w * E_r (E_r = external row r times its inverse norm, rounded to float64 before the product).
inline void add_row(double* u, double w, const Inputs& in, int32_t r) {
  const float* p = in.x + static_cast<size_t>(r) * in.d;
  const double inv = in.inv[static_cast<size_t>(r)];
  for (int c = 0; c < in.d; ++c) u[c] += w * (static_cast<double>(p[c]) * inv);
}

// The score of one latent from its postings [b, e) (fires = e - b >= min_fires); u: a scratch row of d doubles.
double latent_score(const Postings& p, long b, long e, const Inputs& in, double* u) {
  const bool every_row = e - b == in.n;
  double sa = 0.0, sa2 = 0.0, mn = std::numeric_limits<double>::infinity(), mx = -mn;
  std::fill(u, u + in.d, 0.0);
  for (long q = b; q < e; ++q) {
    const double v = p.value[q];
    sa += v;
    sa2 += v * v;
    if (v < mn) mn = v;
    if (v > mx) mx = v;
    if (!every_row) add_row(u, v, in, p.row[q]);
  }
  double s1 = 0.0, s2 = 0.0, quad = 0.0;
  if (every_row) {
    // Active in every row: the minimum is a row's own activation; expanding (a - min)^2 would lose precision
    // when the values barely vary, so the normalized sums are taken directly.
    const double range = std::max(mx - mn, 1e-12);
    for (long q = b; q < e; ++q) {
      const double t = (p.value[q] - mn) / range;
      s1 += t;
      s2 += t * t;
      add_row(u, t, in, p.row[q]);
    }
    for (int c = 0; c < in.d; ++c) quad += u[c] * u[c];
  } else {
    // Rows where the latent is silent have activation 0 (the minimum for non-negative codes).
    const double lo = std::min(0.0, mn);
    const double range = std::max(std::max(0.0, mx) - lo, 1e-12);
    const double n = static_cast<double>(in.n);
    s1 = (sa - n * lo) / range;
    s2 = (sa2 - 2 * lo * sa + n * lo * lo) / (range * range);
    for (int c = 0; c < in.d; ++c) {
      const double t = (u[c] - lo * in.esum[c]) / range;
      quad += t * t;
    }
  }
  const double den = s1 * s1 - s2;
  return den <= 1e-12 ? 0.0 : (quad - s2) / den;
}

}  // namespace

// MS_j = (||E^T a~_j||^2 - sum a~_j^2) / ((sum a~_j)^2 - sum a~_j^2) for every latent j with >= min_fires nonzero slots.
void monosemanticity_scores(const CodeRows& codes, const float* external, int d_ext, long m, long min_fires, double* scores,
                            double* fires) {
  require(codes.rows >= 0 && codes.k >= 1 && d_ext >= 0 && m >= 1, "ERR_SHAPE", "monosemanticity needs rows >= 0, k >= 1, d >= 0 and m >= 1");
  require(min_fires >= 1, "ERR_ARG", "minFires must be an integer >= 1, got " + std::to_string(min_fires));
  require(codes.rows <= 0x7fffffffL, "ERR_SHAPE", "at most 2^31 - 1 rows");
  const long n = codes.rows;
  require_memory(static_cast<double>(n) * (codes.k * 12.0 + 8) + static_cast<double>(m) * 36 + static_cast<double>(num_threads()) * d_ext * 8,
                 "the monosemanticity scores");
  const std::vector<double> inv = inverse_row_norms(external, n, d_ext);
  std::vector<double> esum(static_cast<size_t>(d_ext), 0.0);
  for (long r = 0; r < n; ++r) {
    const float* p = external + static_cast<size_t>(r) * d_ext;
    for (int c = 0; c < d_ext; ++c) esum[c] += static_cast<double>(p[c]) * inv[static_cast<size_t>(r)];
  }
  const Postings p = postings(codes, m);
  const Inputs in{external, d_ext, n, inv, esum};
  constexpr long kLatentsPerTask = 64;
  const long n_tasks = (m + kLatentsPerTask - 1) / kLatentsPerTask;
  parallel_for(static_cast<int>(n_tasks), [&](int t) {
    std::vector<double> u(static_cast<size_t>(d_ext));
    const long j1 = std::min(m, (t + 1) * kLatentsPerTask);
    for (long j = t * kLatentsPerTask; j < j1; ++j) {
      const long b = p.begin[j], e = p.end[j];
      fires[j] = static_cast<double>(e - b);
      scores[j] = e - b < min_fires ? std::numeric_limits<double>::quiet_NaN() : latent_score(p, b, e, in, u.data());
    }
  });
}

}  // namespace cmsae

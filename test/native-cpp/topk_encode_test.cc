// The fused Top-K encode (sae/topk_encode.h) against a plain float64 reference:
//   pre[r, j] = sum_i (x[r, i] - b_dec[i]) W[j, i] + b_enc[j];  keep the k largest pre > floor (ties: smaller
//   index), best first; slots left over get value 0 and the smallest unused latent indices.
// On grid data (small multiples of powers of two) every float32 sum is exact in any order, so the codes must
// equal the reference exactly, ties included. On generic data the values may differ by the float32 rounding
// bound, and a latent may be exchanged only for one within that bound.
#include <algorithm>
#include <numeric>
#include <vector>

#include "check.h"
#include "common/aligned.h"
#include "common/thread_pool.h"
#include "sae/kernels.h"
#include "sae/topk_encode.h"

namespace {

using cmsae_test::Rng;

struct Problem {
  int rows, d, m, k;
  std::vector<float> W, b_enc, b_dec, x;  // W [m, d] latent-major
};

struct Codes {
  std::vector<int32_t> idx;
  std::vector<float> val;
};

// Selection of one row's reference values (value desc, index asc) among the latents `allowed` selects.
template <class Allowed>
void select_row(const std::vector<double>& pre, int m, int k, double floor, Allowed allowed, int32_t* idx, float* val) {
  std::vector<int> order;
  for (int j = 0; j < m; ++j)
    if (allowed(j) && pre[j] > floor) order.push_back(j);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return pre[a] > pre[b]; });
  if (static_cast<int>(order.size()) > k) order.resize(k);
  std::vector<bool> used(m, false);
  for (size_t s = 0; s < order.size(); ++s) {
    idx[s] = order[s];
    val[s] = static_cast<float>(pre[order[s]]);
    used[order[s]] = true;
  }
  int next = 0;
  for (int s = static_cast<int>(order.size()); s < k; ++s) {
    while (used[next]) ++next;
    idx[s] = next;
    val[s] = 0.f;
    used[next] = true;
  }
}

std::vector<double> pre_row(const Problem& p, int r) {
  std::vector<double> pre(p.m);
  for (int j = 0; j < p.m; ++j) {
    double s = p.b_enc[j];
    for (int i = 0; i < p.d; ++i) s += (static_cast<double>(p.x[static_cast<size_t>(r) * p.d + i]) - p.b_dec[i]) * p.W[static_cast<size_t>(j) * p.d + i];
    pre[j] = s;
  }
  return pre;
}

// Rounding bound of one float32 pre-activation: the d products and the sums (x - b_dec, + b_enc) carry at most
// (d + 2) roundings of unit 2^-24 relative to sum |x - b_dec| |W| + |b_enc| (a first-order bound, doubled).
double rounding_bound(const Problem& p, int r, int j) {
  double mag = std::fabs(p.b_enc[j]);
  for (int i = 0; i < p.d; ++i)
    mag += std::fabs(static_cast<double>(p.x[static_cast<size_t>(r) * p.d + i]) - p.b_dec[i]) * std::fabs(p.W[static_cast<size_t>(j) * p.d + i]);
  return 2.0 * (p.d + 2) * 0x1.0p-24 * mag;
}

Codes encode(const Problem& p, float floor, bool prepacked, const cmsae::AuxSelect* aux = nullptr) {
  cmsae::EncoderView enc{p.W.data(), p.b_enc.data(), p.b_dec.data(), p.d, p.m};
  const int nr = cmsae::kernels().nr;
  const long panels = (p.m + nr - 1) / nr;
  cmsae::AlignedBuffer<float> Wp(static_cast<size_t>(panels) * nr * p.d), bp(static_cast<size_t>(panels) * nr);
  if (prepacked) {
    cmsae::pack_encoder_panels(enc, 0, panels, nr, Wp.data(), bp.data());
    enc.packed_W = Wp.data();
    enc.packed_bias = bp.data();
    enc.packed_nr = nr;
  }
  Codes c{std::vector<int32_t>(static_cast<size_t>(p.rows) * p.k), std::vector<float>(static_cast<size_t>(p.rows) * p.k)};
  cmsae::topk_encode(enc, p.x.data(), p.rows, p.k, floor, c.idx.data(), c.val.data(), aux);
  return c;
}

// Exact comparison (grid data): the same indices and values slot by slot.
void expect_exact(const Problem& p, const Codes& got, const Codes& want, const std::string& label) {
  for (size_t q = 0; q < want.idx.size(); ++q) {
    CHECK(got.idx[q] == want.idx[q] && got.val[q] == want.val[q], label, " row ", q / p.k, " slot ", q % p.k, ": got (",
          got.idx[q], ", ", got.val[q], ") want (", want.idx[q], ", ", want.val[q], ")");
  }
}

// Generic data: slot values equal the reference's sorted values within the rounding bound (an order statistic
// moves no more than the values do), every chosen latent's reference value matches the value reported for it,
// and no latent repeats within a row.
void expect_within_rounding(const Problem& p, float floor, const Codes& got, const std::string& label) {
  for (int r = 0; r < p.rows; ++r) {
    const std::vector<double> pre = pre_row(p, r);
    std::vector<int32_t> ridx(p.k);
    std::vector<float> rval(p.k);
    select_row(pre, p.m, p.k, floor, [](int) { return true; }, ridx.data(), rval.data());
    double tol = 0;
    for (int j = 0; j < p.m; ++j) tol = std::max(tol, rounding_bound(p, r, j));
    std::vector<bool> seen(p.m, false);
    for (int s = 0; s < p.k; ++s) {
      const size_t q = static_cast<size_t>(r) * p.k + s;
      const int32_t j = got.idx[q];
      CHECK(j >= 0 && j < p.m && !seen[j], label, " row ", r, " slot ", s, ": bad or repeated latent ", j);
      if (j < 0 || j >= p.m) continue;
      seen[j] = true;
      CHECK(std::fabs(got.val[q] - rval[s]) <= tol, label, " row ", r, " slot ", s, ": value ", got.val[q], " reference ", rval[s]);
      const double own = pre[j] > floor ? pre[j] : 0.0;
      CHECK(std::fabs(got.val[q] - own) <= 2 * tol, label, " row ", r, " slot ", s, ": latent ", j, " reported ", got.val[q],
            " but its pre-activation is ", pre[j]);
    }
  }
}

Problem grid_problem(Rng& rng, int rows, int d, int m, int k, int lim) {
  Problem p{rows, d, m, k, {}, {}, {}, {}};
  for (int i = 0; i < m * d; ++i) p.W.push_back(rng.grid(lim, 16) / static_cast<float>(lim));
  for (int j = 0; j < m; ++j) p.b_enc.push_back(rng.grid(1, 8));
  for (int i = 0; i < d; ++i) p.b_dec.push_back(rng.grid(1, 8));
  for (int i = 0; i < rows * d; ++i) p.x.push_back(rng.grid(2, 8));
  return p;
}

Problem normal_problem(Rng& rng, int rows, int d, int m, int k) {
  Problem p{rows, d, m, k, {}, {}, {}, {}};
  for (int i = 0; i < m * d; ++i) p.W.push_back(static_cast<float>(rng.normal() / std::sqrt(d)));
  for (int j = 0; j < m; ++j) p.b_enc.push_back(static_cast<float>(0.1 * rng.normal()));
  for (int i = 0; i < d; ++i) p.b_dec.push_back(static_cast<float>(0.1 * rng.normal()));
  for (int i = 0; i < rows * d; ++i) p.x.push_back(static_cast<float>(rng.normal()));
  return p;
}

Codes reference(const Problem& p, float floor) {
  Codes c{std::vector<int32_t>(static_cast<size_t>(p.rows) * p.k), std::vector<float>(static_cast<size_t>(p.rows) * p.k)};
  for (int r = 0; r < p.rows; ++r)
    select_row(pre_row(p, r), p.m, p.k, floor, [](int) { return true; }, c.idx.data() + static_cast<size_t>(r) * p.k,
               c.val.data() + static_cast<size_t>(r) * p.k);
  return c;
}

struct Shape {
  int rows, d, m, k;
};

// Random and awkward shapes: m not a multiple of any panel width, k = m, k = 1, rows = 1, d = 1, tiny d.
const Shape kShapes[] = {{37, 29, 300, 7}, {1, 64, 1000, 32}, {5, 16, 40, 40}, {9, 3, 33, 5},
                         {70, 17, 129, 1}, {13, 1, 17, 4},    {4, 40, 257, 64}};

void each_setting(const std::function<void(const std::string&, bool)>& fn) {
  cmsae_test::for_each_simd_level([&](const char* level) {
    for (int threads : {1, 3}) {
      cmsae::set_num_threads(threads);
      for (bool prepacked : {false, true})
        fn(cmsae_test::join(level, ", ", threads, " thread(s), ", prepacked ? "pre-packed" : "packed on the fly"), prepacked);
    }
  });
  cmsae::set_num_threads(2);
}

void grid_shapes_exact() {
  Rng rng(1);
  for (const Shape& s : kShapes) {
    const Problem p = grid_problem(rng, s.rows, s.d, s.m, s.k, 1);
    const Codes want = reference(p, 0.f);
    each_setting([&](const std::string& how, bool prepacked) {
      expect_exact(p, encode(p, 0.f, prepacked), want, cmsae_test::join("grid ", s.rows, "x", s.d, "x", s.m, " k ", s.k, " (", how, ")"));
    });
  }
}

// Coarse values (x, W in {-1, 0, 1}, b = 0): most pre-activations tie, many rows have fewer than k positives.
// Duplicated encoder rows tie bit for bit wherever they sit in a panel.
void ties_and_fill() {
  Rng rng(2);
  Problem p{23, 5, 70, 9, {}, {}, {}, {}};
  for (int i = 0; i < p.m * p.d; ++i) p.W.push_back(static_cast<float>(rng.below(3) - 1));
  for (int j = 40; j < p.m; ++j) std::copy_n(p.W.begin() + (j - 40) * p.d, p.d, p.W.begin() + j * p.d);
  p.b_enc.assign(p.m, 0.f);
  p.b_dec.assign(p.d, 0.f);
  for (int i = 0; i < p.rows * p.d; ++i) p.x.push_back(static_cast<float>(rng.below(3) - 1));
  std::fill_n(p.x.begin(), p.d, 0.f);  // row 0: nothing positive, every slot filled
  const Codes want = reference(p, 0.f);
  for (int s = 0; s < p.k; ++s) CHECK(want.idx[s] == s && want.val[s] == 0.f, "reference fill of an all-zero row");
  each_setting([&](const std::string& how, bool prepacked) { expect_exact(p, encode(p, 0.f, prepacked), want, "ties (" + how + ")"); });
  // A threshold above 0 (the BatchTopK inference path): only values > floor count.
  const Codes want_floor = reference(p, 1.f);
  each_setting([&](const std::string& how, bool prepacked) { expect_exact(p, encode(p, 1.f, prepacked), want_floor, "floor 1 (" + how + ")"); });
}

void normal_data_within_rounding() {
  Rng rng(3);
  for (const Shape& s : kShapes) {
    const Problem p = normal_problem(rng, s.rows, s.d, s.m, s.k);
    each_setting([&](const std::string& how, bool prepacked) {
      expect_within_rounding(p, 0.f, encode(p, 0.f, prepacked), cmsae_test::join("normal ", s.rows, "x", s.d, "x", s.m, " k ", s.k, " (", how, ")"));
    });
  }
}

// More rows than one encode pass holds (8192), with the AuxK selection among dead latents alongside.
void many_rows_with_aux() {
  Rng rng(4);
  Problem p = grid_problem(rng, 8200, 6, 45, 3, 1);
  std::vector<uint8_t> dead(p.m, 0);
  for (int j = 0; j < p.m; j += 3) dead[j] = 1;
  const int k_aux = 4;
  std::vector<int32_t> want_idx(static_cast<size_t>(p.rows) * k_aux), got_idx(want_idx.size());
  std::vector<float> want_val(want_idx.size()), got_val(want_idx.size());
  for (int r = 0; r < p.rows; ++r)
    select_row(pre_row(p, r), p.m, k_aux, 0.0, [&](int j) { return dead[j] != 0; }, want_idx.data() + static_cast<size_t>(r) * k_aux,
               want_val.data() + static_cast<size_t>(r) * k_aux);
  const Codes want = reference(p, 0.f);
  each_setting([&](const std::string& how, bool prepacked) {
    cmsae::AuxSelect aux{dead.data(), k_aux, got_idx.data(), got_val.data()};
    expect_exact(p, encode(p, 0.f, prepacked, &aux), want, "8200 rows (" + how + ")");
    for (size_t q = 0; q < want_idx.size(); ++q)
      CHECK(got_idx[q] == want_idx[q] && got_val[q] == want_val[q], "aux (", how, ") row ", q / k_aux, " slot ", q % k_aux, ": got (",
            got_idx[q], ", ", got_val[q], ") want (", want_idx[q], ", ", want_val[q], ")");
  });
}

// One row and few latent blocks: fewer work items than threads, repeated so that concurrent items meet.
void more_threads_than_items() {
  Rng rng(5);
  const Problem p = grid_problem(rng, 1, 64, 1000, 32, 1);
  const Codes want = reference(p, 0.f);
  cmsae_test::for_each_simd_level([&](const char* level) {
    for (int threads : {3, 4, 7}) {
      cmsae::set_num_threads(threads);
      for (int rep = 0; rep < 1000; ++rep) expect_exact(p, encode(p, 0.f, rep % 2 == 1), want, cmsae_test::join("1x64x1000 k 32 (", level, ", ", threads, " threads, rep ", rep, ")"));
    }
  });
  cmsae::set_num_threads(2);
}

}  // namespace

int main() {
  return cmsae_test::run_cases("topk_encode", {
                                                  {"grid data, random and awkward shapes: exact codes", grid_shapes_exact},
                                                  {"ties, all-zero rows (fill) and a floor above 0: exact codes", ties_and_fill},
                                                  {"normal data: values within the float32 rounding bound", normal_data_within_rounding},
                                                  {"8200 rows (two passes) with AuxK among dead latents: exact", many_rows_with_aux},
                                                  {"one row, more threads than work items, repeated: exact", more_threads_than_items},
                                              });
}

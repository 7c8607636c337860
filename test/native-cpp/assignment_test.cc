// The linear assignment (lap/assignment.h: dense and certified sparse solvers) against brute force over every
// injection of the smaller side into the larger (n <= 7): optimum = min (or max) over injections p of
// sum_i c[i, p(i)], forbidden entries (+Inf minimizing, -Inf maximizing) excluded; no injection: ERR_INFEASIBLE.
// Costs on a grid of quarters make every sum exact, so objectives must be equal, ties (many) included.
#include <algorithm>
#include <limits>
#include <numeric>
#include <optional>
#include <vector>

#include "check.h"
#include "common/errors.h"
#include "lap/assignment.h"

namespace {

using cmsae_test::Rng;

struct Matrix {
  long rows, cols;
  std::vector<double> c;  // row-major
  double at(long i, long j) const { return c[static_cast<size_t>(i * cols + j)]; }
};

// Best objective over all injections of rows into columns (rows <= cols) or columns into rows; nullopt: none.
std::optional<double> brute_force(const Matrix& a, bool maximize) {
  const bool by_rows = a.rows <= a.cols;
  const long small = by_rows ? a.rows : a.cols, large = by_rows ? a.cols : a.rows;
  std::vector<long> perm(large);
  std::iota(perm.begin(), perm.end(), 0);
  std::optional<double> best;
  // Every permutation of the larger side; its first `small` entries are the injection (repeats are harmless).
  do {
    double s = 0;
    bool allowed = true;
    for (long t = 0; t < small && allowed; ++t) {
      const double v = by_rows ? a.at(t, perm[t]) : a.at(perm[t], t);
      allowed = std::isfinite(v);
      s += v;
    }
    if (allowed && (!best || (maximize ? s > *best : s < *best))) best = s;
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best;
}

cmsae::AssignmentResult solve(const Matrix& a, bool maximize, bool sparse, bool f32, std::vector<float>& f32_store) {
  cmsae::AssignmentInput in;
  if (f32) {
    f32_store.assign(a.c.begin(), a.c.end());
    in.f32 = f32_store.data();
  } else {
    in.f64 = a.c.data();
  }
  in.rows = a.rows;
  in.cols = a.cols;
  in.maximize = maximize;
  if (!sparse) return cmsae::solve_assignment_dense(in);
  return cmsae::solve_assignment_sparse(in, 1, 50);  // one candidate per row and column: the pricing rounds must add the rest
}

// A valid matching of the smaller side, its objective equal to the brute-force optimum and to the sum of its
// entries, and duals that certify it.
void expect_optimal(const Matrix& a, bool maximize, const std::string& label) {
  const std::optional<double> best = brute_force(a, maximize);
  for (bool sparse : {false, true})
    for (bool f32 : {false, true}) {
      const std::string how = cmsae_test::join(label, sparse ? " sparse" : " dense", f32 ? " f32" : " f64", maximize ? " max" : " min");
      std::vector<float> store;
      if (!best) {
        bool infeasible = false;
        try {
          solve(a, maximize, sparse, f32, store);
        } catch (const cmsae::Error& e) {
          infeasible = e.code() == "ERR_INFEASIBLE";
        }
        CHECK(infeasible, how, ": no injection exists, expected ERR_INFEASIBLE");
        continue;
      }
      const cmsae::AssignmentResult r = solve(a, maximize, sparse, f32, store);
      CHECK(static_cast<long>(r.row_to_col.size()) == a.rows && static_cast<long>(r.col_to_row.size()) == a.cols, how, ": sizes");
      long assigned = 0;
      double sum = 0;
      std::vector<bool> used(a.cols, false);
      for (long i = 0; i < a.rows; ++i) {
        const int32_t j = r.row_to_col[i];
        if (j < 0) continue;
        CHECK(j < a.cols && !used[j] && r.col_to_row[j] == i, how, ": row ", i, " -> column ", j, " is not a matching");
        if (j >= a.cols || used[j]) continue;
        used[j] = true;
        ++assigned;
        sum += a.at(i, j);
      }
      CHECK(assigned == std::min(a.rows, a.cols), how, ": ", assigned, " pairs assigned");
      CHECK(sum == *best && r.objective == *best, how, ": objective ", r.objective, " (entries sum ", sum, ") vs brute force ", *best);
      cmsae::AssignmentInput in;
      if (f32)
        in.f32 = store.data();
      else
        in.f64 = a.c.data();
      in.rows = a.rows;
      in.cols = a.cols;
      in.maximize = maximize;
      const cmsae::Certificate cert = cmsae::certify_assignment(in, r);
      CHECK(cert.max_violation <= 1e-9 && cert.gap <= 1e-9, how, ": certificate violation ", cert.max_violation, " gap ", cert.gap);
    }
}

Matrix random_matrix(Rng& rng, long rows, long cols, int lim) {
  Matrix a{rows, cols, {}};
  for (long q = 0; q < rows * cols; ++q) a.c.push_back(rng.grid(lim, 4));
  return a;
}

void square_and_rectangular() {
  Rng rng(7);
  for (long n = 1; n <= 7; ++n)
    for (int rep = 0; rep < 3; ++rep) {
      const Matrix a = random_matrix(rng, n, n, rep == 0 ? 1 : 8);  // lim 1: values in {-1, -0.75, ..., 1}, heavy ties
      expect_optimal(a, false, cmsae_test::join(n, "x", n, " rep ", rep));
      expect_optimal(a, true, cmsae_test::join(n, "x", n, " rep ", rep));
    }
  for (auto [rows, cols] : {std::pair<long, long>{2, 7}, {3, 6}, {6, 3}, {7, 2}, {1, 5}, {5, 1}, {4, 7}}) {
    const Matrix a = random_matrix(rng, rows, cols, 4);
    expect_optimal(a, false, cmsae_test::join(rows, "x", cols));
    expect_optimal(a, true, cmsae_test::join(rows, "x", cols));
  }
}

void forbidden_entries() {
  Rng rng(8);
  const double inf = std::numeric_limits<double>::infinity();
  for (long n : {3L, 5L, 7L})
    for (bool maximize : {false, true}) {
      Matrix a = random_matrix(rng, n, n, 4);
      for (double& v : a.c)
        if (rng.uniform() < 0.4) v = maximize ? -inf : inf;
      expect_optimal(a, maximize, cmsae_test::join(n, "x", n, " forbidden"));
    }
  // One row with every entry forbidden: infeasible.
  Matrix a = random_matrix(rng, 4, 4, 4);
  for (long j = 0; j < 4; ++j) a.c[static_cast<size_t>(2 * 4 + j)] = inf;
  expect_optimal(a, false, "row 2 all forbidden");
}

void non_finite_input() {
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::infinity()}) {
    Matrix a{3, 3, std::vector<double>(9, 1.0)};
    a.c[4] = bad;  // NaN, or -Inf when minimizing (an unbounded reward)
    for (bool sparse : {false, true}) {
      std::vector<float> store;
      std::string code;
      try {
        solve(a, false, sparse, false, store);
      } catch (const cmsae::Error& e) {
        code = e.code();
      }
      CHECK(code == "ERR_NONFINITE", sparse ? "sparse" : "dense", ": cost ", bad, " gave '", code, "'");
    }
  }
}

}  // namespace

int main() {
  return cmsae_test::run_cases("assignment", {
                                                 {"square n <= 7 and rectangular: the brute-force optimum, certified", square_and_rectangular},
                                                 {"forbidden entries and an infeasible matrix", forbidden_entries},
                                                 {"NaN and -Inf (minimizing) are ERR_NONFINITE", non_finite_input},
                                             });
}

// Jonker-Volgenant initialization of the sparse problem: row reduction u_i = min_j c_ij (rectangular) or
// column reduction v_j = min_i c_ij with reduction transfer (square), then augmenting row reduction
// (v_j1 -= u2 - u1 for a free row's best column j1 against its second best) until few rows are free.
#include <algorithm>
#include <vector>

#include "sparse_solve.h"

namespace cmsae::lap {

// Rectangular problems: row reduction (v = 0 keeps the rectangular dual sign v <= 0) and greedy matching on
// tight edges, over the first nr rows of the graph (the rest, dummy rows, wait for warm starts). Returns false
// when a row has no edge.
bool init_sparse(const Graph& g, long nr, std::vector<int32_t>& col4row, std::vector<int32_t>& row4col,
                 std::vector<double>& u, std::vector<double>& v) {
  const long nc = g.nc;
  col4row.assign(nr, -1);
  row4col.assign(nc, -1);
  u.assign(nr, 0.0);
  v.assign(nc, 0.0);
  for (long i = 0; i < nr; ++i) {
    double best = kInf;
    int32_t bj = -1;
    for (const Edge& e : g.row(i))
      if (e.cost < best || (e.cost == best && e.col < bj)) {
        best = e.cost;
        bj = e.col;
      }
    if (bj < 0) return false;
    u[i] = best;
    if (row4col[bj] < 0) {
      row4col[bj] = static_cast<int32_t>(i);
      col4row[i] = bj;
    }
  }
  return true;
}

// Square problems: Jonker-Volgenant column reduction (v_j = min_i c_ij, each column to its cheapest row if
// that row has no column yet) and reduction transfer (a row holding exactly one column moves its slack to
// that column's dual). Returns false when a row has no edge.
bool init_column_reduction(const Graph& g, std::vector<int32_t>& col4row, std::vector<int32_t>& row4col,
                           std::vector<double>& u, std::vector<double>& v) {
  const long n = g.nr;
  col4row.assign(n, -1);
  row4col.assign(g.nc, -1);
  u.assign(n, 0.0);
  v.assign(g.nc, kInf);
  std::vector<int32_t> best_row(g.nc, -1);
  for (long i = 0; i < n; ++i) {
    if (g.row(i).empty()) return false;
    for (const Edge& e : g.row(i))
      if (e.cost < v[e.col] || (e.cost == v[e.col] && i < best_row[e.col])) {
        v[e.col] = e.cost;
        best_row[e.col] = static_cast<int32_t>(i);
      }
  }
  std::vector<int> matches(n, 0);
  for (long j = g.nc - 1; j >= 0; --j) {
    if (best_row[j] < 0) {
      v[j] = 0;  // no edge: the column can only be reached by a later pricing round
      continue;
    }
    const int32_t i = best_row[j];
    if (++matches[i] == 1) {
      col4row[i] = static_cast<int32_t>(j);
      row4col[j] = i;
    }
  }
  for (long i = 0; i < n; ++i) {
    if (matches[i] != 1) continue;
    const int32_t j1 = col4row[i];
    double mu = kInf;
    for (const Edge& e : g.row(i))
      if (e.col != j1) mu = std::min(mu, e.cost - v[e.col]);
    if (mu < kInf) v[j1] -= mu;
  }
  return true;
}

// Jonker-Volgenant augmenting row reduction on the sparse graph: each free row takes its cheapest column
// (reduced by v), lowering that column's v to the row's second-best level so the row is indifferent, and
// evicts the previous owner, which is processed next. Up to eight sweeps over the free rows (each capped at 32
// steps per free row), then u_i is reset to
// min_j (c_ij - v_j), which keeps every matched edge tight and the duals feasible. v only decreases, so
// v <= 0 holds and never-matched columns keep v = 0 (the rectangular dual conditions).
void augmenting_row_reduction(const Graph& g, std::vector<int32_t>& col4row, std::vector<int32_t>& row4col,
                              std::vector<double>& u, std::vector<double>& v) {
  const long nr = static_cast<long>(col4row.size());  // the rows in play
  std::vector<int32_t> free_rows;
  for (long i = 0; i < nr; ++i)
    if (col4row[i] < 0) free_rows.push_back(static_cast<int32_t>(i));
  constexpr int sweeps = 8;  // JV use 2; more sweeps leave fewer rows for the (costlier) shortest-path phase
  for (int sweep = 0; sweep < sweeps && !free_rows.empty(); ++sweep) {
    const size_t prev = free_rows.size();
    size_t kk = 0, nfree = 0;
    long guard = 0;
    // Near-ties make chains of tiny v decrements (rows trading two columns back and forth, ~1e-7 per step):
    // beyond a few dozen steps per free row the shortest-path phase finishes those rows far faster.
    constexpr long per_row = 32;
    const long max_steps = std::min(8 * static_cast<long>(nr) + 64, per_row * static_cast<long>(prev) + 1024);
    while (kk < prev && guard++ < max_steps) {
      const int32_t i = free_rows[kk++];
      double umin = kInf, usub = kInf;
      int32_t j1 = -1, j2 = -1;
      for (const Edge& e : g.row(i)) {
        const double h = e.cost - v[e.col];
        if (h < usub) {
          if (h >= umin) {
            usub = h;
            j2 = e.col;
          } else {
            usub = umin;
            j2 = j1;
            umin = h;
            j1 = e.col;
          }
        }
      }
      if (j1 < 0) continue;  // no edges at all: left for the augmentation (which will report it)
      int32_t i0 = row4col[j1];
      const bool lowers = umin < usub && usub < kInf;  // a single-edge row has no second level to lower to
      if (lowers) {
        v[j1] -= usub - umin;  // strictly lowers: no cycling on ties ("v1 lowers" rule)
      } else if (i0 >= 0 && j2 >= 0) {
        j1 = j2;
        i0 = row4col[j2];
      }
      if (i0 >= 0) col4row[i0] = -1;
      col4row[i] = j1;
      row4col[j1] = i;
      if (i0 >= 0) {
        if (lowers) free_rows[--kk] = i0;
        else free_rows[nfree++] = i0;
      }
    }
    for (size_t q = kk; q < prev; ++q) free_rows[nfree++] = free_rows[q];  // not reached (guard)
    free_rows.resize(nfree);
  }
  for (long i = 0; i < nr; ++i) {
    double best = kInf;
    for (const Edge& e : g.row(i)) best = std::min(best, e.cost - v[e.col]);
    u[i] = best;
  }
}

}  // namespace cmsae::lap

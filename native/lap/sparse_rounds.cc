// The round machinery of the certified sparse path (see sparse_rounds.h).
#include "sparse_rounds.h"

#include <algorithm>
#include <cmath>

#include "sparse_solve.h"

namespace cmsae::lap {

Orientation orient(long rows, long cols, double max_pad_edges) {
  Orientation o;
  o.rows = rows;
  o.cols = cols;
  o.transposed = rows > cols;
  o.nr = o.transposed ? cols : rows;
  o.nc = o.transposed ? rows : cols;
  const long gap = o.nc - o.nr;
  o.pad = o.nr < o.nc && gap <= std::max<long>(8, o.nc / 64) && static_cast<double>(gap) * o.nc <= max_pad_edges ? gap : 0;
  o.square = o.nr == o.nc;
  return o;
}

double pricing_tolerance(const Graph& g, const Orientation& o) {
  double scale = 0;
  for (long r = 0; r < o.nr; ++r)
    for (const Edge& e : g.row(r)) scale = std::max(scale, std::fabs(e.cost));
  return 1e-12 * std::max(1.0, scale) * static_cast<double>(std::max(o.nr, o.nc));
}

bool cold_solve(const Graph& g, const Orientation& o, SparseState& st, PhaseClock& lap) {
  st.dummies_on = false;
  const bool ok = o.square ? init_column_reduction(g, st.col4row, st.row4col, st.u, st.v)
                           : init_sparse(g, o.nr, st.col4row, st.row4col, st.u, st.v);
  lap("init");
  if (ok) augmenting_row_reduction(g, st.col4row, st.row4col, st.u, st.v);
  lap("arr");
  if (lap.on()) {
    long free_rows = 0;
    for (int32_t c : st.col4row) free_rows += c < 0;
    std::fprintf(stderr, "[%ld free rows after ARR] ", free_rows);
  }
  return ok && augment_free_rows(g, st.col4row, st.row4col, st.u, st.v);
}

namespace {

// The rectangular optimum (v <= 0, v = 0 on the pad unmatched columns) is a square one once each unmatched column
// is held by a dummy row with u = 0: dummy edges cost 0 >= 0 + v_j, tight where v_j = 0.
void bring_in_dummy_rows(Graph& g, const Orientation& o, SparseState& st) {
  if (g.row(o.nr).empty()) g.fill_trailing_rows_with_zeros(o.nr);  // pending is empty here (built above)
  st.col4row.resize(o.nr + o.pad, -1);
  st.u.resize(o.nr + o.pad, 0.0);
  long d = o.nr;
  for (long j = 0; j < o.nc; ++j)
    if (st.row4col[j] < 0) {
      st.row4col[j] = static_cast<int32_t>(d);
      st.col4row[d] = static_cast<int32_t>(j);
      st.u[d++] = 0.0;
    }
  st.dummies_on = true;
}

}  // namespace

bool warm_solve(Graph& g, const Orientation& o, const std::vector<int32_t>& touched_rows, double tol, SparseState& st) {
  if (o.pad > 0 && !st.dummies_on) bring_in_dummy_rows(g, o, st);
  for (int32_t r : touched_rows) {
    double best = kInf;
    for (const Edge& e : g.row(r)) best = std::min(best, e.cost - st.v[e.col]);
    st.u[r] = best;
    const int32_t j = st.col4row[r];
    if (j >= 0) {
      double cj = kInf;
      for (const Edge& e : g.row(r))
        if (e.col == j) cj = e.cost;
      if (cj - st.u[r] - st.v[j] > tol) {
        st.col4row[r] = -1;
        st.row4col[j] = -1;
      }
    }
  }
  return augment_free_rows(g, st.col4row, st.row4col, st.u, st.v);
}

void oriented_result(const Orientation& o, SparseState& st, bool maximize, AssignmentResult& out) {
  const double sign = maximize ? -1.0 : 1.0;
  out.u.resize(o.rows);
  out.v.resize(o.cols);
  double shift = 0;
  if (o.pad > 0) {
    shift = -kInf;
    for (long j = 0; j < o.nc; ++j) shift = std::max(shift, st.v[j]);
    st.col4row.resize(o.nr);
    for (int32_t& r : st.row4col)
      if (r >= o.nr) r = -1;
  }
  const std::vector<double>& ur = o.transposed ? st.v : st.u;  // dual of each original row
  const std::vector<double>& vc = o.transposed ? st.u : st.v;  // dual of each original column
  const double shift_r = o.transposed ? -shift : shift;        // added to the original rows' duals
  for (long i = 0; i < o.rows; ++i) out.u[i] = sign * (ur[i] + shift_r);
  for (long j = 0; j < o.cols; ++j) out.v[j] = sign * (vc[j] - shift_r);
  out.row_to_col = o.transposed ? st.row4col : st.col4row;
  out.col_to_row = o.transposed ? st.col4row : st.row4col;
}

std::vector<int32_t> touched_graph_rows(const Graph& g, const std::vector<std::pair<int32_t, int32_t>>& rows_cols) {
  std::vector<int32_t> touched;
  touched.reserve(rows_cols.size());
  for (const auto& [i, j] : rows_cols) touched.push_back(g.transposed ? j : i);
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  return touched;
}

}  // namespace cmsae::lap

// Certified sparse assignment (Lee & Orlin 1993 "sparsify and price out"): keep the cheapest entries of
// every row and column (candidate_pass.cc), solve that sparse problem exactly (sparse_init.cc, sparse_augment.cc;
// float64 duals), then check every entry of the dense matrix (pricing_pass.cc): reduced costs c_ij - u_i - v_j
// >= -tol certify the sparse optimum as the dense optimum; otherwise the violating entries join the graph and the
// sparse problem is solved again (warm from the previous matching and duals when few entries violated). Falls back
// to the dense solver when the sparse graph has no complete matching or the rounds do not converge.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "../common/errors.h"
#include "assignment.h"
#include "candidate_pass.h"
#include "device_lap.h"
#include "pricing_pass.h"
#include "solver_policy.h"
#include "sparse_graph.h"
#include "sparse_solve.h"

namespace cmsae {
namespace lap {
namespace {

// CMSAE_PROFILE=1: phase times on stderr.
class PhaseClock {
 public:
  bool on() const { return on_; }
  void operator()(const char* what) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    std::fprintf(stderr, "%s %.1fms  ", what, std::chrono::duration<double, std::milli>(now - clock_).count());
    clock_ = now;
  }

 private:
  bool on_ = std::getenv("CMSAE_PROFILE") != nullptr;
  std::chrono::steady_clock::time_point clock_ = std::chrono::steady_clock::now();
};

// The oriented problem: nr graph rows (the smaller side) x nc columns. A nearly square problem gets nc - nr dummy
// rows of zero cost to every column: the square machinery (column reduction, warm starts between rounds) then
// applies, and the duals shift back to the rectangular form at the end. Strongly rectangular problems are solved
// as such (cold start every round).
struct Orientation {
  long rows, cols, nr, nc, pad;
  bool transposed, square;
};
Orientation orient(long rows, long cols) {
  Orientation o;
  o.rows = rows;
  o.cols = cols;
  o.transposed = rows > cols;
  o.nr = o.transposed ? cols : rows;
  o.nc = o.transposed ? rows : cols;
  o.pad = o.nr < o.nc && o.nc - o.nr <= std::max<long>(8, o.nc / 64) ? o.nc - o.nr : 0;
  o.square = o.nr == o.nc;
  return o;
}

// Matching and duals of the graph's rows and columns, kept between rounds.
struct SparseState {
  std::vector<int32_t> col4row, row4col;
  std::vector<double> u, v;
  bool dummies_on = false;  // dummy rows joined the solve (after the first cold round)
};

// Dual feasibility tolerance: 1e-12 * max(1, max |c| over the graph) * max(nr, nc).
double pricing_tolerance(const Graph& g, const Orientation& o) {
  double scale = 0;
  for (long r = 0; r < o.nr; ++r)
    for (const Edge& e : g.row(r)) scale = std::max(scale, std::fabs(e.cost));
  return 1e-12 * std::max(1.0, scale) * static_cast<double>(std::max(o.nr, o.nc));
}

// A cold solve: JV initialization (column reduction when square, row reduction otherwise), augmenting row
// reduction, then shortest augmenting paths. False: no complete matching in the graph.
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

// A warm re-solve (square and padded problems after a round with few violations): rows that received violating
// entries get u_i = min_j (c_ij - v_j), lose their column when its edge is no longer tight, and are re-augmented
// (a padded problem brings in its dummy rows first).
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

// The certified optimum in the problem's own orientation and sense. Padded: every dummy row holds a column of the
// largest v (its edges are all tight or slack at 0), so shifting u up and v down by that v gives the rectangular
// duals (v <= 0, 0 on unmatched columns).
template <class Cost>
AssignmentResult certified_result(const MinCost<Cost>& D, const Graph& g, const Orientation& o, SparseState& st,
                                  SparseStats* stats) {
  AssignmentResult out;
  const double sign = D.maximize ? -1.0 : 1.0;
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
  double obj = 0;
  for (long i = 0; i < o.rows; ++i)
    if (out.row_to_col[i] >= 0) obj += static_cast<double>(D.data[i * o.cols + out.row_to_col[i]]);
  out.objective = obj;
  if (stats) stats->edges = static_cast<long>(g.edges.size()) - (o.pad > 0 && !g.row(o.nr).empty() ? o.pad * o.nc : 0);
  return out;
}

// The violating entries join the graph (each row's in column order). Returns the graph rows they touched (sorted,
// unique): the rows a warm re-solve repairs.
template <class Cost>
std::vector<int32_t> add_violations(const MinCost<Cost>& D, Violations& viol, Graph& g) {
  std::vector<int32_t> touched_rows;
  for (long i = 0; i < D.rows; ++i) {
    std::vector<std::pair<double, int32_t>>& h = viol.per_row[i].h;
    if (h.empty()) continue;
    std::sort(h.begin(), h.end(), [](const auto& a, const auto& b) { return a.second < b.second; });  // column order
    for (const auto& e : h) g.add_original(i, e.second, D.at(i, e.second));
    if (g.transposed)
      for (const auto& e : h) touched_rows.push_back(e.second);
    else
      touched_rows.push_back(static_cast<int32_t>(i));
  }
  g.build();
  std::sort(touched_rows.begin(), touched_rows.end());
  touched_rows.erase(std::unique(touched_rows.begin(), touched_rows.end()), touched_rows.end());
  return touched_rows;
}

// Square and padded problems keep their matching and duals between rounds when few entries violated (at most
// nr/8); after a round with many violations the duals are far off and a cold solve of the enlarged graph converges
// in fewer rounds. Strongly rectangular problems always solve cold (v <= 0 with v = 0 on unmatched columns would
// not survive a repair).
template <class Cost>
AssignmentResult solve_typed(const MinCost<Cost>& D, const AssignmentInput& input, int k, int max_rounds,
                             SparseStats* stats, DeviceLap* dev) {
  const Orientation o = orient(D.rows, D.cols);
  Graph g(o.nr + o.pad, o.nc, o.transposed);
  PhaseClock lap;
  const CandidateFloors floors = add_candidates(D, input, k, dev, g, stats);
  lap("candidates");
  const double tol = pricing_tolerance(g, o);
  SparseState st;
  std::vector<int32_t> touched_rows;
  long last_violations = 0;
  for (int round = 0; round < max_rounds; ++round) {
    const bool warm = (o.square || o.pad > 0) && round > 0 && last_violations <= o.nr / 8;
    const bool ok = warm ? warm_solve(g, o, touched_rows, tol, st) : cold_solve(g, o, st, lap);
    lap(warm ? "warm-solve" : "solve");
    if (stats && warm) ++stats->warm_rounds;
    if (!ok) break;  // no complete matching in the graph: go dense
    if (stats) stats->rounds = round + 1;
    Violations viol = price_out(D, o.transposed ? st.v : st.u, o.transposed ? st.u : st.v, floors, tol, k, dev);
    last_violations = viol.total;
    lap("pricing");
    if (lap.on()) std::fprintf(stderr, "(%ld rows read, %ld violations)\n", viol.rows_scanned, viol.total);
    if (stats) stats->violations += viol.total;
    if (viol.total == 0) return certified_result(D, g, o, st, stats);
    touched_rows = add_violations(D, viol, g);
  }
  if (stats) stats->fell_back = true;
  return solve_assignment_dense(input);
}

}  // namespace
}  // namespace lap

AssignmentResult solve_assignment_sparse(const AssignmentInput& in, int k, int max_rounds, SparseStats* stats, bool device) {
  require(k >= 1, "ERR_ARG", "k must be >= 1");
  if (in.rows == 0 || in.cols == 0) return solve_assignment_dense(in);
  std::unique_ptr<DeviceLap> dev;
  const DeviceLapFactory make = device_lap_factory();
  if (sparse_passes_on_device({in.rows, in.cols, in.f32 != nullptr}, k, device, make != nullptr)) dev = make();
  // Input screening happens inside the candidate pass (validate_assignment_input when it sees NaN/Inf).
  if (in.f32) return lap::solve_typed(lap::MinCost<float>{in.f32, in.rows, in.cols, in.maximize}, in, k, max_rounds, stats, dev.get());
  return lap::solve_typed(lap::MinCost<double>{in.f64, in.rows, in.cols, in.maximize}, in, k, max_rounds, stats, nullptr);
}

}  // namespace cmsae

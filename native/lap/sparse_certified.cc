// Certified sparse assignment (Lee & Orlin 1993 "sparsify and price out"): keep the cheapest entries of
// every row and column (candidate_pass.cc), solve that sparse problem exactly (sparse_init.cc, sparse_augment.cc;
// float64 duals), then check every entry of the dense matrix (pricing_pass.cc): reduced costs c_ij - u_i - v_j
// >= -tol certify the sparse optimum as the dense optimum; otherwise the violating entries join the graph and the
// sparse problem is solved again (warm from the previous matching and duals when few entries violated). Falls back
// to the dense solver when the sparse graph has no complete matching or the rounds do not converge.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "../common/errors.h"
#include "assignment.h"
#include "candidate_pass.h"
#include "device_lap.h"
#include "pricing_pass.h"
#include "solver_policy.h"
#include "sparse_graph.h"
#include "sparse_rounds.h"

namespace cmsae {
namespace lap {
namespace {

// The certified optimum in the problem's own orientation and sense, with its objective from the dense matrix.
template <class Cost>
AssignmentResult certified_result(const MinCost<Cost>& D, const Graph& g, const Orientation& o, SparseState& st,
                                  SparseStats* stats) {
  AssignmentResult out;
  oriented_result(o, st, D.maximize, out);
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
    const bool warm = warm_round(o, round, last_violations);
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

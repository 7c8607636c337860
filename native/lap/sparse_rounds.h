// The round machinery of the certified sparse path, shared by the dense-matrix solver (sparse_certified.cc) and
// the large-m alignment (native/coact/): the oriented problem, the matching and duals kept between rounds, cold
// and warm solves of the sparse graph, and the translation of the graph's duals back to the problem's own form.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "assignment.h"
#include "sparse_graph.h"

namespace cmsae::lap {

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
// rows of zero cost to every column (at most max_pad_edges edges in all): the square machinery (column reduction,
// warm starts between rounds) then applies, and the duals shift back to the rectangular form at the end. Strongly
// rectangular problems are solved as such (cold start every round).
struct Orientation {
  long rows, cols, nr, nc, pad;
  bool transposed, square;
};
Orientation orient(long rows, long cols, double max_pad_edges = 1e300);

// Matching and duals of the graph's rows and columns, kept between rounds.
struct SparseState {
  std::vector<int32_t> col4row, row4col;
  std::vector<double> u, v;
  bool dummies_on = false;  // dummy rows joined the solve (after the first cold round)
};

// Dual feasibility tolerance: 1e-12 * max(1, max |c| over the graph) * max(nr, nc).
double pricing_tolerance(const Graph& g, const Orientation& o);

// A cold solve: JV initialization (column reduction when square, row reduction otherwise), augmenting row
// reduction, then shortest augmenting paths. False: no complete matching in the graph.
bool cold_solve(const Graph& g, const Orientation& o, SparseState& st, PhaseClock& lap);

// A warm re-solve (square and padded problems after a round with few violations): rows that received violating
// entries get u_i = min_j (c_ij - v_j), lose their column when its edge is no longer tight, and are re-augmented
// (a padded problem brings in its dummy rows first).
bool warm_solve(Graph& g, const Orientation& o, const std::vector<int32_t>& touched_rows, double tol, SparseState& st);

// Whether the next round re-solves warm: square or padded problems after a round with at most nr/8 violations.
inline bool warm_round(const Orientation& o, int round, long last_violations) {
  return (o.square || o.pad > 0) && round > 0 && last_violations <= o.nr / 8;
}

// The matching and the duals of the certified optimum in the problem's own orientation and sense (maximize:
// negated); out.objective is left to the caller. Padded: every dummy row holds a column of the largest v, so
// shifting u up and v down by that v gives the rectangular duals (v <= 0, 0 on unmatched columns).
void oriented_result(const Orientation& o, SparseState& st, bool maximize, AssignmentResult& out);

// Graph rows that the original entries (i, j) of `rows_cols` touch, sorted and unique.
std::vector<int32_t> touched_graph_rows(const Graph& g, const std::vector<std::pair<int32_t, int32_t>>& rows_cols);

}  // namespace cmsae::lap

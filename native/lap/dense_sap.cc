// Exact linear assignment by successive shortest augmenting paths (Jonker-Volgenant / Crouse 2016,
// "On implementing 2D rectangular assignment algorithms"): one Dijkstra per row over reduced costs
// c_ij - u_i - v_j with float64 duals; rectangular (rows <= cols after orientation) without padding,
// maximize and transposition done by the cost accessor (the input is never copied).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../common/errors.h"
#include "../common/thread_pool.h"
#include "assignment.h"
#include "sap_path.h"

namespace cmsae {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Min-form cost of the oriented problem: row i, column j of the (possibly transposed) matrix, negated
// when maximizing; forbidden entries become +inf.
template <class T, bool Transposed, bool Maximize>
struct CostView {
  const T* data;
  long stride;  // row stride of the original matrix
  double operator()(long i, long j) const {
    const double c = Transposed ? static_cast<double>(data[j * stride + i]) : static_cast<double>(data[i * stride + j]);
    return Maximize ? -c : c;
  }
};

template <class View>
void solve_rows(const View& cost, long nr, long nc, std::vector<int32_t>& col4row, std::vector<int32_t>& row4col,
                std::vector<double>& u, std::vector<double>& v) {
  col4row.assign(nr, -1);
  row4col.assign(nc, -1);
  u.assign(nr, 0.0);
  v.assign(nc, 0.0);
  std::vector<double> dist(nc);
  std::vector<int32_t> path(nc);
  std::vector<uint8_t> in_sc(nc);
  std::vector<int32_t> sr_list, sc_list;
  for (long cur = 0; cur < nr; ++cur) {
    std::fill(dist.begin(), dist.end(), kInf);
    std::fill(path.begin(), path.end(), -1);
    std::fill(in_sc.begin(), in_sc.end(), 0);
    sr_list.clear();
    sc_list.clear();
    double min_val = 0;
    long i = cur, sink = -1;
    while (sink < 0) {
      sr_list.push_back(static_cast<int32_t>(i));
      double lowest = kInf;
      long best = -1;
      const double ui = u[i];
      for (long j = 0; j < nc; ++j) {
        if (in_sc[j]) continue;
        const double r = min_val + cost(i, j) - ui - v[j];
        if (r < dist[j]) {
          dist[j] = r;
          path[j] = static_cast<int32_t>(i);
        }
        // Nearest column; ties go to a free column, then to the smaller index.
        if (dist[j] < lowest || (dist[j] == lowest && best >= 0 && row4col[best] >= 0 && row4col[j] < 0)) {
          lowest = dist[j];
          best = j;
        }
      }
      if (!(lowest < kInf))
        fail("ERR_INFEASIBLE",
             "no complete assignment exists: some rows (or columns) can only be matched through forbidden "
             "entries; allow more pairs or drop those rows");
      min_val = lowest;
      in_sc[best] = 1;
      sc_list.push_back(static_cast<int32_t>(best));
      if (row4col[best] < 0)
        sink = best;
      else
        i = row4col[best];
    }
    finish_augmentation(cur, sink, min_val, dist, sr_list, sc_list, path, col4row, row4col, u, v);
  }
}

// Rejects NaN and +-Inf in the favourable direction (they would make the optimum unbounded).
template <class T>
void validate(const T* c, long rows, long cols, bool maximize) {
  const double bad_inf = maximize ? kInf : -kInf;
  const long n = rows * cols;
  // Fast parallel screen (x - x is NaN exactly for NaN and +-Inf), then an exact look where it fired.
  const int T_ = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), n / 65536 + 1)));
  std::vector<uint8_t> suspicious(T_, 0);
  parallel_for(T_, [&](int t) {
    double probe = 0;
    for (long p = split_begin(n, T_, t); p < split_begin(n, T_, t + 1); ++p) probe += static_cast<double>(c[p]) - static_cast<double>(c[p]);
    suspicious[t] = probe != 0;  // NaN != 0
  });
  bool any = false;
  for (uint8_t f : suspicious) any |= f;
  if (!any) return;
  for (long p = 0; p < n; ++p) {
    const double x = static_cast<double>(c[p]);
    if (std::isnan(x) || x == bad_inf)
      fail("ERR_NONFINITE", std::string("cost[") + std::to_string(p / cols) + "][" + std::to_string(p % cols) + "] is " +
                                (std::isnan(x) ? "NaN" : (maximize ? "+Inf" : "-Inf")) +
                                ": only " + (maximize ? "-Inf" : "+Inf") + " (a forbidden pair) is allowed");
  }
}

template <class T, bool Transposed, bool Maximize>
void run(const T* data, long rows, long cols, AssignmentResult& out) {
  const long nr = Transposed ? cols : rows, nc = Transposed ? rows : cols;
  CostView<T, Transposed, Maximize> view{data, cols};
  std::vector<int32_t> col4row, row4col;
  std::vector<double> u, v;
  solve_rows(view, nr, nc, col4row, row4col, u, v);
  const double sign = Maximize ? -1.0 : 1.0;
  for (double& x : u) x *= sign;
  for (double& x : v) x *= sign;
  if (Transposed) {
    out.row_to_col = std::move(row4col);
    out.col_to_row = std::move(col4row);
    out.u = std::move(v);
    out.v = std::move(u);
  } else {
    out.row_to_col = std::move(col4row);
    out.col_to_row = std::move(row4col);
    out.u = std::move(u);
    out.v = std::move(v);
  }
  double obj = 0;
  for (long i = 0; i < rows; ++i)
    if (out.row_to_col[i] >= 0) obj += static_cast<double>(data[i * cols + out.row_to_col[i]]);
  out.objective = obj;
}

template <class T>
AssignmentResult solve_typed(const T* data, long rows, long cols, bool maximize) {
  validate(data, rows, cols, maximize);
  AssignmentResult out;
  const bool transposed = rows > cols;
  if (transposed) {
    if (maximize) run<T, true, true>(data, rows, cols, out);
    else run<T, true, false>(data, rows, cols, out);
  } else {
    if (maximize) run<T, false, true>(data, rows, cols, out);
    else run<T, false, false>(data, rows, cols, out);
  }
  return out;
}

}  // namespace

void validate_assignment_input(const AssignmentInput& in) {
  if (in.f32) validate(in.f32, in.rows, in.cols, in.maximize);
  else validate(in.f64, in.rows, in.cols, in.maximize);
}

AssignmentResult solve_assignment_dense(const AssignmentInput& in) {
  require(in.rows >= 0 && in.cols >= 0, "ERR_SHAPE", "rows and cols must be >= 0");
  if (in.rows == 0 || in.cols == 0) {
    AssignmentResult r;
    r.row_to_col.assign(in.rows, -1);
    r.col_to_row.assign(in.cols, -1);
    r.u.assign(in.rows, 0.0);
    r.v.assign(in.cols, 0.0);
    return r;
  }
  return in.f32 ? solve_typed(in.f32, in.rows, in.cols, in.maximize) : solve_typed(in.f64, in.rows, in.cols, in.maximize);
}

}  // namespace cmsae

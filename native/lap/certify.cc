// Certificate of an assignment: the largest violation of dual feasibility (min form c_ij - u_i - v_j >= 0,
// sign-constrained duals on the larger side) and the gap |sum_chosen c_ij - (sum u + sum v)|.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../common/errors.h"
#include "assignment.h"
#include "certify.h"

namespace cmsae {
namespace {

template <class T>
Certificate certify_typed(const T* c, long rows, long cols, bool maximize, const AssignmentResult& r) {
  Certificate cert;
  const double s = maximize ? -1.0 : 1.0;  // min form: s*c_ij - s*u_i - s*v_j >= 0
  double dual = 0;
  for (long i = 0; i < rows; ++i) dual += r.u[i];
  for (long j = 0; j < cols; ++j) dual += r.v[j];
  for (long i = 0; i < rows; ++i)
    for (long j = 0; j < cols; ++j) {
      const double cij = static_cast<double>(c[i * cols + j]);
      if (std::isinf(cij)) continue;  // forbidden
      const double red = s * (cij - r.u[i] - r.v[j]);
      cert.max_violation = std::max(cert.max_violation, -red);
    }
  // Rectangular: the larger side's constraints are "at most one", so its duals are sign-constrained
  // (min form: <= 0).
  if (rows != cols) {
    const std::vector<double>& big = rows > cols ? r.u : r.v;
    for (double x : big) cert.max_violation = std::max(cert.max_violation, s * x);
  }
  cert.gap = std::fabs(r.objective - dual);
  return cert;
}

}  // namespace

Certificate certify_assignment(const AssignmentInput& in, const AssignmentResult& r) {
  if (in.rows == 0 || in.cols == 0) return {};
  return in.f32 ? certify_typed(in.f32, in.rows, in.cols, in.maximize, r)
                : certify_typed(in.f64, in.rows, in.cols, in.maximize, r);
}

Certificate certify_given_assignment(const AssignmentInput& in, const GivenAssignment& given, double& objective) {
  AssignmentResult r;
  r.row_to_col.assign(given.row_to_col, given.row_to_col + in.rows);
  r.col_to_row.assign(given.col_to_row, given.col_to_row + in.cols);
  r.u.assign(given.u, given.u + in.rows);
  r.v.assign(given.v, given.v + in.cols);
  double obj = 0;
  for (long i = 0; i < in.rows; ++i) {
    const int32_t j = r.row_to_col[i];
    if (j < -1 || j >= in.cols) fail("ERR_RANGE", "rowToCol has an index outside [-1, cols)");
    if (j >= 0) obj += in.f32 ? in.f32[i * in.cols + j] : in.f64[i * in.cols + j];
  }
  r.objective = obj;
  objective = obj;
  return certify_assignment(in, r);
}

}  // namespace cmsae

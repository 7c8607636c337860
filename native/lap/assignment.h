// Linear assignment: exact optimum of a dense rows x cols cost matrix (min or max), rectangular in both
// orientations, with dual variables that certify optimality.
#pragma once
#include <cstdint>
#include <vector>

namespace cmsae {

// Most candidates per row and column the sparse path accepts (more than any matrix needs to be exact quickly).
constexpr int kMaxCandidates = 65536;

struct AssignmentInput {
  const float* f32 = nullptr;   // exactly one of f32 / f64 is set; row-major [rows, cols], read in place
  const double* f64 = nullptr;
  long rows = 0, cols = 0;
  bool maximize = false;
};

struct AssignmentResult {
  std::vector<int32_t> row_to_col;  // [rows], -1 when unassigned (rows > cols)
  std::vector<int32_t> col_to_row;  // [cols], -1 when unassigned (cols > rows)
  double objective = 0;             // sum of the chosen entries, in float64
  // Duals in the problem's own sense: minimize: u_i + v_j <= c_ij; maximize: u_i + v_j >= c_ij; with
  // equality on chosen pairs, and the larger side's unassigned duals equal to 0.
  std::vector<double> u, v;
};

// Validates the input (NaN, +-Inf in the favourable direction: ERR_NONFINITE; forbidden entries are +Inf
// when minimizing and -Inf when maximizing) and solves it exactly. ERR_INFEASIBLE when the smaller side
// cannot be matched completely through allowed entries. Ties are broken deterministically.
AssignmentResult solve_assignment_dense(const AssignmentInput& in);

// The same optimum through the certified sparse path: k cheapest entries per row and per column, exact
// sparse solve, dense pricing pass, repeated with the violating entries until none is left (at most
// max_rounds, then the dense solver).
struct SparseStats {
  int rounds = 0;
  long violations = 0;  // entries added by the pricing passes
  long edges = 0;       // edges of the final sparse graph
  long weak_rows = 0;   // rows given extra candidates in the first graph
  int warm_rounds = 0;  // rounds re-solved from the previous matching and duals
  bool fell_back = false;
  bool device = false;  // the candidate and pricing passes ran on the CUDA device
};
// device: run the candidate and pricing passes on the CUDA device (float32 costs; ERR_CUDA_UNAVAILABLE without).
AssignmentResult solve_assignment_sparse(const AssignmentInput& in, int k, int max_rounds, SparseStats* stats = nullptr,
                                         bool device = false);

// Throws ERR_NONFINITE for NaN or an infinity in the favourable direction.
void validate_assignment_input(const AssignmentInput& in);

// Largest violation of dual feasibility (0 when optimal) and |primal - dual| of a result.
struct Certificate {
  double max_violation = 0;
  double gap = 0;
};
Certificate certify_assignment(const AssignmentInput& in, const AssignmentResult& r);

}  // namespace cmsae

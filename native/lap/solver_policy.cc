// Solver policy: sparse = 'sparse' or ('auto' and min(rows, cols) >= 512); k = min(candidates, max(rows, cols));
// device passes = asked for, float32, k <= 64 and max(2, k/8) <= 16 (the device kernels' limits).
#include "solver_policy.h"

#include "../common/errors.h"
#include "device_lap.h"

namespace cmsae {

bool sparse_passes_on_device(const LapShape& shape, int k, bool requested, bool device_available) {
  const bool fits = shape.float32 && shape.rows > 0 && shape.cols > 0 && k >= 1 && k <= kDeviceLapMaxRowCandidates &&
                    column_candidates(k) <= kDeviceLapMaxColCandidates;
  if (!requested || !fits) return false;
  if (!device_available)
    fail("ERR_CUDA_UNAVAILABLE", "this build of crossmodal-sae has no CUDA backend (it was built without nvcc): use device 'cpu' or 'auto'");
  return true;
}

LapPlan plan_assignment(const LapShape& shape, const LapOptions& opt, bool device_available) {
  LapPlan plan;
  plan.sparse = opt.algorithm == LapAlgorithm::Sparse ||
                (opt.algorithm == LapAlgorithm::Auto && std::min(shape.rows, shape.cols) >= kSparseMinSide);
  if (!plan.sparse) return plan;
  plan.k = static_cast<int>(std::min<long>(opt.candidates, std::max(shape.rows, shape.cols)));
  plan.max_rounds = kSparseMaxRounds;
  plan.device = sparse_passes_on_device(shape, plan.k, opt.device, device_available);
  return plan;
}

AssignmentResult solve_assignment(const AssignmentInput& in, const LapOptions& opt, SparseStats* stats) {
  const LapPlan plan = plan_assignment({in.rows, in.cols, in.f32 != nullptr}, opt, device_lap_factory() != nullptr);
  if (!plan.sparse) return solve_assignment_dense(in);
  return solve_assignment_sparse(in, plan.k, plan.max_rounds, stats, plan.device);
}

}  // namespace cmsae

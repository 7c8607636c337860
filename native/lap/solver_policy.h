// Solver policy of the assignment, in one place: dense or certified sparse (sparse from min(rows, cols) = 512 up
// under 'auto'), how many candidates per row (the option, at most max(rows, cols)) and per column (max(2, k/8)),
// how many pricing rounds (12), and whether the sparse path's passes run on the device (float32 costs and the
// device kernels' candidate limits). The binding, alignLatents and the sparse path itself all decide here.
#pragma once
#include <algorithm>

#include "assignment.h"

namespace cmsae {

enum class LapAlgorithm { Auto, Dense, Sparse };

constexpr long kSparseMinSide = 512;    // 'auto' takes the sparse path when min(rows, cols) >= this
constexpr int kDefaultCandidates = 16;  // row candidates when the caller names none (kMaxCandidates at most)
constexpr int kSparseMaxRounds = 12;    // pricing rounds before the sparse path hands over to the dense solver

struct LapOptions {
  LapAlgorithm algorithm = LapAlgorithm::Auto;
  int candidates = kDefaultCandidates;  // row candidates asked for (the binding checks [1, kMaxCandidates])
  bool device = false;                  // the caller asks for the CUDA device (already resolved from 'auto')
};

struct LapShape {
  long rows = 0, cols = 0;
  bool float32 = false;  // the costs are float32 (the device passes read float32 only)
};

struct LapPlan {
  bool sparse = false;  // the certified sparse path (else the dense solver)
  int k = 0;            // row candidates of the sparse path
  int max_rounds = 0;   // its pricing rounds
  bool device = false;  // its candidate and pricing passes run on the device
};

// Column candidates of the sparse path for k row candidates: columns keep fewer (their offers are the costly
// part of the candidate pass); pricing adds the rest.
inline int column_candidates(int k) { return std::max(2, k / 8); }

// Whether the sparse path's passes for k row candidates run on the device: asked for, a non-empty float32
// matrix, k >= 1 and within the device kernels' limits (otherwise the CPU passes run, silently). Throws
// ERR_CUDA_UNAVAILABLE when they would but no device is registered.
bool sparse_passes_on_device(const LapShape& shape, int k, bool requested, bool device_available);

// The plan for a solve of `shape` with `opt`; device_available: a device is registered (device_lap_factory()).
LapPlan plan_assignment(const LapShape& shape, const LapOptions& opt, bool device_available);

// Plans (with the registered device) and runs the solve: solve_assignment_dense or solve_assignment_sparse.
AssignmentResult solve_assignment(const AssignmentInput& in, const LapOptions& opt, SparseStats* stats = nullptr);

}  // namespace cmsae

// The candidate pass of the certified sparse path: the k cheapest entries of every original row and the
// max(2, k/8) cheapest of every column (more for "weak" rows) enter the graph, and every entry left out is
// bounded below by its row's and its column's floor (the pricing pass's certificate).
#pragma once
#include <vector>

#include "assignment.h"
#include "device_lap.h"
#include "sparse_graph.h"

namespace cmsae::lap {

// Lower bounds on every entry left out of the graph, per original row and column (+inf: nothing left out).
struct CandidateFloors {
  std::vector<double> row, col;
};

// Adds the candidates of D (float32: scanned on `dev` when given) to g and builds it. Screens the input on the
// way (validate_assignment_input when the pass sees NaN or an infinity). Sets stats->device and ->weak_rows.
template <class Cost>
CandidateFloors add_candidates(const MinCost<Cost>& D, const AssignmentInput& input, int k, DeviceLap* dev, Graph& g,
                               SparseStats* stats);

}  // namespace cmsae::lap

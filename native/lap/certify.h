// Certifying an assignment given as plain arrays (the shape certifyAssignment receives from JS).
#pragma once
#include <cstdint>

#include "assignment.h"

namespace cmsae {

// A result as arrays: rowToCol [rows] (-1 = unassigned), colToRow [cols], duals u [rows], v [cols].
struct GivenAssignment {
  const int32_t* row_to_col;
  const int32_t* col_to_row;
  const double* u;
  const double* v;
};

// certify_assignment of `given` with its objective (the sum of the chosen entries, float64) recomputed from the
// costs into `objective`; ERR_RANGE when rowToCol holds an index outside [-1, cols).
Certificate certify_given_assignment(const AssignmentInput& in, const GivenAssignment& given, double& objective);

}  // namespace cmsae

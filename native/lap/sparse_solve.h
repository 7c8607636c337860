// The exact solve of the sparse problem (Jonker-Volgenant initialization, then successive shortest augmenting
// paths): reduced costs c_ij - u_i - v_j >= 0 on every edge, = 0 on matched ones, float64 duals.
#pragma once
#include <cstdint>
#include <vector>

#include "sparse_graph.h"

namespace cmsae::lap {

// Rectangular problems: row reduction (u_i = min_j c_ij, v = 0) and greedy matching on tight edges over the
// first nr rows of the graph. Returns false when a row has no edge.
bool init_sparse(const Graph& g, long nr, std::vector<int32_t>& col4row, std::vector<int32_t>& row4col,
                 std::vector<double>& u, std::vector<double>& v);
// Square problems: column reduction (v_j = min_i c_ij) and reduction transfer. Returns false when a row has no edge.
bool init_column_reduction(const Graph& g, std::vector<int32_t>& col4row, std::vector<int32_t>& row4col,
                           std::vector<double>& u, std::vector<double>& v);
// Augmenting row reduction over the rows in play (col4row.size()); keeps the duals feasible, v only decreases.
void augmenting_row_reduction(const Graph& g, std::vector<int32_t>& col4row, std::vector<int32_t>& row4col,
                              std::vector<double>& u, std::vector<double>& v);
// Augments every free row in play along a shortest path (Dijkstra over reduced costs). Returns false when some
// row cannot be matched through the graph's edges.
bool augment_free_rows(const Graph& g, std::vector<int32_t>& col4row, std::vector<int32_t>& row4col,
                       std::vector<double>& u, std::vector<double>& v);

}  // namespace cmsae::lap

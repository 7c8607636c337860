// The sparse graph's compressed rows: build() = counting sort of the pending edges by row (stable), then each
// row keeps the first occurrence of every column.
#include "sparse_graph.h"

namespace cmsae::lap {

void Graph::fill_trailing_rows_with_zeros(long r0) {
  edges.reserve(edges.size() + static_cast<size_t>(nr - r0) * nc);
  for (long r = r0; r < nr; ++r) {
    for (long j = 0; j < nc; ++j) edges.push_back({static_cast<int32_t>(j), 0.0});
    start[r + 1] = static_cast<int64_t>(edges.size());
  }
}

void Graph::build() {
  std::vector<int64_t> at(static_cast<size_t>(nr) + 1, 0);
  for (long r = 0; r < nr; ++r) at[r + 1] = start[r + 1] - start[r];
  for (const auto& p : pending) ++at[p.first + 1];
  for (long r = 0; r < nr; ++r) at[r + 1] += at[r];
  std::vector<Edge> merged(static_cast<size_t>(at[nr]));
  std::vector<int64_t> fill(at.begin(), at.end() - 1);
  for (long r = 0; r < nr; ++r)
    for (int64_t q = start[r]; q < start[r + 1]; ++q) merged[fill[r]++] = edges[q];
  for (const auto& p : pending) merged[fill[p.first]++] = p.second;
  std::vector<std::pair<int32_t, Edge>>().swap(pending);
  std::vector<int32_t> seen(static_cast<size_t>(nc), -1);
  int64_t out = 0;
  for (long r = 0; r < nr; ++r) {
    start[r] = out;
    for (int64_t q = at[r]; q < at[r + 1]; ++q) {
      int32_t& s = seen[merged[q].col];
      if (s == r) continue;
      s = static_cast<int32_t>(r);
      merged[out++] = merged[q];
    }
  }
  start[nr] = out;
  merged.resize(static_cast<size_t>(out));
  edges.swap(merged);
}

}  // namespace cmsae::lap

// The end of one shortest-augmenting-path search (Jonker-Volgenant / Crouse 2016), shared by the dense and
// the sparse solver: dual update u_cur += d, u_r += d - dist[col(r)], v_c -= d - dist[c] for the scanned rows
// and columns (d = the sink's distance), then the matching is flipped along the predecessor path.
#pragma once
#include <cstdint>
#include <vector>

namespace cmsae {

inline void finish_augmentation(long cur, long sink, double min_val, const std::vector<double>& dist,
                                const std::vector<int32_t>& scanned_rows, const std::vector<int32_t>& scanned_cols,
                                const std::vector<int32_t>& pred, std::vector<int32_t>& col4row,
                                std::vector<int32_t>& row4col, std::vector<double>& u, std::vector<double>& v) {
  u[cur] += min_val;
  for (int32_t r : scanned_rows)
    if (r != cur) u[r] += min_val - dist[col4row[r]];
  for (int32_t c : scanned_cols) v[c] -= min_val - dist[c];
  long j = sink;
  for (;;) {
    const long r = pred[j];
    row4col[j] = static_cast<int32_t>(r);
    const long prev = col4row[r];
    col4row[r] = static_cast<int32_t>(j);
    if (r == cur) break;
    j = prev;
  }
}

}  // namespace cmsae

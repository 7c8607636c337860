// Successive shortest augmenting paths on the sparse graph (Dijkstra over reduced costs c_ij - u_i - v_j >= 0,
// then u_cur += d, u_r += d - dist[col(r)], v_c -= d - dist[c] and the path flipped; d = the sink's distance).
#include <vector>

#include "column_heap.h"
#include "sparse_solve.h"

namespace cmsae::lap {

// Augments every free row along a shortest path (reduced costs c - u - v >= 0 on the graph are assumed).
// Column state lives in one record per column (one cache line per relaxation instead of three arrays);
// the dual update and path flip are finish_augmentation's (sap_path.h), written for that layout.
bool augment_free_rows(const Graph& g, std::vector<int32_t>& col4row, std::vector<int32_t>& row4col,
                       std::vector<double>& u, std::vector<double>& v) {
  const long nr = static_cast<long>(col4row.size()), nc = g.nc;  // the rows in play
  struct Col {
    double dist;
    double v;
    int32_t pred;
    int32_t done;
  };
  std::vector<Col> col(static_cast<size_t>(nc));
  for (long j = 0; j < nc; ++j) col[j] = {kInf, v[j], -1, 0};
  std::vector<int32_t> touched, scanned_cols, scanned_rows;
  ColumnHeap heap(nc);
  bool ok = true;
  for (long cur = 0; cur < nr && ok; ++cur) {
    if (col4row[cur] >= 0) continue;
    for (int32_t j : touched) {
      col[j].dist = kInf;
      col[j].pred = -1;
      col[j].done = 0;
    }
    touched.clear();
    scanned_cols.clear();
    scanned_rows.clear();
    heap.clear();
    double min_val = 0;
    long i = cur, sink = -1;
    while (sink < 0) {
      scanned_rows.push_back(static_cast<int32_t>(i));
      const double base = min_val - u[i];
      for (const Edge& e : g.row(i)) {
        Col& c = col[e.col];
        if (c.done) continue;
        const double nd = base + e.cost - c.v;
        if (nd < c.dist) {
          if (c.dist == kInf) touched.push_back(e.col);
          c.dist = nd;
          c.pred = static_cast<int32_t>(i);
          heap.push_or_decrease(e.col, nd, row4col[e.col] >= 0);
        }
      }
      if (heap.empty()) {
        ok = false;
        break;
      }
      const int32_t j = heap.pop();
      min_val = col[j].dist;
      col[j].done = 1;
      scanned_cols.push_back(j);
      if (row4col[j] < 0)
        sink = j;
      else
        i = row4col[j];
    }
    if (!ok) break;
    // u_cur += d, u_r += d - dist[col(r)], v_c -= d - dist[c] (d = the sink's distance), then flip the path.
    u[cur] += min_val;
    for (int32_t r : scanned_rows)
      if (r != cur) u[r] += min_val - col[col4row[r]].dist;
    for (int32_t c : scanned_cols) col[c].v -= min_val - col[c].dist;
    for (long j = sink;;) {
      const long r = col[j].pred;
      row4col[j] = static_cast<int32_t>(r);
      const long prev = col4row[r];
      col4row[r] = static_cast<int32_t>(j);
      if (r == cur) break;
      j = prev;
    }
  }
  for (long j = 0; j < nc; ++j) v[j] = col[j].v;
  return ok;
}

}  // namespace cmsae::lap

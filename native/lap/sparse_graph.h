// The certified sparse path's shared pieces: the min-form view of the dense costs (c = sign * x; maximize
// negates, forbidden = +inf) and the sparse graph in compressed rows, oriented so that its rows are the smaller side.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace cmsae::lap {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Edge {
  int32_t col;
  double cost;
};

// Min-form cost of the ORIGINAL matrix (maximize negates; forbidden = +inf).
template <class T>
struct MinCost {
  const T* data;
  long rows, cols;
  bool maximize;
  double at(long i, long j) const {
    const double c = static_cast<double>(data[i * cols + j]);
    return maximize ? -c : c;
  }
};

// Oriented sparse graph in compressed rows (rows = the smaller side; `transposed`: graph row r is original
// column r). Edges added since the last build() wait in `pending`; build() merges them in and drops duplicates.
struct Graph {
  struct Row {
    const Edge* first;
    const Edge* last;
    const Edge* begin() const { return first; }
    const Edge* end() const { return last; }
    bool empty() const { return first == last; }
  };
  long nr, nc;
  bool transposed;
  std::vector<int64_t> start;  // [nr + 1]
  std::vector<Edge> edges;
  std::vector<std::pair<int32_t, Edge>> pending;
  Graph(long rows, long cols, bool transposed_) : nr(rows), nc(cols), transposed(transposed_), start(rows + 1, 0) {}
  void add(long r, long c, double cost) { pending.push_back({static_cast<int32_t>(r), {static_cast<int32_t>(c), cost}}); }
  // Entry (i, j) of the original matrix, in the graph's orientation.
  void add_original(long i, long j, double cost) {
    if (transposed) add(j, i, cost);
    else add(i, j, cost);
  }
  Row row(long r) const { return {edges.data() + start[r], edges.data() + start[r + 1]}; }
  // Gives the (empty, trailing) rows [r0, nr) an edge of cost 0 to every column, without a rebuild.
  void fill_trailing_rows_with_zeros(long r0);
  // Merges `pending` into the rows (each row keeps its insertion order, which is deterministic) and drops
  // repeated columns within a row.
  void build();
};

}  // namespace cmsae::lap

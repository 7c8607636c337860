// Certified sparse assignment (Lee & Orlin 1993 "sparsify and price out"): keep the cheapest entries of
// every row and column (one streaming pass; more for "weak" rows), solve that sparse problem exactly
// (Jonker-Volgenant initialization: column reduction + reduction transfer when square, row reduction when
// rectangular, augmenting row reduction; then successive shortest augmenting paths with an indexed-heap
// Dijkstra; float64 duals), then check every entry of the dense matrix: reduced costs c_ij - u_i - v_j >= -tol
// certify the sparse optimum as the dense optimum; otherwise the violating entries join the graph and the
// sparse problem is solved again. Falls back to the dense solver when the sparse graph has no complete
// matching or the rounds do not converge.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../common/errors.h"
#include "../common/thread_pool.h"
#include "../sae/topk_select.h"
#include "assignment.h"
#include "../common/candidate_keys.h"
#include "device_lap.h"
#include "scan_kernels.h"

namespace cmsae {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Edge {
  int32_t col;
  double cost;
};

// Min-form cost of the ORIGINAL matrix (maximize negates; forbidden = +inf).
template <class T>
struct Dense {
  const T* data;
  long rows, cols;
  bool maximize;
  double at(long i, long j) const {
    const double c = static_cast<double>(data[i * cols + j]);
    return maximize ? -c : c;
  }
};

// Oriented sparse graph in compressed rows (rows = the smaller side). Edges
// added since the last build() wait in `pending`; build() merges them in and drops duplicates.
struct Graph {
  struct Row {
    const Edge* first;
    const Edge* last;
    const Edge* begin() const { return first; }
    const Edge* end() const { return last; }
    bool empty() const { return first == last; }
  };
  long nr, nc;
  std::vector<int64_t> start;  // [nr + 1]
  std::vector<Edge> edges;
  std::vector<std::pair<int32_t, Edge>> pending;
  Graph(long rows, long cols) : nr(rows), nc(cols), start(rows + 1, 0) {}
  void add(long r, long c, double cost) { pending.push_back({static_cast<int32_t>(r), {static_cast<int32_t>(c), cost}}); }
  Row row(long r) const { return {edges.data() + start[r], edges.data() + start[r + 1]}; }
  // Gives the (empty, trailing) rows [r0, nr) an edge of cost 0 to every column, without a rebuild.
  void fill_trailing_rows_with_zeros(long r0) {
    edges.reserve(edges.size() + static_cast<size_t>(nr - r0) * nc);
    for (long r = r0; r < nr; ++r) {
      for (long j = 0; j < nc; ++j) edges.push_back({static_cast<int32_t>(j), 0.0});
      start[r + 1] = static_cast<int64_t>(edges.size());
    }
  }
  // Merges `pending` into the rows (each row keeps its insertion order, which is deterministic) and drops
  // repeated columns within a row.
  void build() {
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

};

// Rectangular problems: row reduction (v = 0 keeps the rectangular dual sign v <= 0) and greedy matching on
// tight edges, over the first nr rows of the graph (the rest, dummy rows, wait for warm starts). Returns false
// when a row has no edge.
bool init_sparse(const Graph& g, long nr, std::vector<int32_t>& col4row, std::vector<int32_t>& row4col,
                 std::vector<double>& u, std::vector<double>& v) {
  const long nc = g.nc;
  col4row.assign(nr, -1);
  row4col.assign(nc, -1);
  u.assign(nr, 0.0);
  v.assign(nc, 0.0);
  for (long i = 0; i < nr; ++i) {
    double best = kInf;
    int32_t bj = -1;
    for (const Edge& e : g.row(i))
      if (e.cost < best || (e.cost == best && e.col < bj)) {
        best = e.cost;
        bj = e.col;
      }
    if (bj < 0) return false;
    u[i] = best;
    if (row4col[bj] < 0) {
      row4col[bj] = static_cast<int32_t>(i);
      col4row[i] = bj;
    }
  }
  return true;
}

// Square problems: Jonker-Volgenant column reduction (v_j = min_i c_ij, each column to its cheapest row if
// that row has no column yet) and reduction transfer (a row holding exactly one column moves its slack to
// that column's dual). Returns false when a row has no edge.
bool init_column_reduction(const Graph& g, std::vector<int32_t>& col4row, std::vector<int32_t>& row4col,
                           std::vector<double>& u, std::vector<double>& v) {
  const long n = g.nr;
  col4row.assign(n, -1);
  row4col.assign(g.nc, -1);
  u.assign(n, 0.0);
  v.assign(g.nc, kInf);
  std::vector<int32_t> best_row(g.nc, -1);
  for (long i = 0; i < n; ++i) {
    if (g.row(i).empty()) return false;
    for (const Edge& e : g.row(i))
      if (e.cost < v[e.col] || (e.cost == v[e.col] && i < best_row[e.col])) {
        v[e.col] = e.cost;
        best_row[e.col] = static_cast<int32_t>(i);
      }
  }
  std::vector<int> matches(n, 0);
  for (long j = g.nc - 1; j >= 0; --j) {
    if (best_row[j] < 0) {
      v[j] = 0;  // no edge: the column can only be reached by a later pricing round
      continue;
    }
    const int32_t i = best_row[j];
    if (++matches[i] == 1) {
      col4row[i] = static_cast<int32_t>(j);
      row4col[j] = i;
    }
  }
  for (long i = 0; i < n; ++i) {
    if (matches[i] != 1) continue;
    const int32_t j1 = col4row[i];
    double mu = kInf;
    for (const Edge& e : g.row(i))
      if (e.col != j1) mu = std::min(mu, e.cost - v[e.col]);
    if (mu < kInf) v[j1] -= mu;
  }
  return true;
}

// Jonker-Volgenant augmenting row reduction on the sparse graph: each free row takes its cheapest column
// (reduced by v), lowering that column's v to the row's second-best level so the row is indifferent, and
// evicts the previous owner, which is processed next. Up to eight sweeps over the free rows (each capped at 32
// steps per free row), then u_i is reset to
// min_j (c_ij - v_j), which keeps every matched edge tight and the duals feasible. v only decreases, so
// v <= 0 holds and never-matched columns keep v = 0 (the rectangular dual conditions).
void augmenting_row_reduction(const Graph& g, std::vector<int32_t>& col4row, std::vector<int32_t>& row4col,
                              std::vector<double>& u, std::vector<double>& v) {
  const long nr = static_cast<long>(col4row.size());  // the rows in play
  std::vector<int32_t> free_rows;
  for (long i = 0; i < nr; ++i)
    if (col4row[i] < 0) free_rows.push_back(static_cast<int32_t>(i));
  constexpr int sweeps = 8;  // JV use 2; more sweeps leave fewer rows for the (costlier) shortest-path phase
  for (int sweep = 0; sweep < sweeps && !free_rows.empty(); ++sweep) {
    const size_t prev = free_rows.size();
    size_t kk = 0, nfree = 0;
    long guard = 0;
    // Near-ties make chains of tiny v decrements (rows trading two columns back and forth, ~1e-7 per step):
    // beyond a few dozen steps per free row the shortest-path phase finishes those rows far faster.
    constexpr long per_row = 32;
    const long max_steps = std::min(8 * static_cast<long>(nr) + 64, per_row * static_cast<long>(prev) + 1024);
    while (kk < prev && guard++ < max_steps) {
      const int32_t i = free_rows[kk++];
      double umin = kInf, usub = kInf;
      int32_t j1 = -1, j2 = -1;
      for (const Edge& e : g.row(i)) {
        const double h = e.cost - v[e.col];
        if (h < usub) {
          if (h >= umin) {
            usub = h;
            j2 = e.col;
          } else {
            usub = umin;
            j2 = j1;
            umin = h;
            j1 = e.col;
          }
        }
      }
      if (j1 < 0) continue;  // no edges at all: left for the augmentation (which will report it)
      int32_t i0 = row4col[j1];
      const bool lowers = umin < usub && usub < kInf;  // a single-edge row has no second level to lower to
      if (lowers) {
        v[j1] -= usub - umin;  // strictly lowers: no cycling on ties ("v1 lowers" rule)
      } else if (i0 >= 0 && j2 >= 0) {
        j1 = j2;
        i0 = row4col[j2];
      }
      if (i0 >= 0) col4row[i0] = -1;
      col4row[i] = j1;
      row4col[j1] = i;
      if (i0 >= 0) {
        if (lowers) free_rows[--kk] = i0;
        else free_rows[nfree++] = i0;
      }
    }
    for (size_t q = kk; q < prev; ++q) free_rows[nfree++] = free_rows[q];  // not reached (guard)
    free_rows.resize(nfree);
  }
  for (long i = 0; i < nr; ++i) {
    double best = kInf;
    for (const Edge& e : g.row(i)) best = std::min(best, e.cost - v[e.col]);
    u[i] = best;
  }
}

// Indexed 4-ary min-heap of columns keyed by (distance, matched?, column) with decrease-key: ties prefer a
// free column, then the smaller index (deterministic). Keys live in the heap slots (no indirection).
class ColumnHeap {
 public:
  explicit ColumnHeap(long nc) : pos_(nc, -1) {}
  bool empty() const { return heap_.empty(); }
  void clear() {
    for (const Slot& s : heap_) pos_[s.col] = -1;
    heap_.clear();
  }
  // Inserts column c with distance d or lowers its key to d.
  void push_or_decrease(int32_t c, double d, bool matched) {
    long i = pos_[c];
    if (i < 0) {
      i = static_cast<long>(heap_.size());
      heap_.push_back({});
    }
    sift_up(i, Slot{d, (static_cast<int64_t>(matched) << 32) | static_cast<uint32_t>(c), c});
  }
  int32_t pop() {
    const int32_t top = heap_[0].col;
    pos_[top] = -1;
    const Slot last = heap_.back();
    heap_.pop_back();
    if (!heap_.empty()) sift_down(0, last);
    return top;
  }

 private:
  struct Slot {
    double dist;
    int64_t tie;  // matched << 32 | column
    int32_t col;
  };
  static bool less(const Slot& a, const Slot& b) { return a.dist < b.dist || (a.dist == b.dist && a.tie < b.tie); }
  void place(long i, const Slot& s) {
    heap_[i] = s;
    pos_[s.col] = static_cast<int32_t>(i);
  }
  void sift_up(long i, const Slot& s) {
    while (i > 0) {
      const long parent = (i - 1) / 4;
      if (!less(s, heap_[parent])) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, s);
  }
  void sift_down(long i, const Slot& s) {
    const long n = static_cast<long>(heap_.size());
    for (;;) {
      const long first = 4 * i + 1;
      if (first >= n) break;
      long best = first;
      const long last = std::min(n, first + 4);
      for (long c = first + 1; c < last; ++c)
        if (less(heap_[c], heap_[best])) best = c;
      if (!less(heap_[best], s)) break;
      place(i, heap_[best]);
      i = best;
    }
    place(i, s);
  }
  std::vector<Slot> heap_;
  std::vector<int32_t> pos_;
};

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

// Keeps the k smallest (value, index) pairs; worst at h[0] (used where few offers arrive: pricing).
struct TopK {
  std::vector<std::pair<double, int32_t>> h;
  int k;
  double thr() const { return static_cast<int>(h.size()) < k ? kInf : h.front().first; }
  void offer(double c, int32_t j) {
    if (static_cast<int>(h.size()) < k) {
      h.push_back({c, j});
      std::push_heap(h.begin(), h.end());
    } else if (std::make_pair(c, j) < h.front()) {
      std::pop_heap(h.begin(), h.end());
      h.back() = {c, j};
      std::push_heap(h.begin(), h.end());
    }
  }
};

// Candidate keys hold scramble(index, salt) in their index field (candidate_keys.h).
inline long unscramble(uint64_t key, uint32_t salt) {
  return unscramble_index(static_cast<uint32_t>(key_candidate(key).index), salt);
}

// Lowest set bit of a non-zero mask.
inline int lowest_bit(uint64_t mask) {
#if defined(__GNUC__)
  return __builtin_ctzll(mask);
#else
  int q = 0;
  while (!((mask >> q) & 1)) ++q;
  return q;
#endif
}

// Reads row i of D from memory once (pass 1) and partly again from cache (pass 2). Pass 1: minima of about
// 4*cap groups and the entries at or below col_thr[j] (handed to on_col(j, c); each column once per row, so
// a snapshot of the thresholds is exact). The cap-th smallest group minimum is at least the row's cap-th
// cheapest entry (cap groups reach it), so pass 2 reads only the groups whose minimum is at or below it and
// offers their entries at or below the row threshold (about cap of them) to the row's heap (capacity cap,
// ties scrambled per row). col_thr == nullptr: rows only. Sets *nonfinite when the row holds NaN or +-Inf.
template <class Cost>
struct RowScratch {
  std::vector<Cost> mins, sorted;
  std::vector<uint64_t> col_mask, keys;
};
template <class Cost, class OnCol>
void scan_row(const ScanKernelsT<Cost>& K, const Dense<Cost>& D, long i, uint64_t* heap, int& count, int cap,
              const Cost* col_thr, uint8_t* nonfinite, RowScratch<Cost>& w, OnCol&& on_col) {
  const Cost sign = D.maximize ? Cost(-1) : Cost(1);
  const Cost cinf = std::numeric_limits<Cost>::infinity();
  const long n = D.cols;
  const Cost* row = D.data + i * n;
  const long want = 4L * cap;
  const long group = (std::max<long>(8, (n + want - 1) / want) + 7) / 8 * 8;  // a multiple of 8 (kernel contract)
  const long groups = (n + group - 1) / group;
  w.mins.resize(static_cast<size_t>(groups));
  w.col_mask.resize(static_cast<size_t>((n + 63) / 64));
  uint8_t bad = 0;
  K.group_min(row, n, sign, group, w.mins.data(), col_thr, w.col_mask.data(), &bad);
  *nonfinite |= bad;
  if (bad)
    for (Cost& m : w.mins) m = m == m ? m : cinf;  // NaN rows fail validation later; keep the selection well-defined
  if (col_thr)
    for (long b = 0; b < static_cast<long>(w.col_mask.size()); ++b)
      for (uint64_t mask = w.col_mask[b]; mask; mask &= mask - 1) {
        const long j = 64 * b + lowest_bit(mask);
        const double c = D.at(i, j);
        if (c != kInf) on_col(j, c);
      }
  Cost row_thr = cinf;
  if (groups >= cap) {
    w.sorted.assign(w.mins.begin(), w.mins.end());
    std::nth_element(w.sorted.begin(), w.sorted.begin() + (cap - 1), w.sorted.end());
    row_thr = w.sorted[static_cast<size_t>(cap - 1)];
  }
  static const std::vector<Cost> none(64, -std::numeric_limits<Cost>::infinity());  // no column thresholds in pass 2
  std::vector<uint64_t>& keys = w.keys;
  keys.clear();
  for (long g = 0; g < groups; ++g) {
    if (!(w.mins[g] <= row_thr)) continue;
    const long g_end = std::min(n, (g + 1) * group);
    for (long j0 = g * group; j0 < g_end; j0 += 64) {
      const int len = static_cast<int>(std::min<long>(64, g_end - j0));
      for (uint64_t mask = K.below_mask(row + j0, len, sign, row_thr, none.data()); mask; mask &= mask - 1) {
        const long j = j0 + lowest_bit(mask);
        const double c = D.at(i, j);
        if (c != kInf) keys.push_back(candidate_key(static_cast<float>(-c), scramble(j, salt_of(i))));
      }
    }
  }
  // The cap largest keys (cheapest entries, ties scrambled); the smallest kept key goes to heap[0].
  const size_t kept = std::min(keys.size(), static_cast<size_t>(cap));
  if (kept == 0) {
    count = 0;
    return;
  }
  if (keys.size() > kept) std::nth_element(keys.begin(), keys.begin() + (kept - 1), keys.end(), std::greater<uint64_t>());
  else std::swap(keys[kept - 1], *std::min_element(keys.begin(), keys.end()));
  std::swap(keys[0], keys[kept - 1]);
  std::copy(keys.begin(), keys.begin() + kept, heap);
  count = static_cast<int>(kept);
}

// Every entry whose candidate key is at most `key` (ties in key value included) costs at least this much:
// keys hold -cost rounded to float, so the bound steps one float above before negating.
inline double cost_floor_of_key(uint64_t key) {
  return -static_cast<double>(std::nextafter(key_candidate(key).value, std::numeric_limits<float>::infinity()));
}

template <class Cost>
AssignmentResult solve_typed(const Dense<Cost>& D, const AssignmentInput& input, int k, int max_rounds,
                             SparseStats* stats, DeviceLap* dev) {
  const long rows = D.rows, cols = D.cols;
  const bool transposed = rows > cols;
  const long nr = transposed ? cols : rows, nc = transposed ? rows : cols;
  // A nearly square problem gets nc - nr dummy rows of zero cost to every column: the square machinery
  // (column reduction, warm starts between rounds) then applies, and the duals shift back to the rectangular
  // form at the end. Strongly rectangular problems are solved as such (cold start every round).
  const long pad = nr < nc && nc - nr <= std::max<long>(8, nc / 64) ? nc - nr : 0;
  const bool square = nr == nc;
  bool dummies_on = false;  // dummy rows joined the solve (after the first cold round)
  Graph g(nr + pad, nc);
  auto add_original = [&](long i, long j, double c) {
    if (transposed) g.add(j, i, c);
    else g.add(i, j, c);
  };
  // The cost of a candidate: float keys hold float32 costs exactly (no second read of the matrix);
  // float64 costs are read again.
  auto key_edge_cost = [&](long i, long j, uint64_t key) {
    if constexpr (sizeof(Cost) == 4) return -static_cast<double>(key_candidate(key).value);
    else return D.at(i, j);
  };

  static const bool profile = std::getenv("CMSAE_PROFILE") != nullptr;
  auto clock = std::chrono::steady_clock::now();
  auto lap = [&](const char* what) {  // CMSAE_PROFILE=1: phase times on stderr
    if (!profile) return;
    const auto now = std::chrono::steady_clock::now();
    std::fprintf(stderr, "%s %.1fms  ", what, std::chrono::duration<double, std::milli>(now - clock).count());
    clock = now;
  };
  // Pass A: the k cheapest entries of every original row and column. Each thread keeps flat min-heaps of
  // integer keys (candidate_key of -cost; root = worst kept) for every column and for the current row;
  // a SIMD filter against the current thresholds skips almost every entry.
  const ScanKernelsT<Cost>& K = scan_kernels().template of<Cost>();
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), rows)));
  // Columns keep fewer candidates (their offers are the expensive part of the pass); pricing adds the rest.
  const int kc = std::max(2, k / 8);
  // On the device (float32 costs): the same keys, computed by cuda/lap_device.cu (one column list in all).
  if (dev && (sizeof(Cost) != 4 || k > 64 || kc > 16)) dev = nullptr;
  const int TC = dev ? 1 : T;
  std::vector<std::vector<uint64_t>> col_keys(TC, std::vector<uint64_t>(static_cast<size_t>(cols) * kc));
  std::vector<std::vector<int>> col_cnt(TC, std::vector<int>(cols, 0));
  std::vector<uint64_t> row_keys(static_cast<size_t>(rows) * k);
  std::vector<int> row_cnt(rows, 0);
  const Cost cinf = std::numeric_limits<Cost>::infinity();
  auto key_cost = [](uint64_t key) { return -static_cast<double>(key_candidate(key).value); };
  std::vector<uint8_t> nonfinite(T, 0);
  if (dev) {
    dev->load(reinterpret_cast<const float*>(D.data), rows, cols, D.maximize);
    nonfinite[0] = dev->candidates(k, kc, row_keys.data(), row_cnt.data(), col_keys[0].data(), col_cnt[0].data()) ? 1 : 0;
    if (stats) stats->device = true;
  } else {
    parallel_for(T, [&](int t) {
      uint64_t* ck = col_keys[t].data();
      int* cc = col_cnt[t].data();
      std::vector<Cost> col_thr(cols, cinf);
      RowScratch<Cost> scratch;
      for (long i = split_begin(rows, T, t); i < split_begin(rows, T, t + 1); ++i)
        scan_row(K, D, i, row_keys.data() + i * k, row_cnt[i], k, col_thr.data(), &nonfinite[t], scratch, [&](long j, double c) {
          if (key_heap_offer(ck + j * kc, cc[j], kc, candidate_key(static_cast<float>(-c), scramble(i, salt_of(j)))))
            col_thr[j] = static_cast<Cost>(key_cost(ck[j * kc]));
        });
    });
  }
  {  // NaN or an infinity somewhere: the exact check throws for NaN / favourable infinities, accepts forbidden
    bool suspicious = false;
    for (uint8_t f : nonfinite) suspicious |= f != 0;
    if (suspicious) validate_assignment_input(input);
  }
  // Lower bounds on every entry left out of the graph, per original row and column (+inf: nothing left out).
  std::vector<double> row_floor(rows, kInf), col_floor(cols, kInf);
  g.pending.reserve(static_cast<size_t>(rows) * k + static_cast<size_t>(cols) * kc);
  for (long i = 0; i < rows; ++i)
    if (row_cnt[i] == k) row_floor[i] = cost_floor_of_key(row_keys[i * k]);
  {
    // Each row's candidates enter the graph in ascending column order, whatever order the pass left them in
    // (CPU heap, device list): the augmenting row reduction breaks ties by edge order, so this keeps the
    // matching independent of how the candidates were found.
    std::vector<std::pair<long, uint64_t>> by_col;
    for (long i = 0; i < rows; ++i) {
      by_col.clear();
      for (int q = 0; q < row_cnt[i]; ++q) by_col.push_back({unscramble(row_keys[i * k + q], salt_of(i)), row_keys[i * k + q]});
      std::sort(by_col.begin(), by_col.end());
      for (const auto& [j, key] : by_col) add_original(i, j, key_edge_cost(i, j, key));
    }
  }
  // Pass A': "weak" rows, whose favourite column has a much better row (it loses more to that column's best
  // than a quarter of its own k candidates' span), will be matched elsewhere, among near-equal options that the plain top-k
  // does not cover: on correlation-like matrices those rows cause most pricing rounds. They get up to 8k
  // candidates.
  {
    std::vector<double> colbest(cols, kInf);
    for (int t = 0; t < TC; ++t)
      for (long j = 0; j < cols; ++j)
        for (int q = 0; q < col_cnt[t][j]; ++q) colbest[j] = std::min(colbest[j], key_cost(col_keys[t][j * kc + q]));
    std::vector<int32_t> weak;
    for (long i = 0; i < rows; ++i) {
      if (row_cnt[i] < k) continue;
      const uint64_t* h = row_keys.data() + i * k;
      const uint64_t top = *std::max_element(h, h + k);  // the cheapest entry; h[0] is the k-th cheapest
      const long jb = unscramble(top, salt_of(i));
      const double best = key_cost(top), kth = key_cost(h[0]);
      if (best - colbest[jb] > 0.25 * (kth - best)) weak.push_back(static_cast<int32_t>(i));
    }
    // 8k each, within a budget of rows*k extra edges (never below 2k): many weak rows (partnerless latents)
    // make a large graph that costs more per solve than the rounds it saves.
    const long budget = weak.empty() ? 8L * k : rows * static_cast<long>(k) / static_cast<long>(weak.size());
    const int kw = static_cast<int>(std::clamp<long>(budget, 2L * k, 8L * k));
    std::vector<uint64_t> weak_keys(weak.size() * static_cast<size_t>(kw));
    std::vector<int> weak_cnt(weak.size(), 0);
    const long nw = static_cast<long>(weak.size());
    g.pending.reserve(g.pending.size() + static_cast<size_t>(cols) * kc + weak.size() * static_cast<size_t>(kw));
    const int TW = static_cast<int>(std::max<long>(1, std::min<long>(T, nw)));
    parallel_for(TW, [&](int t) {
      uint8_t unused = 0;
      RowScratch<Cost> scratch;
      for (long w = split_begin(nw, TW, t); w < split_begin(nw, TW, t + 1); ++w)
        scan_row(K, D, weak[w], weak_keys.data() + w * kw, weak_cnt[w], kw, static_cast<const Cost*>(nullptr), &unused, scratch,
                 [](long, double) {});
    });
    for (long w = 0; w < nw; ++w) {
      row_floor[weak[w]] = weak_cnt[w] == kw ? cost_floor_of_key(weak_keys[w * kw]) : kInf;
      for (int q = 0; q < weak_cnt[w]; ++q) {
        const long j = unscramble(weak_keys[w * kw + q], salt_of(weak[w]));
        add_original(weak[w], j, key_edge_cost(weak[w], j, weak_keys[w * kw + q]));
      }
    }
    if (stats) stats->weak_rows = nw;
  }
  {
    std::vector<uint64_t> merged;
    for (long j = 0; j < cols; ++j) {
      merged.clear();
      for (int t = 0; t < TC; ++t) merged.insert(merged.end(), col_keys[t].begin() + j * kc, col_keys[t].begin() + j * kc + col_cnt[t][j]);
      const size_t keep = std::min<size_t>(merged.size(), static_cast<size_t>(kc));
      std::nth_element(merged.begin(), merged.begin() + (keep ? keep - 1 : 0), merged.end(), std::greater<uint64_t>());
      // Fewer than kc offers in all: no thread ever filtered this column, every finite entry is in the graph.
      if (keep == static_cast<size_t>(kc)) col_floor[j] = cost_floor_of_key(merged[keep - 1]);
      // Ascending rows: the graph's edge order (ARR tie-breaking) must not depend on the thread count.
      std::sort(merged.begin(), merged.begin() + keep,
                [&](uint64_t a, uint64_t b) { return unscramble(a, salt_of(j)) < unscramble(b, salt_of(j)); });
      for (size_t q = 0; q < keep; ++q) {
        const long i = unscramble(merged[q], salt_of(j));
        add_original(i, j, key_edge_cost(i, j, merged[q]));
      }
    }
  }
  g.build();
  lap("candidates");

  std::vector<int32_t> col4row, row4col;
  std::vector<double> u, v;
  double scale = 0;
  for (long r = 0; r < nr; ++r)
    for (const Edge& e : g.row(r)) scale = std::max(scale, std::fabs(e.cost));
  const double tol = 1e-12 * std::max(1.0, scale) * static_cast<double>(std::max(nr, nc));

  // Square and padded problems keep their matching and duals between rounds when few entries violated
  // (rows that received violating entries get a lowered u_i and are re-augmented; a padded problem brings in
  // its dummy rows at that point); after a round with many violations the duals are far off and a cold solve
  // of the enlarged graph converges in fewer rounds. Strongly rectangular problems always solve cold (v <= 0
  // with v = 0 on unmatched columns would not survive a repair).
  std::vector<int32_t> touched_rows;
  long last_violations = 0;
  for (int round = 0; round < max_rounds; ++round) {
    bool ok;
    const bool warm = (square || pad > 0) && round > 0 && last_violations <= nr / 8;
    if (!warm) {
      dummies_on = false;
      ok = square ? init_column_reduction(g, col4row, row4col, u, v) : init_sparse(g, nr, col4row, row4col, u, v);
      lap("init");
      if (ok) augmenting_row_reduction(g, col4row, row4col, u, v);
      lap("arr");
      if (profile) {
        long free_rows = 0;
        for (int32_t c : col4row) free_rows += c < 0;
        std::fprintf(stderr, "[%ld free rows after ARR] ", free_rows);
      }
      ok = ok && augment_free_rows(g, col4row, row4col, u, v);
    } else {
      if (pad > 0 && !dummies_on) {
        // The rectangular optimum (v <= 0, v = 0 on the pad unmatched columns) is a square one once each
        // unmatched column is held by a dummy row with u = 0: dummy edges cost 0 >= 0 + v_j, tight where v_j = 0.
        if (g.row(nr).empty()) g.fill_trailing_rows_with_zeros(nr);  // pending is empty here (built above)
        col4row.resize(nr + pad, -1);
        u.resize(nr + pad, 0.0);
        long d = nr;
        for (long j = 0; j < nc; ++j)
          if (row4col[j] < 0) {
            row4col[j] = static_cast<int32_t>(d);
            col4row[d] = static_cast<int32_t>(j);
            u[d++] = 0.0;
          }
        dummies_on = true;
      }
      for (int32_t r : touched_rows) {
        double best = kInf;
        for (const Edge& e : g.row(r)) best = std::min(best, e.cost - v[e.col]);
        u[r] = best;
        const int32_t j = col4row[r];
        if (j >= 0) {
          double cj = kInf;
          for (const Edge& e : g.row(r))
            if (e.col == j) cj = e.cost;
          if (cj - u[r] - v[j] > tol) {
            col4row[r] = -1;
            row4col[j] = -1;
          }
        }
      }
      ok = augment_free_rows(g, col4row, row4col, u, v);
    }
    lap(warm ? "warm-solve" : "solve");
    if (stats && warm) ++stats->warm_rounds;
    if (!ok) break;  // no complete matching in the graph: go dense
    if (stats) stats->rounds = round + 1;
    // Pass C: price out every dense entry against the sparse duals (original orientation). An entry outside
    // the graph costs at least max(row_floor_i, col_floor_j), so row i has nothing to check unless some column
    // j has v_j > row_floor_i - u_i + tol and col_floor_j - v_j < u_i - tol: with the columns sorted by v
    // (descending) and prefix minima of col_floor_j - v_j that is one binary search per row. Rows that fail
    // it read only those columns when they are few, else stream the row through the SIMD filter.
    const std::vector<double>& ur = transposed ? v : u;  // dual of each original row
    const std::vector<double>& vc = transposed ? u : v;  // dual of each original column
    std::vector<int32_t> by_v(cols);
    for (long j = 0; j < cols; ++j) by_v[j] = static_cast<int32_t>(j);
    std::sort(by_v.begin(), by_v.end(), [&](int32_t a, int32_t b) { return vc[a] > vc[b] || (vc[a] == vc[b] && a < b); });
    std::vector<double> v_desc(cols), slack_min(cols);
    for (long q = 0; q < cols; ++q) {
      v_desc[q] = vc[by_v[q]];
      const double z = col_floor[by_v[q]] - vc[by_v[q]];
      slack_min[q] = q ? std::min(slack_min[q - 1], z) : z;
    }
    // The most violating 4k entries of each row are kept (memory stays O(n k)).
    std::vector<TopK> viol(rows, TopK{{}, 4 * k});
    std::vector<long> counts(T, 0), scanned(T, 0);
    bool priced = false;
    if (dev) {  // the rows the bounds do not certify, scanned on the device
      std::vector<int32_t> scan;
      for (long i = 0; i < rows; ++i) {
        const long p = std::lower_bound(v_desc.begin(), v_desc.end(), row_floor[i] - ur[i] + tol, std::greater<double>()) - v_desc.begin();
        if (p > 0 && slack_min[p - 1] < ur[i] - tol) scan.push_back(static_cast<int32_t>(i));
      }
      std::vector<LapViolation> found;
      const long cap = std::max<long>(1L << 16, 4L * k * rows);
      const long n_viol = dev->price(scan, ur.data(), vc.data(), tol, cap, found);
      if (n_viol <= cap) {
        std::sort(found.begin(), found.end(), [](const LapViolation& a, const LapViolation& b) { return a.row < b.row || (a.row == b.row && a.col < b.col); });
        for (const LapViolation& e : found) viol[e.row].offer(e.reduced, e.col);
        counts[0] = n_viol;
        scanned[0] = static_cast<long>(scan.size());
        priced = true;
      }
    }
    if (!priced) parallel_for(T, [&](int t) {
      for (long i = split_begin(rows, T, t); i < split_begin(rows, T, t + 1); ++i) {
        const double ui = ur[i];
        const long p = std::lower_bound(v_desc.begin(), v_desc.end(), row_floor[i] - ui + tol, std::greater<double>()) - v_desc.begin();
        if (p == 0 || slack_min[p - 1] >= ui - tol) continue;  // certified by the bounds
        ++scanned[t];
        TopK& vi = viol[i];
        auto check = [&](long j) {
          const double red = D.at(i, j) - ui - vc[j];
          if (!(red < -tol)) return;
          ++counts[t];
          if (red < vi.thr()) vi.offer(red, static_cast<int32_t>(j));
        };
        if (p * 64 <= cols) {
          for (long q = 0; q < p; ++q) {
            const long j = by_v[q];
            if (col_floor[j] - vc[j] < ui - tol) check(j);
          }
          continue;
        }
        const Cost* row = D.data + i * cols;
        for (long j0 = 0; j0 < cols; j0 += 64) {
          const int len = static_cast<int>(std::min<long>(64, cols - j0));
          for (uint64_t mask = K.price_mask(row + j0, len, D.maximize ? -1.0 : 1.0, ui, vc.data() + j0, tol); mask;
               mask &= mask - 1)
            check(j0 + lowest_bit(mask));
        }
      }
    });
    long total = 0;
    for (long c : counts) total += c;
    last_violations = total;
    lap("pricing");
    if (profile) {
      long rows_scanned = 0;
      for (long c : scanned) rows_scanned += c;
      std::fprintf(stderr, "(%ld rows read, %ld violations)\n", rows_scanned, total);
    }
    if (stats) stats->violations += total;
    if (total == 0) {
      AssignmentResult out;
      const double sign = D.maximize ? -1.0 : 1.0;
      out.u.resize(rows);
      out.v.resize(cols);
      // Padded: every dummy row holds a column of the largest v (its edges are all tight or slack at 0), so
      // shifting u up and v down by that v gives the rectangular duals (v <= 0, 0 on unmatched columns).
      double shift = 0;
      if (pad > 0) {
        shift = -kInf;
        for (long j = 0; j < nc; ++j) shift = std::max(shift, v[j]);
        col4row.resize(nr);
        for (int32_t& r : row4col)
          if (r >= nr) r = -1;
      }
      const double shift_r = transposed ? -shift : shift;  // added to the original rows' duals
      for (long i = 0; i < rows; ++i) out.u[i] = sign * (ur[i] + shift_r);
      for (long j = 0; j < cols; ++j) out.v[j] = sign * (vc[j] - shift_r);
      out.row_to_col = transposed ? row4col : col4row;
      out.col_to_row = transposed ? col4row : row4col;
      double obj = 0;
      for (long i = 0; i < rows; ++i)
        if (out.row_to_col[i] >= 0) obj += static_cast<double>(D.data[i * cols + out.row_to_col[i]]);
      out.objective = obj;
      if (stats) stats->edges = static_cast<long>(g.edges.size()) - (pad > 0 && !g.row(nr).empty() ? pad * nc : 0);
      return out;
    }
    touched_rows.clear();
    for (long i = 0; i < rows; ++i) {
      if (viol[i].h.empty()) continue;
      std::sort(viol[i].h.begin(), viol[i].h.end(), [](const auto& a, const auto& b) { return a.second < b.second; });  // column order
      for (const auto& e : viol[i].h) add_original(i, e.second, D.at(i, e.second));
      if (transposed)
        for (const auto& e : viol[i].h) touched_rows.push_back(e.second);
      else
        touched_rows.push_back(static_cast<int32_t>(i));
    }
    g.build();
    std::sort(touched_rows.begin(), touched_rows.end());
    touched_rows.erase(std::unique(touched_rows.begin(), touched_rows.end()), touched_rows.end());
  }
  if (stats) stats->fell_back = true;
  AssignmentInput in;
  if constexpr (sizeof(Cost) == 4) in.f32 = reinterpret_cast<const float*>(D.data);
  else in.f64 = reinterpret_cast<const double*>(D.data);
  in.rows = rows;
  in.cols = cols;
  in.maximize = D.maximize;
  return solve_assignment_dense(in);
}

}  // namespace

AssignmentResult solve_assignment_sparse(const AssignmentInput& in, int k, int max_rounds, SparseStats* stats, bool device) {
  require(k >= 1, "ERR_ARG", "k must be >= 1");
  if (in.rows == 0 || in.cols == 0) return solve_assignment_dense(in);
  std::unique_ptr<DeviceLap> dev;
  if (device && in.f32 && k <= 64 && std::max(2, k / 8) <= 16) {
    DeviceLapFactory make = device_lap_factory();
    if (!make)
      fail("ERR_CUDA_UNAVAILABLE", "this build of crossmodal-sae has no CUDA backend (it was built without nvcc): use device 'cpu' or 'auto'");
    dev = make();
  }
  // Input screening happens inside the candidate pass (validate_assignment_input when it sees NaN/Inf).
  if (in.f32) return solve_typed(Dense<float>{in.f32, in.rows, in.cols, in.maximize}, in, k, max_rounds, stats, dev.get());
  return solve_typed(Dense<double>{in.f64, in.rows, in.cols, in.maximize}, in, k, max_rounds, stats, nullptr);
}

}  // namespace cmsae

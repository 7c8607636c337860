// Candidate pass: row i keeps its k largest keys candidate_key(float(-c_ij), scramble(j, salt_of(i))) (the k
// cheapest entries, ties scrambled per row), column j its kc largest candidate_key(float(-c_ij), scramble(i,
// salt_of(j))); floor_i = the cost one float above the row's k-th key (likewise per column).
#include "candidate_pass.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "../common/candidate_keys.h"
#include "../common/thread_pool.h"
#include "scan_kernels.h"
#include "solver_policy.h"

namespace cmsae::lap {
namespace {

// Candidate keys hold scramble(index, salt) in their index field (candidate_keys.h).
inline long unscramble(uint64_t key, uint32_t salt) {
  return unscramble_index(static_cast<uint32_t>(key_candidate(key).index), salt);
}

// The min-form cost a key holds (float32-rounded).
inline double key_cost(uint64_t key) { return -static_cast<double>(key_candidate(key).value); }

// Every entry whose candidate key is at most `key` (ties in key value included) costs at least this much:
// keys hold -cost rounded to float, so the bound steps one float above before negating.
inline double cost_floor_of_key(uint64_t key) {
  return -static_cast<double>(std::nextafter(key_candidate(key).value, std::numeric_limits<float>::infinity()));
}

// The cost of a candidate: float keys hold float32 costs exactly (no second read of the matrix); float64
// costs are read again.
template <class Cost>
double key_edge_cost(const MinCost<Cost>& D, long i, long j, uint64_t key) {
  if constexpr (sizeof(Cost) == 4) return key_cost(key);
  else return D.at(i, j);
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
void scan_row(const ScanKernelsT<Cost>& K, const MinCost<Cost>& D, long i, uint64_t* heap, int& count, int cap,
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

// The keys the pass found: per row [rows * k] (row_keys[i*k] the smallest kept), per column one list per
// scanning thread [TC][cols * kc] (TC = 1 on the device).
struct CandidateKeys {
  int k = 0, kc = 0, TC = 0;
  std::vector<std::vector<uint64_t>> col_keys;
  std::vector<std::vector<int>> col_cnt;
  std::vector<uint64_t> row_keys;
  std::vector<int> row_cnt;
};

// Pass A: the k cheapest entries of every original row and column. Each thread keeps flat min-heaps of
// integer keys (candidate_key of -cost; root = worst kept) for every column and for the current row;
// a SIMD filter against the current thresholds skips almost every entry. On the device (float32 costs): the
// same keys, computed by cuda/lap_device.cu (one column list in all).
template <class Cost>
CandidateKeys find_candidates(const ScanKernelsT<Cost>& K, const MinCost<Cost>& D, const AssignmentInput& input, int k,
                              int T, DeviceLap* dev, SparseStats* stats) {
  const long rows = D.rows, cols = D.cols;
  CandidateKeys c;
  c.k = k;
  c.kc = column_candidates(k);
  c.TC = dev ? 1 : T;
  const int kc = c.kc;
  c.col_keys.assign(c.TC, std::vector<uint64_t>(static_cast<size_t>(cols) * kc));
  c.col_cnt.assign(c.TC, std::vector<int>(cols, 0));
  c.row_keys.assign(static_cast<size_t>(rows) * k, 0);
  c.row_cnt.assign(rows, 0);
  const Cost cinf = std::numeric_limits<Cost>::infinity();
  std::vector<uint8_t> nonfinite(T, 0);
  if (dev) {
    dev->load(reinterpret_cast<const float*>(D.data), rows, cols, D.maximize);
    nonfinite[0] = dev->candidates(k, kc, c.row_keys.data(), c.row_cnt.data(), c.col_keys[0].data(), c.col_cnt[0].data()) ? 1 : 0;
    if (stats) stats->device = true;
  } else {
    parallel_for(T, [&](int t) {
      uint64_t* ck = c.col_keys[t].data();
      int* cc = c.col_cnt[t].data();
      std::vector<Cost> col_thr(cols, cinf);
      RowScratch<Cost> scratch;
      for (long i = split_begin(rows, T, t); i < split_begin(rows, T, t + 1); ++i)
        scan_row(K, D, i, c.row_keys.data() + i * k, c.row_cnt[i], k, col_thr.data(), &nonfinite[t], scratch, [&](long j, double cost) {
          if (key_heap_offer(ck + j * kc, cc[j], kc, candidate_key(static_cast<float>(-cost), scramble(i, salt_of(j)))))
            col_thr[j] = static_cast<Cost>(key_cost(ck[j * kc]));
        });
    });
  }
  // NaN or an infinity somewhere: the exact check throws for NaN / favourable infinities, accepts forbidden ones.
  bool suspicious = false;
  for (uint8_t f : nonfinite) suspicious |= f != 0;
  if (suspicious) validate_assignment_input(input);
  return c;
}

// Row floors, and each row's candidates into the graph in ascending column order, whatever order the pass left
// them in (CPU heap, device list): the augmenting row reduction breaks ties by edge order, so this keeps the
// matching independent of how the candidates were found.
template <class Cost>
void add_row_candidates(const MinCost<Cost>& D, const CandidateKeys& c, Graph& g, std::vector<double>& row_floor) {
  const int k = c.k;
  for (long i = 0; i < D.rows; ++i)
    if (c.row_cnt[i] == k) row_floor[i] = cost_floor_of_key(c.row_keys[i * k]);
  std::vector<std::pair<long, uint64_t>> by_col;
  for (long i = 0; i < D.rows; ++i) {
    by_col.clear();
    for (int q = 0; q < c.row_cnt[i]; ++q) by_col.push_back({unscramble(c.row_keys[i * k + q], salt_of(i)), c.row_keys[i * k + q]});
    std::sort(by_col.begin(), by_col.end());
    for (const auto& [j, key] : by_col) g.add_original(i, j, key_edge_cost(D, i, j, key));
  }
}

// "Weak" rows: their favourite column has a much better row (the row loses more to that column's best than a
// quarter of its own k candidates' span), so they will be matched elsewhere, among near-equal options that the
// plain top-k does not cover; on correlation-like matrices those rows cause most pricing rounds.
std::vector<int32_t> weak_rows(const CandidateKeys& c, long rows, long cols) {
  const int k = c.k, kc = c.kc;
  std::vector<double> colbest(cols, kInf);
  for (int t = 0; t < c.TC; ++t)
    for (long j = 0; j < cols; ++j)
      for (int q = 0; q < c.col_cnt[t][j]; ++q) colbest[j] = std::min(colbest[j], key_cost(c.col_keys[t][j * kc + q]));
  std::vector<int32_t> weak;
  for (long i = 0; i < rows; ++i) {
    if (c.row_cnt[i] < k) continue;
    const uint64_t* h = c.row_keys.data() + i * k;
    const uint64_t top = *std::max_element(h, h + k);  // the cheapest entry; h[0] is the k-th cheapest
    const long jb = unscramble(top, salt_of(i));
    const double best = key_cost(top), kth = key_cost(h[0]);
    if (best - colbest[jb] > 0.25 * (kth - best)) weak.push_back(static_cast<int32_t>(i));
  }
  return weak;
}

// Pass A': the weak rows get up to 8k candidates each (their row floors rise accordingly).
template <class Cost>
void add_weak_row_candidates(const ScanKernelsT<Cost>& K, const MinCost<Cost>& D, const CandidateKeys& c, int T, Graph& g,
                             std::vector<double>& row_floor, SparseStats* stats) {
  const long rows = D.rows, cols = D.cols;
  const int k = c.k, kc = c.kc;
  const std::vector<int32_t> weak = weak_rows(c, rows, cols);
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
      g.add_original(weak[w], j, key_edge_cost(D, weak[w], j, weak_keys[w * kw + q]));
    }
  }
  if (stats) stats->weak_rows = nw;
}

// Column floors, and the kc cheapest entries of each column (merged over the threads' lists) into the graph.
template <class Cost>
void add_column_candidates(const MinCost<Cost>& D, const CandidateKeys& c, Graph& g, std::vector<double>& col_floor) {
  const int kc = c.kc;
  std::vector<uint64_t> merged;
  for (long j = 0; j < D.cols; ++j) {
    merged.clear();
    for (int t = 0; t < c.TC; ++t)
      merged.insert(merged.end(), c.col_keys[t].begin() + j * kc, c.col_keys[t].begin() + j * kc + c.col_cnt[t][j]);
    const size_t keep = std::min<size_t>(merged.size(), static_cast<size_t>(kc));
    std::nth_element(merged.begin(), merged.begin() + (keep ? keep - 1 : 0), merged.end(), std::greater<uint64_t>());
    // Fewer than kc offers in all: no thread ever filtered this column, every finite entry is in the graph.
    if (keep == static_cast<size_t>(kc)) col_floor[j] = cost_floor_of_key(merged[keep - 1]);
    // Ascending rows: the graph's edge order (ARR tie-breaking) must not depend on the thread count.
    std::sort(merged.begin(), merged.begin() + keep,
              [&](uint64_t a, uint64_t b) { return unscramble(a, salt_of(j)) < unscramble(b, salt_of(j)); });
    for (size_t q = 0; q < keep; ++q) {
      const long i = unscramble(merged[q], salt_of(j));
      g.add_original(i, j, key_edge_cost(D, i, j, merged[q]));
    }
  }
}

}  // namespace

template <class Cost>
CandidateFloors add_candidates(const MinCost<Cost>& D, const AssignmentInput& input, int k, DeviceLap* dev, Graph& g,
                               SparseStats* stats) {
  const ScanKernelsT<Cost>& K = scan_kernels().template of<Cost>();
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), D.rows)));
  const CandidateKeys c = find_candidates(K, D, input, k, T, dev, stats);
  CandidateFloors floors{std::vector<double>(D.rows, kInf), std::vector<double>(D.cols, kInf)};
  g.pending.reserve(static_cast<size_t>(D.rows) * k + static_cast<size_t>(D.cols) * c.kc);
  add_row_candidates(D, c, g, floors.row);
  add_weak_row_candidates(K, D, c, T, g, floors.row, stats);
  add_column_candidates(D, c, g, floors.col);
  g.build();
  return floors;
}

template CandidateFloors add_candidates<float>(const MinCost<float>&, const AssignmentInput&, int, DeviceLap*, Graph&, SparseStats*);
template CandidateFloors add_candidates<double>(const MinCost<double>&, const AssignmentInput&, int, DeviceLap*, Graph&, SparseStats*);

}  // namespace cmsae::lap

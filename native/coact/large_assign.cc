// The certified large-m alignment assignment (see large_assign.h): candidate pass, rounds of exact sparse solve
// and envelope pricing, all over co-firing rows re-formed from the codes (or kept, when they fit the budget).
#include "large_assign.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>

#include "../common/errors.h"
#include "../common/thread_pool.h"
#include "../lap/pricing_pass.h"
#include "../lap/solver_policy.h"
#include "../lap/sparse_graph.h"
#include "../lap/sparse_rounds.h"
#include "lower_envelope.h"
#include "rank_one_buckets.h"

namespace cmsae::coact {
namespace {

using lap::Edge;
using lap::Graph;
using lap::kInf;
using CostCol = std::pair<double, int32_t>;  // (min-form cost, column or row)

// The problem as the passes see it: rows = alive A latents, columns = alive B latents, min-form costs -C'.
struct Problem {
  const CofireLayout& L;
  const PearsonTerms& t;
  const std::vector<int32_t>& ra;
  const std::vector<int32_t>& rb;
  bool sgn;
  long na, nb;
  std::vector<int32_t> apos;        // A latent -> row (-1: not alive)
  std::vector<double> P, Q;         // rank-one factors: C = float(-P_r Q_c) where the pair never co-fires
  double qmax = 0;                  // max |Q_c|
  std::vector<double> fr, invc;     // the Pearson terms by row and by column
  struct BTerms {
    double inv, h;
    int32_t c;  // column of the B latent, -1 when not alive
  };
  std::vector<BTerms> bterms;       // [mB]: a B latent's terms and column together
  float corr(long r, long c, double s) const { return pearson(s, fr[r], P[r], invc[c], Q[c]); }
  double cost_of(float C) const { return sgn ? -static_cast<double>(C) : -static_cast<double>(std::fabs(C)); }
  double cost(long r, long c, double s) const { return cost_of(corr(r, c, s)); }
};

Problem make_problem(const CofireLayout& L, const PearsonTerms& t, const std::vector<int32_t>& ra,
                     const std::vector<int32_t>& rb, bool sgn) {
  Problem p{L, t, ra, rb, sgn, static_cast<long>(ra.size()), static_cast<long>(rb.size()), {}, {}, {}, 0.0, {}, {}, {}};
  p.apos.assign(L.mA, -1);
  for (long r = 0; r < p.na; ++r) p.apos[ra[r]] = static_cast<int32_t>(r);
  p.P.resize(p.na);
  p.Q.resize(p.nb);
  p.fr.resize(p.na);
  p.invc.resize(p.nb);
  for (long r = 0; r < p.na; ++r) {
    p.P[r] = t.g[ra[r]];
    p.fr[r] = t.f[ra[r]];
  }
  p.bterms.assign(L.mB, Problem::BTerms{0.0, 0.0, -1});
  for (long c = 0; c < p.nb; ++c) {
    p.invc[c] = t.inv[rb[c]];
    p.Q[c] = t.h[rb[c]];
    p.qmax = std::max(p.qmax, std::fabs(p.Q[c]));
    p.bterms[rb[c]] = {p.invc[c], p.Q[c], static_cast<int32_t>(c)};
  }
  return p;
}

// Co-firing entries (column, C) of every row, kept between rounds when they fit: each worker appends rows to
// blocks of kBlockEntries (a row never straddles two blocks; blocks are never moved or copied).
struct CacheEnt {
  int32_t c;
  float C;
};
struct CacheBlocks {
  static constexpr size_t kBlockEntries = size_t(1) << 21;  // 16 MiB
  std::vector<std::unique_ptr<CacheEnt[]>> blocks;
  size_t used = kBlockEntries;  // entries used in the last block
  // Room for n more entries of one row (n <= kBlockEntries or a block of its own).
  CacheEnt* reserve(size_t n) {
    if (used + n > kBlockEntries) {
      blocks.emplace_back(new CacheEnt[std::max(n, kBlockEntries)]);
      used = 0;
    }
    return blocks.back().get() + used;
  }
  size_t bytes() const { return blocks.size() * kBlockEntries * sizeof(CacheEnt); }
};
struct CofireCache {
  bool on = false;
  std::vector<CacheBlocks> per_worker;
  std::vector<const CacheEnt*> row;  // [na]: the row's entries
  std::vector<int32_t> len;          // [na]
};

// A row's correlations (co-firing entries, whether a column co-fires, C anywhere): from the entries kept in memory (d: the row's kept C spread over the
// columns, NaN elsewhere) or from the re-formed row.
struct CachedRowAccess {
  const Problem& p;
  long r;
  const CacheEnt* e;
  int n;
  const std::vector<float>& d;
  template <class Fn>
  void cofiring(Fn&& fn) const {
    for (int q = 0; q < n; ++q) fn(e[q].c, e[q].C);
  }
  bool cofires(long c) const { return !std::isnan(d[c]); }
  float value(long c) const { return std::isnan(d[c]) ? p.corr(r, c, 0.0) : d[c]; }
};
struct PassRowAccess {
  const Problem& p;
  long r;
  const CofireRow& row;
  // fn(c, C) for every alive column that co-fires with the row (S != 0): a dense row walks the columns in order,
  // a sparse one its listed B latents (one cache line of column terms each).
  template <class Fn>
  void cofiring(Fn&& fn) const {
    const double fr = p.fr[r], pr = p.P[r];
    if (row.dense()) {
      for (long c = 0; c < p.nb; ++c) {
        const double s = row.s[p.rb[c]];
        if (s != 0.0) fn(c, pearson(s, fr, pr, p.invc[c], p.Q[c]));
      }
      return;
    }
    for (int q = 0; q < row.n_cols; ++q) {
      const int32_t j = row.cols[q];
      const Problem::BTerms& b = p.bterms[j];
      const double s = row.s[j];
      if (b.c >= 0 && s != 0.0) fn(b.c, pearson(s, fr, pr, b.inv, b.h));
    }
  }
  bool cofires(long c) const { return row.s[p.rb[c]] != 0.0; }
  float value(long c) const { return p.corr(r, c, row.s[p.rb[c]]); }
};

// The kc cheapest (cost, row) offers of each column (a max-heap per column), behind a float threshold per column
// (its heap's worst cost rounded up; +inf until full) that rejects most offers without touching the heaps.
// A worker's threshold never rejects an offer that belongs to the overall kc best, so the merged result does not
// depend on how rows were spread over the workers.
struct ColumnHeaps {
  int kc = 0;
  std::vector<CostCol> h;
  std::vector<int> n;
  std::vector<float> thr;
  ColumnHeaps(long nb, int kc_)
      : kc(kc_), h(static_cast<size_t>(nb) * kc_), n(nb, 0), thr(nb, std::numeric_limits<float>::infinity()) {}
  void offer(long c, double cost, int32_t r) {
    if (!(static_cast<float>(cost) <= thr[c])) return;
    CostCol* b = h.data() + c * kc;
    int& m = n[c];
    const CostCol x{cost, r};
    if (m < kc) {
      b[m++] = x;
      std::push_heap(b, b + m);
      if (m < kc) return;
    } else if (x < b[0]) {
      std::pop_heap(b, b + kc);
      b[kc - 1] = x;
      std::push_heap(b, b + kc);
    } else {
      return;
    }
    const float t = static_cast<float>(b[0].first);
    thr[c] = static_cast<double>(t) >= b[0].first ? t : std::nextafter(t, std::numeric_limits<float>::infinity());
  }
};

// Columns in the order of their rank-one cost for a row: signed and P >= 0: Q ascending; signed and P < 0:
// Q descending; absolute: |Q| descending.
struct RankOneOrders {
  std::vector<int32_t> q_asc, q_desc, absq_desc;
  explicit RankOneOrders(const Problem& p) {
    q_asc.resize(p.nb);
    for (long c = 0; c < p.nb; ++c) q_asc[c] = static_cast<int32_t>(c);
    std::stable_sort(q_asc.begin(), q_asc.end(), [&](int32_t x, int32_t y) { return p.Q[x] < p.Q[y]; });
    q_desc.assign(q_asc.rbegin(), q_asc.rend());
    absq_desc = q_asc;
    std::stable_sort(absq_desc.begin(), absq_desc.end(), [&](int32_t x, int32_t y) { return std::fabs(p.Q[x]) > std::fabs(p.Q[y]); });
  }
  const std::vector<int32_t>& for_row(const Problem& p, long r) const {
    if (!p.sgn) return absq_desc;
    return p.P[r] >= 0 ? q_asc : q_desc;
  }
};

// First graph: each row's k cheapest entries (co-firing ones and the cheapest rank-one ones), the diagonal
// (r, r) for r < min(na, nb) (a perfect matching, so every graph is feasible), and each column's kc cheapest
// offers (from its co-firing rows and from the rows of extreme P, which offer every column).
struct CandidateSet {
  int k = 0;
  std::vector<CostCol> row;  // [na * k]
  std::vector<int> row_n;    // [na]
  std::vector<double> diag;  // [min(na, nb)]
  std::vector<std::vector<CostCol>> col;  // [nb]: (cost, row), best first
  int weak_k = 0;                          // candidates of the weak rows (0: none)
  std::vector<std::vector<CostCol>> weak;  // [na] when weak_k > 0: the weak rows' weak_k candidates
};

// The kk cheapest (cost, column) entries of a row (a max-heap; sorted ascending by finish()).
struct RowTop {
  int k = 0;
  std::vector<CostCol> h;
  double thr() const { return static_cast<int>(h.size()) < k ? kInf : h.front().first; }
  void offer(double cost, int32_t c) {
    const CostCol x{cost, c};
    if (static_cast<int>(h.size()) < k) {
      h.push_back(x);
      std::push_heap(h.begin(), h.end());
    } else if (x < h.front()) {
      std::pop_heap(h.begin(), h.end());
      h.back() = x;
      std::push_heap(h.begin(), h.end());
    }
  }
  void finish() { std::sort_heap(h.begin(), h.end()); }
};

// Row r's top.k cheapest entries: its co-firing ones (each also given to on_entry(c, C, cost)) and the cheapest
// rank-one ones, walked in the order of their rank-one cost.
template <class Access, class OnEntry>
void row_candidates(const Problem& p, long r, const Access& acc, const RankOneOrders& orders, RowTop& top, OnEntry&& on_entry) {
  top.h.clear();
  acc.cofiring([&](long c, float C) {
    const double cost = p.cost_of(C);
    on_entry(c, C, cost);
    if (cost <= top.thr()) top.offer(cost, static_cast<int32_t>(c));
  });
  int got = 0;
  for (int32_t c : orders.for_row(p, r)) {
    if (got >= top.k) break;
    if (acc.cofires(c)) continue;
    top.offer(p.cost_of(acc.value(c)), c);
    ++got;
  }
  top.finish();
}

// Calls fn(worker, r, access) for the rows `rows` (graph rows of the problem), from the kept co-firing entries
// when the cache is on, else through a pass over the codes.
template <class Fn>
void for_rows(const Problem& p, const CofireCache& cache, const std::vector<int32_t>& rows, LargeAlignStats& st, Fn&& fn) {
  const int T = num_threads();
  if (cache.on) {
    std::vector<std::vector<float>> dense(T);
    const long n = static_cast<long>(rows.size());
    const int tasks = static_cast<int>(std::max<long>(1, std::min<long>(n, 64L * T)));
    parallel_for_workers(tasks, [&](int task, int w) {
      std::vector<float>& d = dense[w];
      if (d.empty()) d.assign(p.nb, std::numeric_limits<float>::quiet_NaN());
      for (long q = split_begin(n, tasks, task); q < split_begin(n, tasks, task + 1); ++q) {
        const long r = rows[q];
        const CacheEnt* e = cache.row[r];
        const int len = cache.len[r];
        for (int t = 0; t < len; ++t) d[e[t].c] = e[t].C;
        fn(w, r, CachedRowAccess{p, r, e, len, d});
        for (int t = 0; t < len; ++t) d[e[t].c] = std::numeric_limits<float>::quiet_NaN();
      }
    });
    return;
  }
  std::vector<int32_t> latents(rows.size());
  for (size_t q = 0; q < rows.size(); ++q) latents[q] = p.ra[rows[q]];
  for_each_cofire_row(p.L, latents, [&](int w, const CofireRow& row) {
    const long r = p.apos[row.latent];
    fn(w, r, PassRowAccess{p, r, row});
  });
  st.row_passes += 1;
}

// "Weak" rows (as in the dense sparse path): their cheapest column has a much better row (the row loses more
// to that column's best than a quarter of its own k candidates' span), so they will be matched among
// near-equal options the plain top-k misses. They get kw = clamp(na k / #weak, 2k, 8k) candidates.
void add_weak_row_candidates(const Problem& p, const CofireCache& cache, const RankOneOrders& orders, CandidateSet& cs,
                             LargeAlignStats& st) {
  const int k = cs.k;
  std::vector<int32_t> weak;
  for (long r = 0; r < p.na; ++r) {
    if (cs.row_n[r] < k) continue;
    const CostCol& best = cs.row[r * k];
    const double kth = cs.row[r * k + k - 1].first;
    const double colbest = cs.col[best.second].empty() ? kInf : cs.col[best.second][0].first;
    if (best.first - colbest > 0.25 * (kth - best.first)) weak.push_back(static_cast<int32_t>(r));
  }
  st.weak_rows = static_cast<long>(weak.size());
  if (weak.empty()) return;
  const long budget = p.na * static_cast<long>(k) / static_cast<long>(weak.size());
  const int kw = static_cast<int>(std::min<long>(std::clamp<long>(budget, 2L * k, 8L * k), p.nb));
  if (kw <= k) return;
  cs.weak_k = kw;
  cs.weak.assign(p.na, {});
  std::vector<RowTop> tops(num_threads());
  for (RowTop& t : tops) t.k = kw;
  for_rows(p, cache, weak, st, [&](int w, long r, const auto& acc) {
    row_candidates(p, r, acc, orders, tops[w], [](long, float, double) {});
    cs.weak[r] = tops[w].h;
  });
}

// Rows of extreme P (the kc smallest, and for the signed objective the kc largest): their rank-one entries are
// every column's cheapest, so they offer every column.
std::vector<uint8_t> extreme_rows(const Problem& p, int kc) {
  std::vector<uint8_t> special(p.na, 0);
  std::vector<int32_t> byp(p.na);
  for (long r = 0; r < p.na; ++r) byp[r] = static_cast<int32_t>(r);
  auto key = [&](int32_t r) { return p.sgn ? p.P[r] : -std::fabs(p.P[r]); };
  std::stable_sort(byp.begin(), byp.end(), [&](int32_t x, int32_t y) { return key(x) < key(y); });
  for (long q = 0; q < std::min<long>(kc, p.na); ++q) special[byp[q]] = 1;
  if (p.sgn)
    for (long q = 0; q < std::min<long>(kc, p.na); ++q) special[byp[p.na - 1 - q]] = 1;
  return special;
}

// Each column's kc cheapest offers over the workers' heaps, best first (ties by row: thread-count independent).
std::vector<std::vector<CostCol>> merge_column_heaps(long nb, const std::vector<ColumnHeaps>& heaps) {
  const int T = num_threads();
  const int kc = heaps.front().kc;
  std::vector<std::vector<CostCol>> col(nb);
  parallel_for(T, [&](int t) {
    std::vector<CostCol> all;
    for (long c = split_begin(nb, T, t); c < split_begin(nb, T, t + 1); ++c) {
      all.clear();
      for (const ColumnHeaps& h : heaps) all.insert(all.end(), h.h.begin() + c * kc, h.h.begin() + c * kc + h.n[c]);
      std::sort(all.begin(), all.end());
      all.erase(std::unique(all.begin(), all.end()), all.end());
      if (static_cast<int>(all.size()) > kc) all.resize(kc);
      col[c] = all;
    }
  });
  return col;
}

CandidateSet candidate_pass(const Problem& p, int k, CofireCache& cache, double cache_bytes, LargeAlignStats& st) {
  const int T = num_threads();
  const int kc = cmsae::column_candidates(k);
  CandidateSet cs;
  cs.k = k;
  cs.row.resize(static_cast<size_t>(p.na) * k);
  cs.row_n.assign(p.na, 0);
  const long nmin = std::min(p.na, p.nb);
  cs.diag.assign(nmin, 0.0);
  const RankOneOrders orders(p);
  const std::vector<uint8_t> special = extreme_rows(p, kc);
  std::vector<ColumnHeaps> heaps;
  heaps.reserve(T);
  for (int w = 0; w < T; ++w) heaps.emplace_back(p.nb, kc);
  std::vector<RowTop> tops(T);
  for (RowTop& t : tops) t.k = k;
  cache.on = cache_bytes > 0;
  cache.per_worker.clear();
  cache.per_worker.resize(T);
  cache.row.assign(p.na, nullptr);
  cache.len.assign(p.na, 0);
  std::atomic<int64_t> cached_bytes{0};
  std::atomic<bool> cache_full{false};
  std::vector<double> pairs(T, 0.0);
  for_each_cofire_row(p.L, p.ra, [&](int w, const CofireRow& row) {
    const long r = p.apos[row.latent];
    // The row's co-firing entries number at most its listed columns (all nb for a dense row).
    const size_t most = row.dense() ? static_cast<size_t>(p.nb) : static_cast<size_t>(row.n_cols);
    bool keep = cache.on && !cache_full.load(std::memory_order_relaxed);
    if (keep && cached_bytes.fetch_add(static_cast<int64_t>(most) * 8) + static_cast<int64_t>(most) * 8 > cache_bytes) {
      cache_full = true;
      keep = false;
    }
    CacheEnt* out = keep ? cache.per_worker[w].reserve(most) : nullptr;
    ColumnHeaps& ch = heaps[w];
    long n = 0;
    row_candidates(p, r, PassRowAccess{p, r, row}, orders, tops[w], [&](long c, float C, double cost) {
      ch.offer(c, cost, static_cast<int32_t>(r));
      if (keep) out[n] = {static_cast<int32_t>(c), C};
      ++n;
    });
    pairs[w] += static_cast<double>(n);
    if (keep) {
      cache.per_worker[w].used += static_cast<size_t>(n);
      cached_bytes.fetch_sub(static_cast<int64_t>(most - n) * 8);
      cache.row[r] = out;
      cache.len[r] = static_cast<int32_t>(n);
    }
    std::copy(tops[w].h.begin(), tops[w].h.end(), cs.row.begin() + r * k);
    cs.row_n[r] = static_cast<int>(tops[w].h.size());
    if (r < nmin) cs.diag[r] = p.cost(r, r, row.s[p.rb[r]]);
    if (special[r])  // its rank-one entries (the co-firing ones were offered above: no offer twice)
      for (long c = 0; c < p.nb; ++c)
        if (row.s[p.rb[c]] == 0.0) ch.offer(c, p.cost(r, c, 0.0), static_cast<int32_t>(r));
  });
  st.row_passes += 1;
  for (double x : pairs) st.cofire_pairs += x;
  if (cache.on && cache_full) {
    cache.on = false;
    cache.per_worker.clear();
    cache.per_worker.shrink_to_fit();
  }
  st.cached = cache.on;
  cs.col = merge_column_heaps(p.nb, heaps);
  add_weak_row_candidates(p, cache, orders, cs, st);
  return cs;
}

void add_candidates(const Problem& p, const CandidateSet& cs, Graph& g) {
  for (long r = 0; r < p.na; ++r) {
    if (cs.weak_k > 0 && !cs.weak[r].empty())
      for (const CostCol& e : cs.weak[r]) g.add_original(r, e.second, e.first);
    else
      for (int q = 0; q < cs.row_n[r]; ++q) g.add_original(r, cs.row[r * cs.k + q].second, cs.row[r * cs.k + q].first);
    if (r < static_cast<long>(cs.diag.size())) g.add_original(r, r, cs.diag[r]);
  }
  for (long c = 0; c < p.nb; ++c)
    for (const CostCol& e : cs.col[c]) g.add_original(e.second, c, e.first);
  g.build();
}

// What one pricing pass found: per row, its most violating entries (column, cost), and the signed correlation of
// each row's current match.
struct Pricing {
  std::vector<std::vector<Edge>> edges;  // [na]
  long total = 0, scanned = 0;
};

// Prices row r (duals ur, vc in min form; match: the row's column or -1) through `acc`: acc.cofiring(fn(c, C))
// and acc.value(c) (C at any column).
template <class Access>
void price_row(const Problem& p, long r, const Access& acc, double ur, const std::vector<double>& vc, double tol,
               const LowerEnvelope& env, const RankOneBuckets& buckets, int32_t match, lap::TopK& top, Pricing& out,
               std::vector<float>& matched_c, long& nviol, long& nscanned) {
  const double x = p.sgn ? p.P[r] : std::fabs(p.P[r]);
  const double slack = std::fabs(p.P[r]) * p.qmax * 0x1p-23;  // float32 rounding of the rank-one values
  const double bound = env.lower_bound(x) - slack;
  top.h.clear();
  long v = 0;
  auto check = [&](long c, float C) {
    const double red = p.cost_of(C) - ur - vc[c];
    if (red < -tol) {
      ++v;
      top.offer(red, static_cast<int32_t>(c));
    }
  };
  acc.cofiring(check);
  if (bound - ur < -tol) {  // some rank-one entry may violate: walk the columns that can
    ++nscanned;
    buckets.for_candidates(p.sgn ? p.P[r] : -std::fabs(p.P[r]), -slack - ur + tol - 1e-12 * (1 + std::fabs(ur)), [&](int32_t c) {
      if (!acc.cofires(c)) check(c, acc.value(c));
    });
  }
  matched_c[r] = match >= 0 ? acc.value(match) : 0.f;
  if (v == 0) return;
  nviol += v;
  std::vector<Edge>& e = out.edges[r];
  e.clear();
  for (const auto& h : top.h) e.push_back({h.second, p.cost_of(acc.value(h.second))});
  std::sort(e.begin(), e.end(), [](const Edge& a, const Edge& b) { return a.col < b.col; });
}

Pricing pricing_pass(const Problem& p, const CofireCache& cache, const std::vector<double>& ur, const std::vector<double>& vc,
                     const std::vector<int32_t>& match, double tol, int k, std::vector<float>& matched_c, LargeAlignStats& st) {
  std::vector<std::pair<double, double>> lines(p.nb);
  for (long c = 0; c < p.nb; ++c) lines[c] = {p.sgn ? p.Q[c] : -std::fabs(p.Q[c]), -vc[c]};
  const LowerEnvelope env(std::move(lines));
  std::vector<double> key(p.nb);
  for (long c = 0; c < p.nb; ++c) key[c] = p.sgn ? p.Q[c] : std::fabs(p.Q[c]);
  const RankOneBuckets buckets(key, vc);
  const int T = num_threads();
  Pricing out;
  out.edges.assign(p.na, {});
  std::vector<long> nviol(T, 0), nscan(T, 0);
  std::vector<lap::TopK> tops(T);
  for (lap::TopK& t : tops) t.k = 4 * k;
  std::vector<int32_t> rows(p.na);
  for (long r = 0; r < p.na; ++r) rows[r] = static_cast<int32_t>(r);
  for_rows(p, cache, rows, st, [&](int w, long r, const auto& acc) {
    price_row(p, r, acc, ur[r], vc, tol, env, buckets, match[r], tops[w], out, matched_c, nviol[w], nscan[w]);
  });
  for (int w = 0; w < T; ++w) {
    out.total += nviol[w];
    out.scanned += nscan[w];
  }
  return out;
}

}  // namespace

double large_solver_bytes(long long na, long long nb, int k, int threads) {
  const double kc = cmsae::column_candidates(k);
  const double n = static_cast<double>(std::max(na, nb));
  const double graph = 16.0 * n * (k + kc + 1) * 3;                  // edges, with room for the pricing rounds
  const double cands = 16.0 * na * k + 24.0 * nb * kc + 16.0 * threads * nb * kc;
  const double state = 8.0 * 8 * n + 48.0 * nb;                       // duals, matching, orders, envelope
  const double pricing = 16.0 * na * 4 * k / 4 + 24.0 * na + 4.0 * threads * nb;  // violators (a quarter of rows)
  return graph + cands + state + pricing;
}

AssignmentResult solve_large_alignment(const CofireLayout& L, const PearsonTerms& terms, const std::vector<int32_t>& ra,
                                       const std::vector<int32_t>& rb, const LargeAlignOptions& opt,
                                       std::vector<float>& matched_c, LargeAlignStats* stats_out) {
  LargeAlignStats st;
  const Problem p = make_problem(L, terms, ra, rb, opt.use_signed);
  matched_c.assign(p.na, 0.f);
  AssignmentResult out;
  if (p.na == 0 || p.nb == 0) {
    out.row_to_col.assign(p.na, -1);
    out.col_to_row.assign(p.nb, -1);
    out.u.assign(p.na, 0.0);
    out.v.assign(p.nb, 0.0);
    if (stats_out) *stats_out = st;
    return out;
  }
  lap::PhaseClock clock;
  const int k = static_cast<int>(std::min<long>(opt.candidates, p.nb));
  CofireCache cache;
  const CandidateSet cs = candidate_pass(p, k, cache, opt.cache_bytes, st);
  const lap::Orientation o = lap::orient(p.na, p.nb, 4e6);
  Graph g(o.nr + o.pad, o.nc, o.transposed);
  add_candidates(p, cs, g);
  clock("candidates");
  const double tol = lap::pricing_tolerance(g, o);
  lap::SparseState ss;
  std::vector<int32_t> touched;
  long last_violations = 0;
  std::vector<int32_t> match(p.na);
  for (int round = 0;; ++round) {
    if (round >= opt.max_rounds)
      fail("ERR_INTERNAL", "the large-m alignment did not certify its optimum in " + std::to_string(opt.max_rounds) + " pricing rounds");
    const bool warm = lap::warm_round(o, round, last_violations);
    const bool ok = warm ? lap::warm_solve(g, o, touched, tol, ss) : lap::cold_solve(g, o, ss, clock);
    clock(warm ? "warm-solve" : "solve");
    if (!ok) fail("ERR_INTERNAL", "the large-m alignment's sparse graph lost its perfect matching (a bug: the diagonal edges guarantee one)");
    st.rounds = round + 1;
    st.warm_rounds += warm;
    const std::vector<double>& ur = o.transposed ? ss.v : ss.u;
    const std::vector<double>& vc = o.transposed ? ss.u : ss.v;
    for (long r = 0; r < p.na; ++r) {
      const int32_t m = o.transposed ? ss.row4col[r] : ss.col4row[r];
      match[r] = m >= 0 && m < (o.transposed ? o.nr : o.nc) ? m : -1;
    }
    const Pricing pr = pricing_pass(p, cache, ur, vc, match, tol, k, matched_c, st);
    clock("pricing");
    if (clock.on()) std::fprintf(stderr, "(%ld rows scanned whole, %ld violations)\n", pr.scanned, pr.total);
    st.rows_scanned += pr.scanned;
    st.violations += pr.total;
    last_violations = pr.total;
    if (pr.total == 0) break;
    std::vector<std::pair<int32_t, int32_t>> added;
    for (long r = 0; r < p.na; ++r)
      for (const Edge& e : pr.edges[r]) {
        g.add_original(r, e.col, e.cost);
        added.push_back({static_cast<int32_t>(r), e.col});
      }
    g.build();
    touched = lap::touched_graph_rows(g, added);
  }
  lap::oriented_result(o, ss, true, out);
  double obj = 0;
  for (long r = 0; r < p.na; ++r)
    if (out.row_to_col[r] >= 0) obj += static_cast<double>(opt.use_signed ? matched_c[r] : std::fabs(matched_c[r]));
    else matched_c[r] = 0.f;
  out.objective = obj;
  st.edges = static_cast<long>(g.edges.size()) - (o.pad > 0 && !g.row(o.nr).empty() ? o.pad * o.nc : 0);
  if (stats_out) *stats_out = st;
  return out;
}

}  // namespace cmsae::coact

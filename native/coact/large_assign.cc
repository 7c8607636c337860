// The certified large-m alignment assignment (see large_assign.h): candidate pass, rounds of exact sparse solve
// and envelope pricing, all over co-firing rows re-formed from the codes (or kept, when they fit the budget).
#include "large_assign.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>

#include "../common/errors.h"
#include "../common/thread_pool.h"
#include "../lap/pricing_pass.h"
#include "../lap/solver_policy.h"
#include "../lap/sparse_graph.h"
#include "../lap/sparse_rounds.h"
#include "lower_envelope.h"

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
  std::vector<int32_t> apos, bpos;  // latent -> row / column (-1: not alive)
  std::vector<double> P, Q;         // rank-one factors: C = float(-P_r Q_c) where the pair never co-fires
  double qmax = 0;                  // max |Q_c|
  float corr(long r, long c, double s) const { return pearson(s, t.f[ra[r]], t.g[ra[r]], t.inv[rb[c]], t.h[rb[c]]); }
  double cost_of(float C) const { return sgn ? -static_cast<double>(C) : -static_cast<double>(std::fabs(C)); }
  double cost(long r, long c, double s) const { return cost_of(corr(r, c, s)); }
};

Problem make_problem(const CofireLayout& L, const PearsonTerms& t, const std::vector<int32_t>& ra,
                     const std::vector<int32_t>& rb, bool sgn) {
  Problem p{L, t, ra, rb, sgn, static_cast<long>(ra.size()), static_cast<long>(rb.size()), {}, {}, {}, {}};
  p.apos.assign(L.mA, -1);
  p.bpos.assign(L.mB, -1);
  for (long r = 0; r < p.na; ++r) p.apos[ra[r]] = static_cast<int32_t>(r);
  for (long c = 0; c < p.nb; ++c) p.bpos[rb[c]] = static_cast<int32_t>(c);
  p.P.resize(p.na);
  p.Q.resize(p.nb);
  for (long r = 0; r < p.na; ++r) p.P[r] = t.g[ra[r]];
  for (long c = 0; c < p.nb; ++c) {
    p.Q[c] = t.h[rb[c]];
    p.qmax = std::max(p.qmax, std::fabs(p.Q[c]));
  }
  return p;
}

// Calls fn(c, s) for every alive column that co-fires with the row (S != 0).
template <class Fn>
void for_cofiring(const Problem& p, const CofireRow& row, Fn&& fn) {
  if (row.dense()) {
    for (long c = 0; c < p.nb; ++c) {
      const double s = row.s[p.rb[c]];
      if (s != 0.0) fn(c, s);
    }
    return;
  }
  for (int q = 0; q < row.n_cols; ++q) {
    const int32_t j = row.cols[q];
    const int32_t c = p.bpos[j];
    if (c >= 0 && row.s[j] != 0.0) fn(c, row.s[j]);
  }
}

// Co-firing entries (column, C) of every row, kept between rounds when they fit (per-worker arrays).
struct CacheEnt {
  int32_t c;
  float C;
};
struct CofireCache {
  bool on = false;
  std::vector<std::vector<CacheEnt>> per_worker;
  std::vector<int32_t> worker;  // [na]
  std::vector<int64_t> off;     // [na]
  std::vector<int32_t> len;     // [na]
};

// The kc cheapest (cost, row) offers of each column (a max-heap per column).
struct ColumnHeaps {
  int kc = 0;
  std::vector<CostCol> h;
  std::vector<int> n;
  ColumnHeaps(long nb, int kc_) : kc(kc_), h(static_cast<size_t>(nb) * kc_), n(nb, 0) {}
  void offer(long c, double cost, int32_t r) {
    CostCol* b = h.data() + c * kc;
    int& m = n[c];
    const CostCol x{cost, r};
    if (m < kc) {
      b[m++] = x;
      std::push_heap(b, b + m);
    } else if (x < b[0]) {
      std::pop_heap(b, b + kc);
      b[kc - 1] = x;
      std::push_heap(b, b + kc);
    }
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
};

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
  // Rows of extreme P give every column its cheapest rank-one offers.
  std::vector<uint8_t> special(p.na, 0);
  {
    std::vector<int32_t> byp(p.na);
    for (long r = 0; r < p.na; ++r) byp[r] = static_cast<int32_t>(r);
    auto key = [&](int32_t r) { return p.sgn ? p.P[r] : -std::fabs(p.P[r]); };
    std::stable_sort(byp.begin(), byp.end(), [&](int32_t x, int32_t y) { return key(x) < key(y); });
    for (long q = 0; q < std::min<long>(kc, p.na); ++q) special[byp[q]] = 1;
    if (p.sgn)
      for (long q = 0; q < std::min<long>(kc, p.na); ++q) special[byp[p.na - 1 - q]] = 1;
  }
  std::vector<ColumnHeaps> heaps;
  heaps.reserve(T);
  for (int w = 0; w < T; ++w) heaps.emplace_back(p.nb, kc);
  std::vector<std::vector<CostCol>> buf(T);
  cache.on = cache_bytes > 0;
  cache.per_worker.assign(T, {});
  cache.worker.assign(p.na, -1);
  cache.off.assign(p.na, 0);
  cache.len.assign(p.na, 0);
  std::atomic<int64_t> cached_bytes{0};
  std::atomic<bool> cache_full{false};
  std::vector<double> pairs(T, 0.0);
  std::vector<int32_t> latents(p.ra);
  for_each_cofire_row(p.L, latents, [&](int w, const CofireRow& row) {
    const long r = p.apos[row.latent];
    std::vector<CostCol>& b = buf[w];
    b.clear();
    const bool keep = cache.on && !cache_full.load(std::memory_order_relaxed);
    std::vector<CacheEnt>& cw = cache.per_worker[w];
    const size_t c0 = cw.size();
    for_cofiring(p, row, [&](long c, double s) {
      const float C = p.corr(r, c, s);
      const double cost = p.cost_of(C);
      b.push_back({cost, static_cast<int32_t>(c)});
      heaps[w].offer(c, cost, static_cast<int32_t>(r));
      if (keep) cw.push_back({static_cast<int32_t>(c), C});
    });
    pairs[w] += static_cast<double>(b.size());
    if (keep) {
      const int64_t n = static_cast<int64_t>(cw.size() - c0);
      if (cached_bytes.fetch_add(n * 8) + n * 8 > cache_bytes) cache_full = true;
      cache.worker[r] = w;
      cache.off[r] = static_cast<int64_t>(c0);
      cache.len[r] = static_cast<int32_t>(n);
    }
    int got = 0;
    for (int32_t c : orders.for_row(p, r)) {
      if (got >= k) break;
      if (row.s[p.rb[c]] != 0.0) continue;
      b.push_back({p.cost(r, c, 0.0), c});
      ++got;
    }
    const size_t keepn = std::min<size_t>(k, b.size());
    std::partial_sort(b.begin(), b.begin() + keepn, b.end());
    std::copy(b.begin(), b.begin() + keepn, cs.row.begin() + r * k);
    cs.row_n[r] = static_cast<int>(keepn);
    if (r < nmin) cs.diag[r] = p.cost(r, r, row.s[p.rb[r]]);
    if (special[r])
      for (long c = 0; c < p.nb; ++c) heaps[w].offer(c, p.cost(r, c, row.s[p.rb[c]]), static_cast<int32_t>(r));
  });
  st.row_passes += 1;
  for (double x : pairs) st.cofire_pairs += x;
  if (cache.on && cache_full) {
    cache.on = false;
    cache.per_worker.clear();
    cache.per_worker.shrink_to_fit();
  }
  st.cached = cache.on;
  cs.col.assign(p.nb, {});
  parallel_for(T, [&](int t) {
    std::vector<CostCol> all;
    for (long c = split_begin(p.nb, T, t); c < split_begin(p.nb, T, t + 1); ++c) {
      all.clear();
      for (int w = 0; w < T; ++w) all.insert(all.end(), heaps[w].h.begin() + c * kc, heaps[w].h.begin() + c * kc + heaps[w].n[c]);
      std::sort(all.begin(), all.end());
      all.erase(std::unique(all.begin(), all.end()), all.end());
      if (static_cast<int>(all.size()) > kc) all.resize(kc);
      cs.col[c] = all;
    }
  });
  return cs;
}

void add_candidates(const Problem& p, const CandidateSet& cs, Graph& g) {
  for (long r = 0; r < p.na; ++r) {
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
               const LowerEnvelope& env, int32_t match, lap::TopK& top, Pricing& out, std::vector<float>& matched_c,
               long& nviol, long& nscanned) {
  const double x = p.sgn ? p.P[r] : std::fabs(p.P[r]);
  const double bound = env.lower_bound(x) - std::fabs(p.P[r]) * p.qmax * 0x1p-23;
  top.h.clear();
  long v = 0;
  auto check = [&](long c, float C) {
    const double red = p.cost_of(C) - ur - vc[c];
    if (red < -tol) {
      ++v;
      top.offer(red, static_cast<int32_t>(c));
    }
  };
  if (bound - ur >= -tol) {
    acc.cofiring(check);
  } else {
    ++nscanned;
    for (long c = 0; c < p.nb; ++c) check(c, acc.value(c));
  }
  matched_c[r] = match >= 0 ? acc.value(match) : 0.f;
  if (v == 0) return;
  nviol += v;
  std::vector<Edge>& e = out.edges[r];
  e.clear();
  for (const auto& h : top.h) e.push_back({h.second, p.cost_of(acc.value(h.second))});
  std::sort(e.begin(), e.end(), [](const Edge& a, const Edge& b) { return a.col < b.col; });
}

// A row's correlations during pricing: from the entries kept in memory (d: the row's kept C spread over the
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
  float value(long c) const { return std::isnan(d[c]) ? p.corr(r, c, 0.0) : d[c]; }
};
struct PassRowAccess {
  const Problem& p;
  long r;
  const CofireRow& row;
  template <class Fn>
  void cofiring(Fn&& fn) const {
    for_cofiring(p, row, [&](long c, double s) { fn(c, p.corr(r, c, s)); });
  }
  float value(long c) const { return p.corr(r, c, row.s[p.rb[c]]); }
};

Pricing pricing_pass(const Problem& p, const CofireCache& cache, const std::vector<double>& ur, const std::vector<double>& vc,
                     const std::vector<int32_t>& match, double tol, int k, std::vector<float>& matched_c, LargeAlignStats& st) {
  std::vector<std::pair<double, double>> lines(p.nb);
  for (long c = 0; c < p.nb; ++c) lines[c] = {p.sgn ? p.Q[c] : -std::fabs(p.Q[c]), -vc[c]};
  const LowerEnvelope env(std::move(lines));
  const int T = num_threads();
  Pricing out;
  out.edges.assign(p.na, {});
  std::vector<long> nviol(T, 0), nscan(T, 0);
  std::vector<lap::TopK> tops(T);
  for (lap::TopK& t : tops) t.k = 4 * k;
  if (cache.on) {
    // Rows from the kept entries: a dense per-thread row of C (NaN where the pair does not co-fire) for scans.
    std::vector<std::vector<float>> dense(T, std::vector<float>(p.nb, std::numeric_limits<float>::quiet_NaN()));
    const int tasks = static_cast<int>(std::min<long>(p.na, 64L * T));
    parallel_for_workers(tasks, [&](int task, int w) {
      std::vector<float>& d = dense[w];
      for (long r = split_begin(p.na, tasks, task); r < split_begin(p.na, tasks, task + 1); ++r) {
        const CacheEnt* e = cache.worker[r] >= 0 ? cache.per_worker[cache.worker[r]].data() + cache.off[r] : nullptr;
        const int n = cache.len[r];
        for (int q = 0; q < n; ++q) d[e[q].c] = e[q].C;
        const CachedRowAccess acc{p, r, e, n, d};
        price_row(p, r, acc, ur[r], vc, tol, env, match[r], tops[w], out, matched_c, nviol[w], nscan[w]);
        for (int q = 0; q < n; ++q) d[e[q].c] = std::numeric_limits<float>::quiet_NaN();
      }
    });
  } else {
    for_each_cofire_row(p.L, p.ra, [&](int w, const CofireRow& row) {
      const long r = p.apos[row.latent];
      const PassRowAccess acc{p, r, row};
      price_row(p, r, acc, ur[r], vc, tol, env, match[r], tops[w], out, matched_c, nviol[w], nscan[w]);
    });
    st.row_passes += 1;
  }
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

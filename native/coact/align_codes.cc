// Alignment from a code store: statistics, memory plan, dense or large-m path, leftover pairing. See align_codes.h.
#include "align_codes.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "../common/errors.h"
#include "../common/memory.h"
#include "../common/thread_pool.h"
#include "../lap/align.h"
#include "../lap/assignment.h"
#include "../lap/solver_policy.h"
#include "cofire_pass.h"
#include "pearson_terms.h"

namespace cmsae {
namespace {

std::string gib(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return b;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Dense path: the alive submatrix of C' (float32, |C| for the absolute objective with the signs kept aside),
// solved by the usual certified assignment.
AssignmentResult solve_dense(const coact::CofireLayout& L, const coact::PearsonTerms& t, const std::vector<int32_t>& ra,
                             const std::vector<int32_t>& rb, bool use_signed, std::vector<float>& matched) {
  const long na = static_cast<long>(ra.size()), nb = static_cast<long>(rb.size());
  std::vector<float> sub(static_cast<size_t>(na) * nb);
  std::vector<uint8_t> negative(use_signed ? 0 : static_cast<size_t>(na) * nb, 0);
  std::vector<int32_t> apos(L.mA, -1);
  for (long r = 0; r < na; ++r) apos[ra[r]] = static_cast<int32_t>(r);
  coact::for_each_cofire_row(L, ra, [&](int, const coact::CofireRow& row) {
    const long r = apos[row.latent];
    const int32_t i = row.latent;
    float* o = sub.data() + r * nb;
    for (long c = 0; c < nb; ++c) {
      const float C = coact::pearson(row.s[rb[c]], t.f[i], t.g[i], t.inv[rb[c]], t.h[rb[c]]);
      if (use_signed) {
        o[c] = C;
      } else {
        o[c] = std::fabs(C);
        negative[r * nb + c] = C < 0;
      }
    }
  });
  AssignmentInput in;
  in.f32 = sub.data();
  in.rows = na;
  in.cols = nb;
  in.maximize = true;
  AssignmentResult res = solve_assignment(in, LapOptions{});
  matched.assign(na, 0.f);
  for (long r = 0; r < na; ++r) {
    const int32_t c = res.row_to_col[r];
    if (c < 0) continue;
    const float v = sub[r * nb + c];
    matched[r] = !use_signed && negative[r * nb + c] ? -v : v;
  }
  return res;
}

// What the alignment and the dense correlation both start from: the moments over every row, mean / std / alive
// at min_fires, and each side's alive latents (ascending).
struct AliveLatents {
  CorrSide side_a, side_b;
  CorrStats stats;
  std::vector<int32_t> ra, rb;
};

AliveLatents alive_latents(const CodeStore& store, double min_fires) {
  require(std::isfinite(min_fires) && min_fires >= 0, "ERR_ARG", "minFires must be a number >= 0");
  AliveLatents a;
  store.moments(a.side_a, a.side_b);
  latent_stats(a.side_a, store.rows(), min_fires, a.stats.a);
  latent_stats(a.side_b, store.rows(), min_fires, a.stats.b);
  for (int i = 0; i < store.mA(); ++i)
    if (a.stats.a.alive[i]) a.ra.push_back(i);
  for (int j = 0; j < store.mB(); ++j)
    if (a.stats.b.alive[j]) a.rb.push_back(j);
  return a;
}

}  // namespace

AlignMemoryPlan plan_alignment(const CodeStore& store, long long na, long long nb, const AlignCodesOptions& opt) {
  AlignMemoryPlan p;
  const uint64_t phys = physical_memory_bytes();
  p.budget = opt.memory_budget > 0 ? opt.memory_budget : (phys > 0 ? 0.5 * static_cast<double>(phys) : 8.0 * (1u << 30));
  const int T = num_threads();
  p.codes = static_cast<double>(store.bytes());
  p.layout = coact::cofire_layout_bytes(store.mA(), store.rows(), store.nnz(false), store.nnz(true));
  p.scratch = T * coact::cofire_scratch_bytes(store.mB());
  const int k = std::max(1, opt.candidates);
  // The dense submatrix (float32; a sign byte per entry for |C|) plus the sparse path's O(n k) state over it.
  p.dense = static_cast<double>(na) * nb * (opt.use_signed ? 4.0 : 5.0) + coact::large_solver_bytes(na, nb, kDefaultCandidates, T);
  p.large = coact::large_solver_bytes(na, nb, k, T);
  p.cache = std::max(0.0, p.budget - p.large_total());
  const bool dense_fits = p.dense_total() <= p.budget, large_fits = p.large_total() <= p.budget;
  const std::string size = std::to_string(na) + " x " + std::to_string(nb) + " alive latents over " + std::to_string(store.rows()) + " rows";
  const std::string parts = "codes " + gib(p.codes) + " held, their layout " + gib(p.layout) + ", one row per thread " +
                            gib(p.scratch) + " for " + std::to_string(T) + " threads";
  if (opt.path == AlignPath::Dense) {
    if (!dense_fits)
      fail("ERR_NOMEM", "the dense alignment of " + size + " needs " + gib(p.dense_total()) + " (" + parts + ", the correlation " +
                            gib(p.dense) + ") but the memory budget is " + gib(p.budget) +
                            ": use path 'large' (--path large), which needs " + gib(p.large_total()) + ", or raise memoryBudget (--memory-budget)");
    p.use_large = false;
  } else if (opt.path == AlignPath::Large || !dense_fits) {
    if (!large_fits)
      fail("ERR_NOMEM", "the large-m alignment of " + size + " needs " + gib(p.large_total()) + " (" + parts + ", solver " + gib(p.large) +
                            ") but the memory budget is " + gib(p.budget) +
                            ": raise memoryBudget (--memory-budget), use fewer threads (CMSAE_THREADS; " + gib(coact::cofire_scratch_bytes(store.mB())) +
                            " each), fewer candidates (--candidates), or align fewer rows (--samples)");
    p.use_large = true;
  }
  return p;
}

AlignCodesResult align_codes(const CodeStore& store, const AlignCodesOptions& opt) {
  require(opt.candidates >= 1 && opt.candidates <= kMaxCandidates, "ERR_ARG", "candidates must be in [1, " + std::to_string(kMaxCandidates) + "]");
  require(!(opt.memory_budget < 0) && std::isfinite(opt.memory_budget), "ERR_ARG", "memoryBudget must be a number of bytes >= 0");
  AlignCodesResult out;
  auto t0 = std::chrono::steady_clock::now();
  out.n = store.rows();
  AliveLatents alive = alive_latents(store, opt.min_fires);
  out.side_a = std::move(alive.side_a);
  out.side_b = std::move(alive.side_b);
  out.stats = std::move(alive.stats);
  const std::vector<int32_t>& ra = alive.ra;
  const std::vector<int32_t>& rb = alive.rb;
  out.plan = plan_alignment(store, static_cast<long long>(ra.size()), static_cast<long long>(rb.size()), opt);
  out.seconds_stats = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  out.row_to_col.assign(store.mA(), -1);
  out.matched.assign(store.mA(), 0.f);
  out.dual_a.assign(store.mA(), 0.0);
  out.dual_b.assign(store.mB(), 0.0);
  AssignmentResult res;
  std::vector<float> matched;
  if (!ra.empty() && !rb.empty()) {
    const coact::CofireLayout L = coact::build_cofire_layout(store);
    const coact::PearsonTerms terms = coact::pearson_terms(out.stats, out.n);
    out.seconds_layout = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    if (out.plan.use_large) {
      coact::LargeAlignOptions lo;
      lo.use_signed = opt.use_signed;
      lo.candidates = opt.candidates;
      lo.cache_bytes = opt.keep_cofiring ? out.plan.cache : 0;
      res = coact::solve_large_alignment(L, terms, ra, rb, lo, matched, &out.large);
    } else {
      res = solve_dense(L, terms, ra, rb, opt.use_signed, matched);
    }
    for (size_t r = 0; r < ra.size(); ++r) out.dual_a[ra[r]] = res.u[r];
    for (size_t c = 0; c < rb.size(); ++c) out.dual_b[rb[c]] = res.v[c];
    for (size_t r = 0; r < ra.size(); ++r)
      if (res.row_to_col[r] >= 0) {
        out.row_to_col[ra[r]] = rb[res.row_to_col[r]];
        out.matched[ra[r]] = matched[r];
      }
    out.objective = res.objective;
  }
  out.seconds_solve = seconds_since(t0);
  if (store.mA() == store.mB()) {
    out.perm = out.row_to_col;
    pair_leftovers(out.perm);
  }
  return out;
}

void codes_correlation(const CodeStore& store, double min_fires, float* out) {
  const long long mA = store.mA(), mB = store.mB();
  require_memory(4.0 * mA * mB + static_cast<double>(store.bytes()) * 2, "the dense correlation of the code store");
  const AliveLatents alive = alive_latents(store, min_fires);
  std::fill(out, out + static_cast<size_t>(mA) * mB, 0.f);
  if (alive.ra.empty() || alive.rb.empty()) return;
  const coact::CofireLayout L = coact::build_cofire_layout(store);
  const coact::PearsonTerms t = coact::pearson_terms(alive.stats, store.rows());
  coact::for_each_cofire_row(L, alive.ra, [&](int, const coact::CofireRow& row) {
    const int32_t i = row.latent;
    float* o = out + static_cast<size_t>(i) * mB;
    for (int32_t j : alive.rb) o[j] = coact::pearson(row.s[j], t.f[i], t.g[i], t.inv[j], t.h[j]);
  });
}

}  // namespace cmsae

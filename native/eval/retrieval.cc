// rank(q) = #{i : s(q,i) >= t(q)} - 1, ties(q) = #{i : s(q,i) == t(q)}, s = cosine of the sparse codes (float64),
// t(q) = max of s over q's ground-truth items; an inverted index over the items, one dense score row per task.
#include "retrieval.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../common/errors.h"
#include "../common/memory.h"
#include "../common/thread_pool.h"
#include "../common/validate.h"

namespace cmsae {
namespace {

constexpr long kMaxLatents = 1L << 30;

void check_rows(const CodeRows& c, const char* name, long m) {
  require(c.rows >= 1 && c.k >= 1, "ERR_SHAPE", std::string(name) + " needs rows >= 1 and k >= 1");
  const long n = c.rows * static_cast<long>(c.k);
  for (long p = 0; p < n; ++p) {
    const int32_t j = c.idx[p];
    if (j < 0 || j >= m)
      fail("ERR_RANGE", std::string(name) + ".indices has latent " + std::to_string(j) + " at row " +
                            std::to_string(p / c.k) + ", slot " + std::to_string(p % c.k) + ", outside [0, m = " +
                            std::to_string(m) + ")");
  }
  check_finite(c.val, c.rows, c.k, (std::string(name) + ".values").c_str());
}

long max_index_plus_one(const CodeRows& c) {
  long mx = -1;
  const long n = c.rows * static_cast<long>(c.k);
  for (long p = 0; p < n; ++p) mx = std::max<long>(mx, c.idx[p]);
  return mx + 1;
}

void check_ground_truth(const GroundTruthRows& gt, long queries, long items) {
  require(gt.n_items >= 0, "ERR_SHAPE", "ground truth: negative item count");
  if (gt.offsets[0] < 0) fail("ERR_ARG", "ground truth: offsets[0] = " + std::to_string(gt.offsets[0]) + " is negative");
  for (long q = 0; q < queries; ++q) {
    const int32_t a = gt.offsets[q], b = gt.offsets[q + 1];
    if (b < a)
      fail("ERR_ARG", "ground truth: offsets must be ascending, but offsets[" + std::to_string(q + 1) + "] = " +
                          std::to_string(b) + " < offsets[" + std::to_string(q) + "] = " + std::to_string(a));
    if (b == a) fail("ERR_ARG", "ground truth: query " + std::to_string(q) + " has no ground-truth item (every query needs at least one)");
  }
  if (gt.offsets[queries] > gt.n_items)
    fail("ERR_SHAPE", "ground truth: offsets end at " + std::to_string(gt.offsets[queries]) + " but there are only " +
                          std::to_string(gt.n_items) + " ground-truth items");
  for (long p = gt.offsets[0]; p < gt.offsets[queries]; ++p)
    if (gt.items[p] < 0 || gt.items[p] >= items)
      fail("ERR_RANGE", "ground truth: item " + std::to_string(gt.items[p]) + " (entry " + std::to_string(p) +
                            ") is outside [0, items = " + std::to_string(items) + ")");
}

// Row r as a unit sparse vector: nonzero slots sorted by (latent, slot), equal latents summed in slot order,
// zero sums dropped, then divided by max(sqrt(sum x^2), 1e-12) (sum in ascending latent order). Writes the
// latents and values to lat/val (k entries each) and returns their number. keys: scratch of k entries.
int unit_row(const CodeRows& c, long r, uint64_t* keys, int32_t* lat, double* val) {
  const int32_t* idx = c.idx + r * c.k;
  const float* v = c.val + r * c.k;
  int n = 0;
  for (int s = 0; s < c.k; ++s)
    if (v[s] != 0.f) keys[n++] = (static_cast<uint64_t>(static_cast<uint32_t>(idx[s])) << 32) | static_cast<uint32_t>(s);
  std::sort(keys, keys + n);
  int out = 0;
  double ss = 0.0;
  for (int a = 0; a < n;) {
    const uint32_t l = static_cast<uint32_t>(keys[a] >> 32);
    double x = 0.0;
    for (; a < n && static_cast<uint32_t>(keys[a] >> 32) == l; ++a) x += static_cast<double>(v[keys[a] & 0xffffffffu]);
    if (x == 0.0) continue;
    lat[out] = static_cast<int32_t>(l);
    val[out] = x;
    ss += x * x;
    ++out;
  }
  const double norm = std::max(std::sqrt(ss), 1e-12);
  for (int e = 0; e < out; ++e) val[e] = val[e] / norm;
  return out;
}

}  // namespace

// rank(q) = #{i : s(q,i) >= max_{g in gt(q)} s(q,g)} - 1, ties(q) = #{i : s(q,i) == max_{g in gt(q)} s(q,g)}.
long retrieval_ranks(const CodeRows& queries, const CodeRows& items, const GroundTruthRows& gt, long m, int32_t* ranks,
                     int32_t* ties) {
  require(queries.rows >= 1 && queries.k >= 1, "ERR_SHAPE", "queries needs rows >= 1 and k >= 1");
  require(items.rows >= 1 && items.k >= 1, "ERR_SHAPE", "items needs rows >= 1 and k >= 1");
  require(items.rows <= 0x7fffffffL && queries.rows <= 0x7fffffffL, "ERR_SHAPE", "at most 2^31 - 1 queries and items");
  require(m >= 0, "ERR_ARG", "m must be >= 0 (0: max index + 1)");
  if (m == 0) m = std::max(max_index_plus_one(queries), max_index_plus_one(items));
  require(m <= kMaxLatents, "ERR_ARG", "m = " + std::to_string(m) + " latents is more than this kernel supports (2^30)");
  check_rows(queries, "queries", std::max(m, 1L));
  check_rows(items, "items", std::max(m, 1L));
  check_ground_truth(gt, queries.rows, items.rows);

  const long I = items.rows, Q = queries.rows;
  const int ki = items.k, kq = queries.k;
  const long cap = I * ki;
  require_memory(static_cast<double>(cap) * 28 + static_cast<double>(m) * 8, "the inverted index over the items");

  // Items as unit sparse vectors (item-major scratch), then posting lists per latent (counting sort, item order).
  std::vector<int32_t> ent_lat(cap), ent_cnt(I);
  std::vector<double> ent_val(cap);
  const int T = num_threads();
  const int TI = static_cast<int>(std::max<long>(1, std::min<long>(T, I / 4096 + 1)));
  parallel_for(TI, [&](int t) {
    std::vector<uint64_t> keys(ki);
    for (long r = split_begin(I, TI, t); r < split_begin(I, TI, t + 1); ++r)
      ent_cnt[r] = unit_row(items, r, keys.data(), ent_lat.data() + r * ki, ent_val.data() + r * ki);
  });
  std::vector<int64_t> post_off(static_cast<size_t>(m) + 1, 0);
  for (long r = 0; r < I; ++r)
    for (int e = 0; e < ent_cnt[r]; ++e) ++post_off[ent_lat[r * ki + e] + 1];
  for (long l = 0; l < m; ++l) post_off[l + 1] += post_off[l];
  std::vector<int32_t> post_item(post_off[m]);
  std::vector<double> post_val(post_off[m]);
  {
    std::vector<int64_t> fill(post_off.begin(), post_off.end() - 1);
    for (long r = 0; r < I; ++r)
      for (int e = 0; e < ent_cnt[r]; ++e) {
        const int64_t p = fill[ent_lat[r * ki + e]]++;
        post_item[p] = static_cast<int32_t>(r);
        post_val[p] = ent_val[r * ki + e];
      }
  }
  std::vector<int32_t>().swap(ent_lat);
  std::vector<double>().swap(ent_val);

  // Queries in contiguous ranges; each task owns a dense score row, the stamp of the query that last touched
  // each item (untouched items score exactly 0) and the list of touched items.
  const int tasks = static_cast<int>(std::max<long>(1, std::min<long>(Q, 8L * T)));
  parallel_for(tasks, [&](int t) {
    std::vector<double> score(I);
    std::vector<int32_t> stamp(I, -1), touched;
    touched.reserve(std::min<long>(I, 1L << 16));
    std::vector<uint64_t> keys(kq);
    std::vector<int32_t> qlat(kq);
    std::vector<double> qval(kq);
    for (long q = split_begin(Q, tasks, t); q < split_begin(Q, tasks, t + 1); ++q) {
      const int32_t qs = static_cast<int32_t>(q);
      const int nq = unit_row(queries, q, keys.data(), qlat.data(), qval.data());
      touched.clear();
      // Ascending latents: every item's score is summed in ascending latent order.
      for (int e = 0; e < nq; ++e) {
        const double qv = qval[e];
        const int64_t p1 = post_off[qlat[e] + 1];
        for (int64_t p = post_off[qlat[e]]; p < p1; ++p) {
          const int32_t it = post_item[p];
          if (stamp[it] != qs) {
            stamp[it] = qs;
            score[it] = 0.0;
            touched.push_back(it);
          }
          score[it] += qv * post_val[p];
        }
      }
      double target = -INFINITY;
      for (int32_t p = gt.offsets[q]; p < gt.offsets[q + 1]; ++p) {
        const int32_t it = gt.items[p];
        target = std::max(target, stamp[it] == qs ? score[it] : 0.0);
      }
      long ge = 0, eq = 0;
      for (const int32_t it : touched) {
        ge += score[it] >= target;
        eq += score[it] == target;
      }
      const long untouched = I - static_cast<long>(touched.size());
      if (0.0 >= target) ge += untouched;
      if (0.0 == target) eq += untouched;
      ranks[q] = static_cast<int32_t>(ge - 1);
      ties[q] = static_cast<int32_t>(eq);
    }
  });
  return m;
}

}  // namespace cmsae

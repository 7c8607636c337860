// The co-firing row pass: S_i. = sum_r a_ri b_r. accumulated into a per-thread dense row, with the co-firing
// columns listed as they first appear (sparse rows) or the whole row scanned (dense rows). See cofire_pass.h.
#include "cofire_pass.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "../common/memory.h"
#include "../common/thread_pool.h"

namespace cmsae::coact {

double cofire_layout_bytes(long long mA, long long rows, long long nnz_a, long long nnz_b) {
  return 16.0 * nnz_a + 8.0 * nnz_b + 16.0 * mA + 8.0 * rows;
}

CofireLayout build_cofire_layout(const CodeStore& store) {
  CofireLayout L;
  L.mA = store.mA();
  L.mB = store.mB();
  const std::vector<const CodeSegment*> segs = store.ordered();
  L.rows = store.rows();
  require_memory(cofire_layout_bytes(L.mA, L.rows, store.nnz(false), store.nnz(true)) + static_cast<double>(store.bytes()),
                 "the co-firing layout of the code store");
  L.brec.resize(static_cast<size_t>(store.nnz(true)));
  std::vector<int64_t> seg_b0(segs.size());  // first B record of each segment
  int64_t b0 = 0;
  for (size_t q = 0; q < segs.size(); ++q) {
    seg_b0[q] = b0;
    const CodeSegment& s = *segs[q];
    for (size_t e = 0; e < s.b_idx.size(); ++e) L.brec[b0 + e] = BRec{s.b_idx[e], s.b_val[e]};
    b0 += static_cast<int64_t>(s.b_idx.size());
  }
  // Counting sort of the A nonzeros by latent, stable in global row order.
  std::vector<int64_t> count(L.mA + 1, 0);
  L.work.assign(L.mA, 0.0);
  for (const CodeSegment* s : segs)
    for (int64_t r = 0; r < s->rows; ++r)
      for (int64_t p = s->a_off[r]; p < s->a_off[r + 1]; ++p) {
        ++count[s->a_idx[p] + 1];
        L.work[s->a_idx[p]] += static_cast<double>(s->b_off[r + 1] - s->b_off[r]);
      }
  L.start.assign(L.mA + 1, 0);
  std::partial_sum(count.begin(), count.end(), L.start.begin());
  std::vector<int64_t> cur(L.start.begin(), L.start.end() - 1);
  L.ent.resize(static_cast<size_t>(L.start.back()));
  for (size_t q = 0; q < segs.size(); ++q) {
    const CodeSegment& s = *segs[q];
    for (int64_t r = 0; r < s.rows; ++r) {
      const int64_t boff = seg_b0[q] + s.b_off[r];
      const int32_t blen = static_cast<int32_t>(s.b_off[r + 1] - s.b_off[r]);
      for (int64_t p = s.a_off[r]; p < s.a_off[r + 1]; ++p) L.ent[cur[s.a_idx[p]]++] = AEntry{boff, blen, s.a_val[p]};
    }
  }
  return L;
}

namespace {

// Per-thread state of the pass: the dense row, the co-firing marks and list.
struct RowScratch {
  std::vector<double> s;
  std::vector<uint8_t> mark;
  std::vector<int32_t> cols;
};

// Accumulates latent i's row into sc (sparse: listing new columns; dense: no list).
void accumulate_row(const CofireLayout& L, int32_t i, bool dense, RowScratch& sc) {
  double* s = sc.s.data();
  uint8_t* mark = sc.mark.data();
  const BRec* recs = L.brec.data();
  const int64_t e0 = L.start[i], e1 = L.start[i + 1];
  for (int64_t e = e0; e < e1; ++e) {
    if (e + 4 < e1) {  // the B rows of a latent's entries are scattered: fetch 4 entries ahead
      const AEntry& nx = L.ent[e + 4];
      const char* p = reinterpret_cast<const char*>(recs + nx.b_off);
      const long bytes = static_cast<long>(nx.b_len) * static_cast<long>(sizeof(BRec));
      for (long off = 0; off < bytes + 63; off += 64) __builtin_prefetch(p + std::min(off, bytes - 1));
    }
    const AEntry& en = L.ent[e];
    const double a = en.a;
    const BRec* b = recs + en.b_off;
    if (dense) {
      for (int32_t q = 0; q < en.b_len; ++q) s[b[q].idx] += a * b[q].val;
    } else {
      for (int32_t q = 0; q < en.b_len; ++q) {
        const int32_t j = b[q].idx;
        if (!mark[j]) {
          mark[j] = 1;
          sc.cols.push_back(j);
        }
        s[j] += a * b[q].val;
      }
    }
  }
}

}  // namespace

void for_each_cofire_row(const CofireLayout& L, const std::vector<int32_t>& latents,
                         const std::function<void(int, const CofireRow&)>& visit) {
  if (latents.empty()) return;
  // Heaviest latents first, cut into tasks of about equal work (tasks are handed out in order).
  std::vector<int32_t> order(latents);
  std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return L.work[x] > L.work[y]; });
  const int T = num_threads();
  double total = 0;
  for (int32_t i : order) total += L.work[i] + 64.0;
  const double per_task = std::max(1.0, total / (static_cast<double>(T) * 32));
  std::vector<size_t> task_begin{0};
  double acc = 0;
  for (size_t q = 0; q < order.size(); ++q) {
    acc += L.work[order[q]] + 64.0;
    if (acc >= per_task && q + 1 < order.size()) {
      task_begin.push_back(q + 1);
      acc = 0;
    }
  }
  task_begin.push_back(order.size());
  std::vector<RowScratch> scratch(T);
  const double dense_work = L.mB / 4.0;
  parallel_for_workers(static_cast<int>(task_begin.size() - 1), [&](int task, int w) {
    RowScratch& sc = scratch[w];
    if (sc.s.empty()) {
      sc.s.assign(L.mB, 0.0);
      sc.mark.assign(L.mB, 0);
    }
    for (size_t q = task_begin[task]; q < task_begin[task + 1]; ++q) {
      const int32_t i = order[q];
      const bool dense = L.work[i] > dense_work;
      sc.cols.clear();
      accumulate_row(L, i, dense, sc);
      const CofireRow row{i, sc.s.data(), dense ? nullptr : sc.cols.data(), static_cast<int>(sc.cols.size())};
      visit(w, row);
      if (dense) {
        std::memset(sc.s.data(), 0, sizeof(double) * L.mB);
      } else {
        for (int32_t j : sc.cols) {
          sc.s[j] = 0.0;
          sc.mark[j] = 0;
        }
      }
    }
  });
}

}  // namespace cmsae::coact

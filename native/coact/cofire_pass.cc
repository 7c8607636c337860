// The co-firing row pass: S_i. = sum_r a_ri b_r. accumulated into a per-thread dense row, with the co-firing
// columns listed as they first appear (sparse rows) or the whole row scanned (dense rows). See cofire_pass.h.
#include "cofire_pass.h"

#include <algorithm>
#include <cstring>

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
  // The rows in global order as (segment, row) chunks of about equal size, each thread taking a contiguous run.
  struct Chunk {
    size_t seg;
    int64_t r0, r1;
  };
  std::vector<int64_t> seg_b0(segs.size());  // first B record of each segment
  std::vector<Chunk> chunks;
  int64_t b0 = 0;
  for (size_t q = 0; q < segs.size(); ++q) {
    seg_b0[q] = b0;
    b0 += static_cast<int64_t>(segs[q]->b_idx.size());
    for (int64_t r = 0; r < segs[q]->rows; r += 16384) chunks.push_back({q, r, std::min<int64_t>(segs[q]->rows, r + 16384)});
  }
  const int T = static_cast<int>(std::max<size_t>(1, std::min<size_t>(num_threads(), chunks.size())));
  const long nch = static_cast<long>(chunks.size());
  L.brec.resize(static_cast<size_t>(b0));
  // Pass 1: B records into place; per-thread counts and work of each A latent.
  std::vector<std::vector<int64_t>> count(T, std::vector<int64_t>(L.mA, 0));
  std::vector<std::vector<double>> work(T, std::vector<double>(L.mA, 0.0));
  parallel_for(T, [&](int t) {
    for (long ch = split_begin(nch, T, t); ch < split_begin(nch, T, t + 1); ++ch) {
      const CodeSegment& s = *segs[chunks[ch].seg];
      const int64_t base = seg_b0[chunks[ch].seg];
      for (int64_t e = s.b_off[chunks[ch].r0]; e < s.b_off[chunks[ch].r1]; ++e) L.brec[base + e] = BRec{s.b_idx[e], s.b_val[e]};
      for (int64_t r = chunks[ch].r0; r < chunks[ch].r1; ++r)
        for (int64_t p = s.a_off[r]; p < s.a_off[r + 1]; ++p) {
          ++count[t][s.a_idx[p]];
          work[t][s.a_idx[p]] += static_cast<double>(s.b_off[r + 1] - s.b_off[r]);
        }
    }
  });
  // Latent starts, and each thread's write cursor per latent (threads in row order: stable in global row order).
  L.start.assign(L.mA + 1, 0);
  L.work.assign(L.mA, 0.0);
  for (int i = 0; i < L.mA; ++i) {
    int64_t c = L.start[i];
    for (int t = 0; t < T; ++t) {
      const int64_t n = count[t][i];
      count[t][i] = c;
      c += n;
      L.work[i] += work[t][i];
    }
    L.start[i + 1] = c;
  }
  L.ent.resize(static_cast<size_t>(L.start.back()));
  parallel_for(T, [&](int t) {
    std::vector<int64_t>& cur = count[t];
    for (long ch = split_begin(nch, T, t); ch < split_begin(nch, T, t + 1); ++ch) {
      const CodeSegment& s = *segs[chunks[ch].seg];
      const int64_t base = seg_b0[chunks[ch].seg];
      for (int64_t r = chunks[ch].r0; r < chunks[ch].r1; ++r) {
        const int32_t blen = static_cast<int32_t>(s.b_off[r + 1] - s.b_off[r]);
        for (int64_t p = s.a_off[r]; p < s.a_off[r + 1]; ++p) L.ent[cur[s.a_idx[p]]++] = AEntry{base + s.b_off[r], blen, s.a_val[p]};
      }
    }
  });
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

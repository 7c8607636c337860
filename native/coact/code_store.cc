// The paired code store: validated appends, shard merges, canonical (row-ordered) moments. See code_store.h.
#include "code_store.h"

#include <algorithm>
#include <limits>
#include <string>

#include "../common/errors.h"
#include "../common/memory.h"
#include "../common/thread_pool.h"
#include "../corr/code_checks.h"

namespace cmsae {
namespace {

// Appends the nonzeros of rows [0, rows) ([rows, k] slots, counts[r] nonzeros each) to off/idx/val: the offsets
// first, then each thread copies its range of rows into place.
void append_side(const int32_t* idx, const float* val, int k, long rows, const int32_t* counts, std::vector<int64_t>& off,
                 std::vector<int32_t>& out_idx, std::vector<float>& out_val) {
  const size_t off0 = off.size() - 1;
  off.resize(off0 + rows + 1);
  for (long r = 0; r < rows; ++r) off[off0 + r + 1] = off[off0 + r] + counts[r];
  out_idx.resize(static_cast<size_t>(off.back()));
  out_val.resize(static_cast<size_t>(off.back()));
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), rows / 4096 + 1)));
  parallel_for(T, [&](int t) {
    for (long r = split_begin(rows, T, t); r < split_begin(rows, T, t + 1); ++r) {
      int64_t q = off[off0 + r];
      for (int s = 0; s < k; ++s) {
        const float v = val[r * k + s];
        if (v == 0.f) continue;
        out_idx[q] = idx[r * k + s];
        out_val[q] = v;
        ++q;
      }
    }
  });
}

std::string range_text(const CodeSegment& s) {
  return "[" + std::to_string(s.row_start) + ", " + std::to_string(s.row_start + s.rows) + ")";
}

}  // namespace

size_t CodeSegment::bytes() const {
  return (a_off.size() + b_off.size()) * 8 + (a_idx.size() + b_idx.size()) * 8;
}

CodeStore::CodeStore(long long mA, long long mB, int64_t row_start, std::string tag) : tag_(std::move(tag)) {
  require(mA >= 1 && mB >= 1 && mA <= (1 << 28) && mB <= (1 << 28), "ERR_ARG",
          "mA and mB must be in [1, 2^28], got " + std::to_string(mA) + " x " + std::to_string(mB));
  require(row_start >= 0, "ERR_ARG", "rowStart must be >= 0");
  mA_ = static_cast<int>(mA);
  mB_ = static_cast<int>(mB);
  segs_.emplace_back();
  segs_.back().row_start = row_start;
}

int64_t CodeStore::rows() const {
  int64_t n = 0;
  for (const CodeSegment& s : segs_) n += s.rows;
  return n;
}

int64_t CodeStore::nnz(bool side_b) const {
  int64_t n = 0;
  for (const CodeSegment& s : segs_) n += static_cast<int64_t>(side_b ? s.b_idx.size() : s.a_idx.size());
  return n;
}

size_t CodeStore::bytes() const {
  size_t b = 0;
  for (const CodeSegment& s : segs_) b += s.bytes();
  return b;
}

void CodeStore::add(const int32_t* ai, const float* av, int kA, const int32_t* bi, const float* bv, int kB, long rows) {
  if (rows <= 0) return;
  CodeSegment& seg = segs_[own_];
  require(seg.rows + rows < (int64_t(1) << 31), "ERR_ARG", "a code store segment holds at most 2^31 - 1 rows: write a shard and start the next one at the next rowStart");
  std::vector<int32_t> count_a(rows), count_b(rows);
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), rows / 1024 + 1)));
  parallel_for(T, [&](int t) {
    const long r0 = split_begin(rows, T, t), r1 = split_begin(rows, T, t + 1);
    std::vector<int64_t> stamp_a(mA_, -1), stamp_b(mB_, -1);
    check_codes(ai + r0 * kA, av + r0 * kA, kA, r1 - r0, mA_, "A", stamp_a, seg.rows + r0, count_a.data() + r0);
    check_codes(bi + r0 * kB, bv + r0 * kB, kB, r1 - r0, mB_, "B", stamp_b, seg.rows + r0, count_b.data() + r0);
  });
  int64_t add_nz = 0;
  for (long r = 0; r < rows; ++r) add_nz += count_a[r] + count_b[r];
  require_memory(static_cast<double>(bytes()) + 8.0 * add_nz + 16.0 * rows, "the code store");
  append_side(ai, av, kA, rows, count_a.data(), seg.a_off, seg.a_idx, seg.a_val);
  append_side(bi, bv, kB, rows, count_b.data(), seg.b_off, seg.b_idx, seg.b_val);
  seg.rows += rows;
}

void CodeStore::merge(const CodeStore& o) {
  require(&o != this, "ERR_ARG", "cannot merge a code store into itself");
  require(o.mA_ == mA_ && o.mB_ == mB_, "ERR_SHAPE",
          "cannot merge code stores of different sizes (" + std::to_string(mA_) + "x" + std::to_string(mB_) + " vs " +
              std::to_string(o.mA_) + "x" + std::to_string(o.mB_) + "): the shards come from different SAEs");
  require(o.tag_ == tag_, "ERR_ARG",
          "cannot merge code stores with different tags ('" + tag_ + "' vs '" + o.tag_ +
              "'): the shards were encoded by different SAE pairs");
  std::vector<const CodeSegment*> all;
  for (const CodeSegment& s : segs_) all.push_back(&s);
  for (const CodeSegment& s : o.segs_) all.push_back(&s);
  check_disjoint(all);
  require_memory(static_cast<double>(bytes() + o.bytes()), "the merged code store");
  for (const CodeSegment& s : o.segs_)
    if (s.rows > 0) segs_.push_back(s);
}

void CodeStore::check_disjoint(const std::vector<const CodeSegment*>& segs) const {
  std::vector<const CodeSegment*> s;
  for (const CodeSegment* p : segs)
    if (p->rows > 0) s.push_back(p);
  std::sort(s.begin(), s.end(), [](const CodeSegment* a, const CodeSegment* b) { return a->row_start < b->row_start; });
  for (size_t q = 1; q < s.size(); ++q)
    if (s[q]->row_start < s[q - 1]->row_start + s[q - 1]->rows)
      fail("ERR_ARG", "code store shards overlap: rows " + range_text(*s[q - 1]) + " and " + range_text(*s[q]) +
                          " (each row may be added once; give every shard its own rowStart)");
}

std::vector<const CodeSegment*> CodeStore::ordered() const {
  std::vector<const CodeSegment*> s;
  for (const CodeSegment& p : segs_)
    if (p.rows > 0) s.push_back(&p);
  check_disjoint(s);
  std::sort(s.begin(), s.end(), [](const CodeSegment* a, const CodeSegment* b) { return a->row_start < b->row_start; });
  return s;
}

void CodeStore::moments(CorrSide& a, CorrSide& b) const {
  a.resize(mA_);
  b.resize(mB_);
  const std::vector<const CodeSegment*> segs = ordered();
  auto side = [&](CorrSide& d, bool is_b) {
    for (const CodeSegment* s : segs) {
      const std::vector<int32_t>& idx = is_b ? s->b_idx : s->a_idx;
      const std::vector<float>& val = is_b ? s->b_val : s->a_val;
      for (size_t q = 0; q < idx.size(); ++q) {
        const int32_t j = idx[q];
        const float v = val[q];
        d.sum[j] += v;
        d.sumsq[j] += static_cast<double>(v) * v;
        d.fires[j] += 1.0;
        d.min_nz[j] = std::min(d.min_nz[j], v);
        d.max_nz[j] = std::max(d.max_nz[j], v);
      }
    }
  };
  parallel_for(2, [&](int t) { side(t ? b : a, t == 1); });
}

}  // namespace cmsae

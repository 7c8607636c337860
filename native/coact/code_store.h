// Paired sparse codes kept whole for the large-m alignment: the co-firing part of the correlation is re-formed
// from them (cofire_pass.h) instead of holding an mA x mB co-moment matrix. A store is a list of segments, each
// a contiguous range of global rows (a shard from one process or machine); merging appends segments, and every
// statistic is computed over the rows in global row order, so any sharding gives the same bits as one pass.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../corr/corr_accumulator.h"

namespace cmsae {

struct CodeSegment {
  int64_t row_start = 0;  // global number of the segment's first row
  int64_t rows = 0;
  std::vector<int64_t> a_off{0}, b_off{0};  // [rows + 1]: row r's nonzeros are [off[r], off[r+1])
  std::vector<int32_t> a_idx, b_idx;
  std::vector<float> a_val, b_val;
  size_t bytes() const;
};

class CodeStore {
 public:
  // A store of mA x mB codes whose own rows (add()) start at global row row_start; tag: what produced the codes
  // (e.g. the SAE pair's fingerprint), which merge() requires to be equal.
  CodeStore(long long mA, long long mB, int64_t row_start = 0, std::string tag = {});

  int mA() const { return mA_; }
  int mB() const { return mB_; }
  const std::string& tag() const { return tag_; }
  int64_t rows() const;
  int64_t nnz(bool side_b) const;
  size_t bytes() const;
  size_t segment_count() const { return segs_.size(); }

  // Appends `rows` paired rows (A: [rows, kA], B: [rows, kB]; value 0 = not active) to this store's own
  // segment, after validating all of them (CorrAccumulator::add's checks): a rejected batch changes nothing.
  void add(const int32_t* ai, const float* av, int kA, const int32_t* bi, const float* bv, int kB, long rows);
  // Copies other's segments in (same mA, mB and tag; ERR_ARG when their rows overlap this store's).
  void merge(const CodeStore& other);
  // The non-empty segments in global row order; ERR_ARG when two of them overlap.
  std::vector<const CodeSegment*> ordered() const;
  // Per-latent moments over every row, in global row order.
  void moments(CorrSide& a, CorrSide& b) const;

  // Versioned binary form with a trailing checksum64 (code_store_format.cc); deserialize refuses truncated,
  // corrupt or foreign bytes with ERR_FORMAT.
  std::vector<uint8_t> serialize() const;
  static CodeStore deserialize(const uint8_t* data, size_t size);

 private:
  CodeStore() = default;
  void check_disjoint(const std::vector<const CodeSegment*>& segs) const;
  int mA_ = 0, mB_ = 0;
  std::string tag_;
  std::vector<CodeSegment> segs_;
  size_t own_ = 0;  // the segment add() appends to
};

}  // namespace cmsae
